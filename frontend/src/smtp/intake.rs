//! The SMTP input, pure: bytes in, what they are out — command lines through the framer, DATA
//! through its receiver, BDAT chunks (RFC 3030) by their length — with the message content
//! kept in the spool. The connection driver, the transcript tests and the fuzz target all
//! read through it, so what they test is what runs.
//!
//! Invariants: in DATA only CRLF.CRLF ends the data; a BDAT chunk is exactly its announced
//! octets, whatever they hold (a refused BDAT's octets are read and dropped, never taken for
//! commands); the content of one message's chunks is judged as one (`DataReceiver`).
use super::data::{DataOutcome, DataReceiver};
use super::session::{Action, Event};
use super::spool::Spool;
use crate::lines::{Frame, Framer};

/// What the next bytes of the input were. Each carries how many bytes it took from the
/// front of the buffer; the caller drops them after handling the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Everything usable was taken (message content); read more.
    More { consumed: usize },
    /// A command line: the first `consumed` bytes, line ending included (the session gets
    /// them as `Event::Line`).
    Line { consumed: usize },
    /// Part of an over-long line, dropped; nothing to answer yet.
    Skipped { consumed: usize },
    /// For the session: the end of an over-long line (`LineTooLong`), of DATA
    /// (`DataReceived`) or of a BDAT chunk (`ChunkReceived`), each judged.
    Event {
        consumed: usize,
        event: Event<'static>,
    },
}

/// The BDAT chunk being read.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    left: u64,
    last: bool,
    keep: bool,
}

#[derive(Debug, Default)]
pub struct Intake {
    framer: Framer,
    data: Option<DataReceiver>,
    chunk: Option<Chunk>,
    /// The content judge across one message's BDAT chunks.
    chunks: Option<DataReceiver>,
    /// The message being received.
    pub spool: Spool,
}

impl Intake {
    /// Takes the session's actions about its input (`ReceiveData`, `ReceiveChunk`); false
    /// for any other action.
    pub fn begin(&mut self, action: &Action) -> bool {
        match *action {
            Action::ReceiveData { max_size } => self.receive_data(max_size),
            Action::ReceiveChunk {
                size,
                max_size,
                first,
                last,
                keep,
            } => self.receive_chunk(size, max_size, first, last, keep),
            _ => return false,
        }
        true
    }

    /// DATA starts: content up to `max_size` until CRLF.CRLF.
    pub fn receive_data(&mut self, max_size: u64) {
        self.spool.clear();
        self.data = Some(DataReceiver::new(max_size));
    }

    /// A BDAT chunk of `size` octets comes next (see `session::Action::ReceiveChunk`).
    pub fn receive_chunk(&mut self, size: u64, max_size: u64, first: bool, last: bool, keep: bool) {
        if keep && (first || self.chunks.is_none()) {
            self.spool.clear();
            self.chunks = Some(DataReceiver::for_chunks(max_size));
        }
        self.chunk = Some(Chunk {
            left: size,
            last,
            keep,
        });
    }

    /// Message data is being received (the data clocks apply).
    pub fn in_data(&self) -> bool {
        self.data.is_some() || self.chunk.is_some()
    }

    /// What the front of `buf` holds; `max_line` is the session's line limit.
    pub fn next(&mut self, buf: &[u8], max_line: usize) -> Step {
        if let Some(chunk) = self.chunk.as_mut() {
            let n = usize::try_from(chunk.left)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            chunk.left -= n as u64;
            if let Some(r) = self.chunks.as_mut().filter(|_| chunk.keep) {
                r.feed(&buf[..n], self.spool.filling());
                self.spool.seal();
            }
            if chunk.left > 0 {
                return Step::More { consumed: n };
            }
            let event = Event::ChunkReceived(self.chunk_done());
            return Step::Event { consumed: n, event };
        }
        if let Some(receiver) = self.data.as_mut() {
            let fed = receiver.feed(buf, self.spool.filling());
            self.spool.seal();
            return match fed {
                None => Step::More {
                    consumed: buf.len(),
                },
                Some(consumed) => {
                    let event = Event::DataReceived(receiver.outcome());
                    self.data = None;
                    Step::Event { consumed, event }
                }
            };
        }
        match self.framer.next(buf, max_line) {
            Frame::Incomplete => Step::More { consumed: 0 },
            Frame::Line { consumed, .. } => Step::Line { consumed },
            Frame::TooLong {
                consumed,
                ended: false,
            } => Step::Skipped { consumed },
            Frame::TooLong { consumed, .. } => Step::Event {
                consumed,
                event: Event::LineTooLong,
            },
        }
    }

    /// The chunk just read is complete: how the content stands.
    fn chunk_done(&mut self) -> DataOutcome {
        let Some(chunk) = self.chunk.take() else {
            return DataOutcome::Ok { size: 0 };
        };
        let mut outcome = DataOutcome::Ok { size: 0 };
        if let Some(r) = self.chunks.as_mut().filter(|_| chunk.keep) {
            if chunk.last {
                r.end_chunks();
            }
            outcome = r.outcome();
        }
        if chunk.last {
            self.chunks = None;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_its_octets_whatever_they_hold() {
        let mut i = Intake::default();
        i.receive_chunk(12, 1000, true, true, true);
        let input = b"QUIT\r\n.\r\nabcNOOP\r\n";
        assert_eq!(i.next(&input[..5], 512), Step::More { consumed: 5 });
        assert!(i.in_data());
        let ended = Step::Event {
            consumed: 7,
            event: Event::ChunkReceived(DataOutcome::Ok { size: 12 }),
        };
        assert_eq!(i.next(&input[5..], 512), ended);
        assert!(!i.in_data());
        assert_eq!(i.spool.take().concat(), b"QUIT\r\n.\r\nabc".to_vec());
        assert_eq!(i.next(&input[12..], 512), Step::Line { consumed: 6 });
    }

    #[test]
    fn a_refused_chunk_is_read_and_dropped_and_an_empty_one_ends_at_once() {
        let mut i = Intake::default();
        i.receive_chunk(4, 1000, true, false, false);
        assert!(matches!(
            i.next(b"RSET", 512),
            Step::Event { consumed: 4, .. }
        ));
        assert!(i.spool.is_empty());
        i.receive_chunk(0, 1000, true, true, true);
        assert!(matches!(i.next(b"", 512), Step::Event { consumed: 0, .. }));
    }
}

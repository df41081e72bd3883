//! Line framing for the text protocols, with no I/O: find the next line in a byte buffer.
//! `Frame::Incomplete` is a normal result: read more and try again. Over-long lines are
//! dropped as they arrive (never buffered whole) and reported once their end is seen.
//! A bare LF also ends a command line; the SMTP DATA receiver (`smtp::data`) is stricter.
use std::ops::Range;

/// What the next bytes of the input hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole line yet.
    Incomplete,
    /// A line: `line` is its content (without CR LF), `consumed` how many bytes to drop.
    Line { line: Range<usize>, consumed: usize },
    /// Part of a line longer than the limit: drop `consumed` bytes; `ended` once the long
    /// line's terminator has been seen (time to answer it).
    TooLong { consumed: usize, ended: bool },
}

/// Splits input into lines, remembering when it is skipping the rest of an over-long line.
#[derive(Debug, Default)]
pub struct Framer {
    discarding: bool,
}

impl Framer {
    pub fn next(&mut self, buf: &[u8], max_line: usize) -> Frame {
        let newline = buf.iter().position(|&b| b == b'\n');
        if self.discarding {
            return match newline {
                Some(i) => {
                    self.discarding = false;
                    Frame::TooLong {
                        consumed: i + 1,
                        ended: true,
                    }
                }
                None if buf.is_empty() => Frame::Incomplete,
                None => Frame::TooLong {
                    consumed: buf.len(),
                    ended: false,
                },
            };
        }
        match newline {
            Some(i) if i < max_line => {
                let end = if i > 0 && buf[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                Frame::Line {
                    line: 0..end,
                    consumed: i + 1,
                }
            }
            Some(i) => Frame::TooLong {
                consumed: i + 1,
                ended: true,
            },
            None if buf.len() >= max_line => {
                self.discarding = true;
                Frame::TooLong {
                    consumed: buf.len(),
                    ended: false,
                }
            }
            None => Frame::Incomplete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lines_and_partial_input() {
        let mut f = Framer::default();
        assert_eq!(f.next(b"STA", 255), Frame::Incomplete);
        assert_eq!(
            f.next(b"STAT\r\nNOOP", 255),
            Frame::Line {
                line: 0..4,
                consumed: 6
            }
        );
        assert_eq!(
            f.next(b"NOOP\n", 255),
            Frame::Line {
                line: 0..4,
                consumed: 5
            }
        );
        assert_eq!(
            f.next(b"\r\n", 255),
            Frame::Line {
                line: 0..0,
                consumed: 2
            }
        );
    }

    #[test]
    fn limits_line_length_including_crlf() {
        let mut f = Framer::default();
        let ok = [b"A".repeat(253), b"\r\n".to_vec()].concat();
        assert_eq!(
            f.next(&ok, 255),
            Frame::Line {
                line: 0..253,
                consumed: 255
            }
        );
        let long = [b"A".repeat(254), b"\r\n".to_vec()].concat();
        assert_eq!(
            f.next(&long, 255),
            Frame::TooLong {
                consumed: 256,
                ended: true
            }
        );
        let endless = b"B".repeat(300);
        assert_eq!(
            f.next(&endless, 255),
            Frame::TooLong {
                consumed: 300,
                ended: false
            }
        );
        assert_eq!(
            f.next(b"BBB", 255),
            Frame::TooLong {
                consumed: 3,
                ended: false
            }
        );
        assert_eq!(f.next(b"", 255), Frame::Incomplete);
        assert_eq!(
            f.next(b"B\r\nNOOP\r\n", 255),
            Frame::TooLong {
                consumed: 3,
                ended: true
            }
        );
        assert_eq!(
            f.next(b"NOOP\r\n", 255),
            Frame::Line {
                line: 0..4,
                consumed: 6
            }
        );
    }
}

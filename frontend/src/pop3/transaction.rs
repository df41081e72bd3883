//! TRANSACTION and UPDATE state commands (RFC 1939 §5, §6, §7): STAT, LIST, RETR, DELE,
//! NOOP, RSET, TOP, UIDL, QUIT. Sizes are exact octets before dot-stuffing.
use super::parse::Command;
use super::session::{err, ok, Action, Listed, Listing, Maildrop, Session, State};
use std::fmt::Write;

pub(super) fn command(s: &mut Session, cmd: Command) -> Vec<Action> {
    let State::Transaction(md) = &mut s.state else {
        return Vec::new();
    };
    match cmd {
        Command::Stat => {
            let (n, octets) = md.totals();
            vec![ok(&format!("{n} {octets}"))]
        }
        Command::List(None) => vec![Action::SendListing(Listing::new(false))],
        Command::List(Some(n)) => match md.get(n) {
            Ok(m) => vec![ok(&format!("{n} {}", m.size))],
            Err(e) => vec![err(e)],
        },
        Command::Uidl(None) => vec![Action::SendListing(Listing::new(true))],
        Command::Uidl(Some(n)) => match md.get(n) {
            Ok(m) => vec![ok(&format!("{n} {}", m.uid))],
            Err(e) => vec![err(e)],
        },
        Command::Retr(n) => match md.get(n) {
            Ok(m) => vec![Action::Stream {
                uid: m.uid,
                top: None,
                header: format!("+OK {} octets\r\n", m.size),
                ahead: read_ahead(md, n),
            }],
            Err(e) => vec![err(e)],
        },
        Command::Top(n, lines) => match md.get(n) {
            Ok(m) => vec![Action::Stream {
                uid: m.uid,
                top: Some(lines),
                header: "+OK Top of message follows\r\n".to_string(),
                ahead: Vec::new(),
            }],
            Err(e) => vec![err(e)],
        },
        Command::Dele(n) => match md.get(n) {
            Ok(_) => {
                md.deleted[n as usize - 1] = true;
                vec![ok(&format!("Message {n} deleted"))]
            }
            Err(e) => vec![err(e)],
        },
        Command::Noop => vec![ok("")],
        Command::Rset => {
            md.deleted.iter_mut().for_each(|d| *d = false);
            let (n, octets) = md.totals();
            vec![ok(&format!("{n} messages ({octets} octets)"))]
        }
        Command::Quit => {
            let deleted = md
                .messages
                .iter()
                .zip(&md.deleted)
                .filter(|(_, &d)| d)
                .map(|(m, _)| m.uid)
                .collect();
            s.state = State::Updating;
            vec![Action::Commit { deleted }]
        }
        Command::User(_)
        | Command::Pass(_)
        | Command::Auth { .. }
        | Command::Stls
        | Command::Capa => s.bad("Not valid after login"),
    }
}

/// Messages of at most this size are read ahead…
const READ_AHEAD_MAX_MESSAGE: i64 = 64 * 1024;
/// …up to this many octets…
const READ_AHEAD_BUDGET: i64 = 512 * 1024;
/// …and this many messages at once: two batches, the driver fetches the first along with the
/// message asked for and the second in the background while the client reads.
const READ_AHEAD_MAX: usize = 32;

/// After RETR of message `n` (small itself), the messages that follow it and are not marked
/// deleted, in order, while each is small and they fit the budget together.
fn read_ahead(md: &Maildrop, n: u32) -> Vec<i64> {
    let this = &md.messages[n as usize - 1];
    let mut budget = READ_AHEAD_BUDGET - this.size;
    let mut out = Vec::new();
    if this.size > READ_AHEAD_MAX_MESSAGE {
        return out;
    }
    let following = md.messages.iter().zip(&md.deleted).skip(n as usize);
    for (m, _) in following.filter(|(_, &deleted)| !deleted) {
        if m.size > READ_AHEAD_MAX_MESSAGE || m.size > budget || out.len() == READ_AHEAD_MAX {
            break;
        }
        budget -= m.size;
        out.push(m.uid);
    }
    out
}

pub(super) fn committed(s: &mut Session, result: Result<u32, ()>) -> Vec<Action> {
    if s.state != State::Updating {
        return Vec::new();
    }
    s.state = State::Closed;
    match result {
        Ok(n) => vec![
            ok(&format!(
                "Bridgehead POP3 server signing off ({n} messages deleted)"
            )),
            Action::Close,
        ],
        Err(()) => vec![
            err("[SYS/TEMP] Some deleted messages were not removed"),
            Action::Close,
        ],
    }
}

impl Maildrop {
    /// The message numbered `n` (1-based) unless it does not exist or is marked deleted.
    fn get(&self, n: u32) -> Result<Listed, &'static str> {
        let i = (n as usize).wrapping_sub(1);
        match (self.messages.get(i), self.deleted.get(i)) {
            (Some(_), Some(true)) => Err("Message already deleted"),
            (Some(m), _) => Ok(*m),
            _ => Err("No such message"),
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Listed)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    fn totals(&self) -> (usize, i64) {
        self.live()
            .fold((0, 0), |(n, o), (_, m)| (n + 1, o + m.size))
    }

    /// Appends the next lines of `listing` to `out` (at least one) until it holds `max`
    /// octets or the listing ends ("+OK" first, one line per live message, "." last). True when it ended.
    pub(super) fn listing_chunk(
        &self,
        listing: &mut Listing,
        out: &mut Vec<u8>,
        max: usize,
    ) -> bool {
        if !listing.started {
            let (n, octets) = self.totals();
            let _ = write!(Bytes(out), "+OK {n} messages ({octets} octets)\r\n");
            listing.started = true;
        }
        loop {
            let i = listing.next;
            let Some(m) = self.messages.get(i) else {
                out.extend_from_slice(b".\r\n");
                return true;
            };
            listing.next += 1;
            if !self.deleted[i] {
                let value = if listing.uids { m.uid } else { m.size };
                let _ = write!(Bytes(out), "{} {value}\r\n", i + 1);
            }
            if out.len() >= max {
                return false;
            }
        }
    }
}

impl Listing {
    fn new(uids: bool) -> Listing {
        Listing {
            uids,
            next: 0,
            started: false,
        }
    }
}

/// `write!` straight into a byte buffer (no String per line).
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod read_ahead_tests {
    use super::super::session::{Event, LoginResult, SessionConfig};
    use super::*;

    /// A logged-in session over messages of these sizes (UIDs 10, 20, …).
    fn session(sizes: &[i64]) -> Session {
        let mut s = Session::new(SessionConfig {
            implicit_tls: false,
            stls_available: false,
            allow_plaintext_auth: true,
            max_bad_commands: 10,
        });
        s.handle(Event::Connected);
        s.handle(Event::Line(b"USER a@b.c\r\n"));
        s.handle(Event::Line(b"PASS pw\r\n"));
        let listing = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Listed {
                uid: 10 * (i as i64 + 1),
                size,
            })
            .collect();
        s.handle(Event::Login(LoginResult::Opened(listing)));
        s
    }

    fn ahead(s: &mut Session, line: &[u8]) -> Vec<i64> {
        match s.handle(Event::Line(line)).pop() {
            Some(Action::Stream { ahead, .. }) => ahead,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retr_reads_the_following_small_messages_along() {
        let k = 1024;
        let mut s = session(&[10 * k, 10 * k, 10 * k, 100 * k, 10 * k]);
        s.handle(Event::Line(b"DELE 2\r\n"));
        assert_eq!(
            ahead(&mut s, b"RETR 1\r\n"),
            vec![30],
            "skips deleted, stops at big"
        );
        assert_eq!(
            ahead(&mut s, b"RETR 4\r\n"),
            Vec::<i64>::new(),
            "a big one: none"
        );
        assert_eq!(
            ahead(&mut s, b"RETR 5\r\n"),
            Vec::<i64>::new(),
            "the last: none"
        );
        assert_eq!(
            ahead(&mut s, b"TOP 1 0\r\n"),
            Vec::<i64>::new(),
            "TOP: none"
        );
    }

    #[test]
    fn read_ahead_keeps_to_its_budget() {
        let mut s = session(&[60 * 1024; 10]);
        assert_eq!(
            ahead(&mut s, b"RETR 1\r\n"),
            vec![20, 30, 40, 50, 60, 70, 80]
        );
        let mut s = session(&[100; 40]);
        assert_eq!(ahead(&mut s, b"RETR 1\r\n").len(), READ_AHEAD_MAX);
    }

    #[test]
    fn a_big_listing_comes_in_bounded_pieces_and_whole() {
        let mut s = session(&vec![100; 100_000]);
        s.handle(Event::Line(b"DELE 3"));
        let mut listing = match s.handle(Event::Line(b"UIDL")).pop() {
            Some(Action::SendListing(listing)) => listing,
            other => panic!("UIDL is a streamed listing: {other:?}"),
        };
        let (mut all, mut pieces) = (Vec::new(), 0);
        loop {
            let mut piece = Vec::new();
            let done = s.listing_chunk(&mut listing, &mut piece, 64 * 1024);
            assert!(piece.len() < 64 * 1024 + 64, "{}", piece.len());
            all.extend_from_slice(&piece);
            pieces += 1;
            if done {
                break;
            }
        }
        let text = String::from_utf8(all).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "+OK 99999 messages (9999900 octets)");
        assert_eq!((lines[1], lines[2], lines[3]), ("1 10", "2 20", "4 40"));
        assert_eq!(lines[lines.len() - 3..], ["100000 1000000", ".", ""]);
        assert_eq!(
            lines.len(),
            99_999 + 3,
            "header, lines, \".\" and the empty tail"
        );
        assert!(pieces > 10, "{pieces}");
    }
}

//! TRANSACTION and UPDATE state commands (RFC 1939 §5, §6, §7): STAT, LIST, RETR, DELE,
//! NOOP, RSET, TOP, UIDL, QUIT. Sizes are exact octets before dot-stuffing.
use super::parse::Command;
use super::session::{err, ok, Action, Listed, Maildrop, Session, State};
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
        Command::List(None) => vec![md.multiline(|i, m| format!("{} {}", i + 1, m.size))],
        Command::List(Some(n)) => match md.get(n) {
            Ok(m) => vec![ok(&format!("{n} {}", m.size))],
            Err(e) => vec![err(e)],
        },
        Command::Uidl(None) => vec![md.multiline(|i, m| format!("{} {}", i + 1, m.uid))],
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
const READ_AHEAD_BUDGET: i64 = 256 * 1024;
/// …and this many messages at once.
const READ_AHEAD_MAX: usize = 16;

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

    /// "+OK", one line per live message, ".".
    fn multiline(&self, line: impl Fn(usize, &Listed) -> String) -> Action {
        let (n, octets) = self.totals();
        let mut out = String::with_capacity(32 + n * 16);
        let _ = write!(out, "+OK {n} messages ({octets} octets)\r\n");
        for (i, m) in self.live() {
            out.push_str(&line(i, m));
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        Action::Send(out.into_bytes())
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
        assert_eq!(ahead(&mut s, b"RETR 1\r\n"), vec![20, 30, 40]);
        let mut s = session(&[100; 40]);
        assert_eq!(ahead(&mut s, b"RETR 1\r\n").len(), READ_AHEAD_MAX);
    }
}

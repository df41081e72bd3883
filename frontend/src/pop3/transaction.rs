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
            }],
            Err(e) => vec![err(e)],
        },
        Command::Top(n, lines) => match md.get(n) {
            Ok(m) => vec![Action::Stream {
                uid: m.uid,
                top: Some(lines),
                header: "+OK Top of message follows\r\n".to_string(),
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

//! The POP3 framer and session on arbitrary input, as the driver runs them. Invariants: no
//! panic; every reply is "+OK", "-ERR" or a SASL "+ " continuation ending in CRLF; only QUIT
//! commits deletions (RFC 1939 §6), and only of messages that were in the maildrop.
use bridgehead_frontend::lines::{Frame, Framer};
use bridgehead_frontend::pop3::session::{
    Action, Event, Listed, LoginResult, Session, SessionConfig,
};

fn maildrop() -> Vec<Listed> {
    (1..=3)
        .map(|uid| Listed {
            uid,
            size: 100 * uid,
        })
        .collect()
}

/// Check what the session asked for; answer a login so the transaction state is reached.
fn check(s: &mut Session, actions: Vec<Action>, line: &[u8]) {
    for a in actions {
        match a {
            Action::Send(reply) => {
                assert!(reply.ends_with(b"\r\n"), "{reply:?}");
                assert!(
                    reply.starts_with(b"+OK")
                        || reply.starts_with(b"-ERR")
                        || reply.starts_with(b"+ "),
                    "{reply:?}"
                );
            }
            Action::SendListing(mut listing) => {
                let mut out = Vec::new();
                while !s.listing_chunk(&mut listing, &mut out, 16) {}
                assert!(
                    out.starts_with(b"+OK") && out.ends_with(b"\r\n.\r\n"),
                    "{out:?}"
                );
            }
            Action::Commit { deleted } => {
                assert!(
                    line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"QUIT"),
                    "{line:?}"
                );
                assert!(
                    deleted.iter().all(|uid| (1..=3).contains(uid)),
                    "{deleted:?}"
                );
                let more = s.handle(Event::Committed(Ok(deleted.len() as u32)));
                check(s, more, b"");
            }
            Action::Login { .. } => {
                let more = s.handle(Event::Login(LoginResult::Opened(maildrop())));
                check(s, more, b"");
            }
            Action::StartTls => {
                let more = s.handle(Event::TlsStarted);
                check(s, more, b"");
            }
            Action::Stream { uid, ahead, .. } => {
                assert!((1..=3).contains(&uid), "{uid}");
                assert!(ahead.iter().all(|a| *a > uid && *a <= 3), "{ahead:?}");
            }
            Action::Release | Action::Close => {}
        }
    }
}

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let mut s = Session::new(SessionConfig {
        implicit_tls: data.first().is_some_and(|b| b & 1 == 1),
        stls_available: true,
        allow_plaintext_auth: false,
        max_bad_commands: 10,
    });
    let mut f = Framer::default();
    let mut buf = data.to_vec();
    let hello = s.handle(Event::Connected);
    check(&mut s, hello, b"");
    while !s.is_closed() {
        match f.next(&buf, s.max_line()) {
            Frame::Incomplete => break,
            Frame::Line { line, consumed } => {
                let l = buf[line].to_vec();
                buf.drain(..consumed);
                let actions = s.handle(Event::Line(&l));
                check(&mut s, actions, &l);
            }
            Frame::TooLong { consumed, ended } => {
                buf.drain(..consumed);
                if ended {
                    let actions = s.handle(Event::LineTooLong);
                    check(&mut s, actions, b"");
                }
            }
        }
    }
}

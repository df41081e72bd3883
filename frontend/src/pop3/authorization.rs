//! AUTHORIZATION state commands: USER, PASS, AUTH (PLAIN, LOGIN), STLS (RFC 1939 §7,
//! RFC 5034, RFC 2595). No APOP: it rests on MD5 and leaks passwords (CVE-2007-1558).
use super::parse::Command;
use super::session::{err, ok, Action, Listed, LoginResult, Maildrop, Session, State};
use crate::sasl::{self, SaslError};

const PLAINTEXT_REFUSED: &str =
    "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS or POP3S";

pub(super) fn command(s: &mut Session, cmd: Command) -> Vec<Action> {
    match cmd {
        Command::User(_) | Command::Pass(_) | Command::Auth { .. }
            if !s.plaintext_auth_allowed() =>
        {
            vec![err(PLAINTEXT_REFUSED)]
        }
        Command::User(name) => {
            s.state = State::Authorization { user: Some(name) };
            vec![ok("Send your password")]
        }
        Command::Pass(password) => {
            match std::mem::replace(&mut s.state, State::Authorization { user: None }) {
                State::Authorization { user: Some(user) } => start_login(s, user, password),
                _ => s.bad("No user name given; send USER first"),
            }
        }
        Command::Auth {
            mechanism: None, ..
        } => {
            vec![Action::Send(
                b"+OK Supported mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n".to_vec(),
            )]
        }
        Command::Auth {
            mechanism: Some(m),
            initial,
        } => auth(s, &m, initial),
        Command::Stls if s.tls => s.bad("Already using TLS"),
        Command::Stls if !s.config.stls_available => s.bad("STLS is not available here"),
        Command::Stls => {
            s.state = State::Authorization { user: None };
            vec![ok("Begin TLS negotiation"), Action::StartTls]
        }
        _ => s.bad("Not valid before login"),
    }
}

fn auth(s: &mut Session, mechanism: &str, initial: Option<String>) -> Vec<Action> {
    match (mechanism, initial) {
        ("PLAIN", Some(resp)) => plain(s, resp.as_bytes()),
        ("PLAIN", None) => {
            s.state = State::SaslPlain;
            vec![Action::Send(b"+ \r\n".to_vec())]
        }
        ("LOGIN", Some(user)) => login_user(s, user.as_bytes()),
        ("LOGIN", None) => {
            s.state = State::SaslLoginUser;
            vec![Action::Send(
                format!("+ {}\r\n", sasl::LOGIN_USERNAME).into_bytes(),
            )]
        }
        _ => s.bad("Unsupported authentication mechanism"),
    }
}

/// A line sent in answer to a SASL challenge.
pub(super) fn sasl_response(s: &mut Session, line: &[u8]) -> Vec<Action> {
    let state = std::mem::replace(&mut s.state, State::Authorization { user: None });
    if line == b"*" {
        return vec![err("Authentication cancelled")];
    }
    match state {
        State::SaslPlain => plain(s, line),
        State::SaslLoginUser => login_user(s, line),
        State::SaslLoginPass { user } => match sasl::decode(line) {
            Ok(password) => start_login(s, user, password),
            Err(_) => vec![err("Invalid base64 data")],
        },
        other => {
            s.state = other;
            Vec::new()
        }
    }
}

/// RFC 4616 PLAIN, through the shared SASL decoder.
fn plain(s: &mut Session, b64: &[u8]) -> Vec<Action> {
    match sasl::plain(b64) {
        Ok((user, pass)) => start_login(s, user, pass),
        Err(SaslError::BadBase64) => vec![err("Invalid base64 data")],
        Err(SaslError::MalformedPlain) => vec![err(
            "Malformed PLAIN response: expected [authzid] NUL user NUL password",
        )],
        Err(SaslError::BadPlain) => vec![err("[AUTH] Authentication failed")],
    }
}

fn login_user(s: &mut Session, b64: &[u8]) -> Vec<Action> {
    match sasl::decode(b64) {
        Ok(user) => {
            s.state = State::SaslLoginPass { user };
            vec![Action::Send(
                format!("+ {}\r\n", sasl::LOGIN_PASSWORD).into_bytes(),
            )]
        }
        Err(_) => vec![err("Invalid base64 data")],
    }
}

fn start_login(s: &mut Session, user: String, password: String) -> Vec<Action> {
    if user.is_empty() || password.is_empty() {
        return vec![err("[AUTH] Authentication failed")];
    }
    s.state = State::LoggingIn;
    vec![Action::Login { user, password }]
}

pub(super) fn login_result(s: &mut Session, result: LoginResult) -> Vec<Action> {
    if s.state != State::LoggingIn {
        return Vec::new();
    }
    s.state = State::Authorization { user: None };
    match result {
        LoginResult::Opened(messages) => {
            let count = messages.len();
            let octets: i64 = messages.iter().map(|m: &Listed| m.size).sum();
            s.state = State::Transaction(Maildrop {
                deleted: vec![false; count],
                messages,
            });
            vec![ok(&format!(
                "Logged in, {count} messages ({octets} octets)"
            ))]
        }
        LoginResult::AuthFailed => vec![err("[AUTH] Authentication failed")],
        LoginResult::InUse => vec![err("[IN-USE] Mailbox is in use by another POP3 session")],
        LoginResult::Unavailable => vec![err(
            "[SYS/TEMP] Service temporarily unavailable, try again later",
        )],
    }
}

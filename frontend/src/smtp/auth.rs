//! AUTH on the submission ports (RFC 4954): PLAIN and LOGIN, over TLS unless configured.
use super::parse::Mechanism;
use super::session::{reply, Action, AuthResult, Listener, Session, State};
use crate::sasl::{self, SaslError};

pub(super) fn start(s: &mut Session, mechanism: Mechanism, initial: Option<String>) -> Vec<Action> {
    if s.config.listener == Listener::Mx {
        return s.bad("503 5.5.1 AUTH is not offered on this port; use submission");
    }
    if s.auth.is_some() {
        return s.bad("503 5.5.1 Already authenticated");
    }
    if s.tx.is_some() {
        return s.bad("503 5.5.1 AUTH is not allowed during a mail transaction");
    }
    if !s.auth_offered() {
        return s.bad("538 5.7.11 Encryption required for requested authentication mechanism");
    }
    match (mechanism, initial) {
        (Mechanism::Plain, Some(resp)) => plain(s, resp.as_bytes()),
        (Mechanism::Plain, None) => {
            s.state = State::SaslPlain;
            vec![reply("334 ")]
        }
        (Mechanism::Login, Some(user)) => login_user(s, user.as_bytes()),
        (Mechanism::Login, None) => {
            s.state = State::SaslLoginUser;
            vec![reply(&format!("334 {}", sasl::LOGIN_USERNAME))]
        }
        (Mechanism::Other, _) => s.bad("504 5.5.4 Unrecognized authentication type"),
    }
}

/// A line sent in answer to a 334 challenge.
pub(super) fn sasl_response(s: &mut Session, line: &[u8]) -> Vec<Action> {
    let state = std::mem::replace(&mut s.state, State::Ready);
    if line == b"*" {
        return vec![reply("501 5.7.0 Authentication cancelled")];
    }
    match state {
        State::SaslPlain => plain(s, line),
        State::SaslLoginUser => login_user(s, line),
        State::SaslLoginPass { user } => match sasl::decode(line) {
            Ok(password) if !password.is_empty() => authenticate(s, user, password),
            Ok(_) => vec![reply("535 5.7.8 Authentication credentials invalid")],
            Err(_) => vec![reply("501 5.5.2 Invalid base64 data")],
        },
        other => {
            s.state = other;
            Vec::new()
        }
    }
}

fn plain(s: &mut Session, b64: &[u8]) -> Vec<Action> {
    match sasl::plain(b64) {
        Ok((user, password)) => authenticate(s, user, password),
        Err(SaslError::BadBase64) => vec![reply("501 5.5.2 Invalid base64 data")],
        Err(SaslError::MalformedPlain) => vec![reply(
            "501 5.5.2 Malformed PLAIN response: expected [authzid] NUL user NUL password",
        )],
        Err(SaslError::BadPlain) => vec![reply("535 5.7.8 Authentication credentials invalid")],
    }
}

fn login_user(s: &mut Session, b64: &[u8]) -> Vec<Action> {
    match sasl::decode(b64) {
        Ok(user) => {
            s.state = State::SaslLoginPass { user };
            vec![reply(&format!("334 {}", sasl::LOGIN_PASSWORD))]
        }
        Err(_) => vec![reply("501 5.5.2 Invalid base64 data")],
    }
}

fn authenticate(s: &mut Session, user: String, password: String) -> Vec<Action> {
    s.state = State::Authenticating;
    vec![Action::Authenticate { user, password }]
}

pub(super) fn result(s: &mut Session, r: AuthResult) -> Vec<Action> {
    if s.state != State::Authenticating {
        return Vec::new();
    }
    s.state = State::Ready;
    match r {
        AuthResult::Ok { user, addresses } => {
            s.auth = Some((user, addresses));
            vec![reply("235 2.7.0 Authentication successful")]
        }
        AuthResult::Failed => s.bad("535 5.7.8 Authentication credentials invalid"),
        AuthResult::Unavailable => vec![reply("454 4.7.0 Temporary authentication failure")],
    }
}

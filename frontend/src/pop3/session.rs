//! The POP3 session as a pure state machine: `handle(event) -> actions`.
//!
//! No sockets, TLS or gRPC here: the driver (`connection.rs`) feeds events (lines, TLS up,
//! back-end answers) and carries out the actions (send, start TLS, call the back-end).
//! Each state carries its own data. RFC 1939 (states and commands), RFC 2449 (CAPA,
//! RESP-CODES), RFC 2595 (STLS), RFC 5034 (AUTH), RFC 8314 (implicit TLS).
//!
//! Invariants: no password is accepted over plaintext unless configured; deletion marks live
//! only here until QUIT, when they go to the back-end in one `Commit`; after STLS everything
//! the client said before (and the USER name) is forgotten.
use super::parse::{parse_command, Command, ParseError};
use super::{authorization, transaction};

/// Longest command line, CRLF included (RFC 2449 §4).
pub const MAX_COMMAND_LINE: usize = 255;
/// Longest SASL response line (a base64 PLAIN response with a long password).
pub const MAX_SASL_LINE: usize = 2048;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The connection is TLS from the start (POP3S).
    pub implicit_tls: bool,
    /// STLS can be offered (a certificate is configured).
    pub stls_available: bool,
    /// USER/PASS and AUTH are allowed without TLS.
    pub allow_plaintext_auth: bool,
    /// After this many bad commands the session is closed.
    pub max_bad_commands: u32,
}

/// One message as the maildrop lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub uid: i64,
    pub size: i64,
}

/// How the back-end answered a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginResult {
    Opened(Vec<Listed>),
    AuthFailed,
    InUse,
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    Connected,
    Line(&'a [u8]),
    /// A line longer than allowed ended (its bytes were dropped).
    LineTooLong,
    TlsStarted,
    Login(LoginResult),
    /// The back-end could not start sending a message.
    FetchFailed {
        missing: bool,
    },
    Committed(Result<u32, ()>),
    IdleTimeout,
    ShuttingDown,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(Vec<u8>),
    /// Send a multi-line LIST or UIDL listing, piece by piece: the driver calls
    /// `Session::listing_chunk` until it says done, flushing between pieces, so a listing of
    /// a million messages never sits whole in memory.
    SendListing(Listing),
    StartTls,
    Login {
        user: String,
        password: String,
    },
    /// Send `header`, then the message stuffed, then ".": when the first chunk is in hand.
    /// `ahead`: the next messages a client reading its mailbox in order will ask for, small
    /// enough to be fetched along with this one (read-ahead; empty for TOP).
    Stream {
        uid: i64,
        top: Option<u32>,
        header: String,
        ahead: Vec<i64>,
    },
    Commit {
        deleted: Vec<i64>,
    },
    /// Give the maildrop lease back without deleting anything.
    Release,
    Close,
}

/// Where a multi-line listing is: which one, and the next message index to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    pub(super) uids: bool,
    pub(super) next: usize,
    pub(super) started: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Authorization { user: Option<String> },
    SaslPlain,
    SaslLoginUser,
    SaslLoginPass { user: String },
    LoggingIn,
    Transaction(Maildrop),
    Updating,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Maildrop {
    pub messages: Vec<Listed>,
    pub deleted: Vec<bool>,
}

pub struct Session {
    pub(super) config: SessionConfig,
    pub(super) state: State,
    pub(super) tls: bool,
    bad_commands: u32,
}

impl Session {
    pub fn new(config: SessionConfig) -> Session {
        Session {
            tls: config.implicit_tls,
            config,
            state: State::Authorization { user: None },
            bad_commands: 0,
        }
    }

    /// How long the next input line may be, CRLF included.
    pub fn max_line(&self) -> usize {
        match self.state {
            State::SaslPlain | State::SaslLoginUser | State::SaslLoginPass { .. } => MAX_SASL_LINE,
            _ => MAX_COMMAND_LINE,
        }
    }

    /// The next piece of a listing an `Action::SendListing` asked for, appended to `out` up
    /// to about `max` octets; true when the listing has ended.
    pub fn listing_chunk(&self, listing: &mut Listing, out: &mut Vec<u8>, max: usize) -> bool {
        match &self.state {
            State::Transaction(md) => md.listing_chunk(listing, out, max),
            _ => true,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True while this session holds the maildrop lease.
    pub fn holds_lease(&self) -> bool {
        matches!(self.state, State::Transaction(_) | State::Updating)
    }

    pub fn handle(&mut self, event: Event<'_>) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        match event {
            Event::Connected => vec![ok("Bridgehead POP3 server ready")],
            Event::Line(line) => self.line(line),
            Event::LineTooLong => self.bad("Command line too long"),
            Event::TlsStarted => {
                self.tls = true;
                self.state = State::Authorization { user: None };
                Vec::new()
            }
            Event::Login(result) => authorization::login_result(self, result),
            Event::FetchFailed { missing: true } => vec![err("No such message")],
            Event::FetchFailed { missing: false } => vec![err(
                "[SYS/TEMP] Cannot read the message now, try again later",
            )],
            Event::Committed(result) => transaction::committed(self, result),
            Event::IdleTimeout => self.close_with("Autologout; idle for too long"),
            Event::ShuttingDown => {
                self.close_with("[SYS/TEMP] Server shutting down, please reconnect")
            }
            Event::Disconnected => self.close_silently(),
        }
    }

    fn line(&mut self, line: &[u8]) -> Vec<Action> {
        match &self.state {
            State::SaslPlain | State::SaslLoginUser | State::SaslLoginPass { .. } => {
                return authorization::sasl_response(self, line);
            }
            State::LoggingIn | State::Updating | State::Closed => return Vec::new(),
            State::Authorization { .. } | State::Transaction(_) => {}
        }
        if line.starts_with(b"PROXY ") {
            // Only trusted balancers may say who the client is; they are read before this.
            return self.close_with("PROXY protocol header from an untrusted address");
        }
        match parse_command(line) {
            Ok(Command::Capa) => vec![self.capabilities()],
            Ok(Command::Quit) if !self.holds_lease() => {
                self.state = State::Closed;
                vec![ok("Bridgehead POP3 server signing off"), Action::Close]
            }
            Ok(cmd) if matches!(self.state, State::Authorization { .. }) => {
                authorization::command(self, cmd)
            }
            Ok(cmd) => transaction::command(self, cmd),
            Err(ParseError::Unknown) => self.bad("Unknown command"),
            Err(ParseError::Syntax(why)) => self.bad(why),
        }
    }

    /// Answers a bad command; too many of them end the session.
    pub(super) fn bad(&mut self, why: &str) -> Vec<Action> {
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            return self.close_with("Too many bad commands, closing connection");
        }
        vec![err(why)]
    }

    pub(super) fn plaintext_auth_allowed(&self) -> bool {
        self.tls || self.config.allow_plaintext_auth
    }

    fn capabilities(&self) -> Action {
        let mut caps = String::from("+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
        if matches!(self.state, State::Authorization { .. }) {
            if self.plaintext_auth_allowed() {
                caps.push_str("USER\r\nSASL PLAIN LOGIN\r\n");
            }
            if !self.tls && self.config.stls_available {
                caps.push_str("STLS\r\n");
            }
        }
        caps.push_str("IMPLEMENTATION Bridgehead\r\n.\r\n");
        Action::Send(caps.into_bytes())
    }

    fn close_with(&mut self, why: &str) -> Vec<Action> {
        let mut actions = vec![err(why)];
        actions.extend(self.close_silently());
        actions
    }

    fn close_silently(&mut self) -> Vec<Action> {
        let release = matches!(self.state, State::Transaction(_));
        self.state = State::Closed;
        if release {
            vec![Action::Release, Action::Close]
        } else {
            vec![Action::Close]
        }
    }
}

pub(super) fn ok(text: &str) -> Action {
    if text.is_empty() {
        return Action::Send(b"+OK\r\n".to_vec());
    }
    Action::Send(format!("+OK {text}\r\n").into_bytes())
}

pub(super) fn err(text: &str) -> Action {
    Action::Send(format!("-ERR {text}\r\n").into_bytes())
}

//! The SMTP session as a pure state machine: `handle(event) -> actions`.
//!
//! Like Postfix's smtpd, it only strips the protocol: sender, recipients and content go to a
//! back-end (`Action::Submit`), which stores them. No sockets, TLS or gRPC here. RFC 5321
//! (SMTP), 3207 (STARTTLS), 4954 (AUTH), 2920 (PIPELINING), 1870 (SIZE), 6152 (8BITMIME),
//! 2034/3463 (enhanced status codes), 3461 (DSN), 6531 (SMTPUTF8), 8314 (implicit TLS), 3030
//! (CHUNKING).
//!
//! Invariants: after STARTTLS everything said before is forgotten (HELO, MAIL, RCPT); no
//! password is taken without TLS unless configured; on submission ports nothing is accepted
//! before AUTH, and MAIL FROM must be an address the account owns; "250" for a message is
//! sent only when the back-end reports it committed.
use super::parse::{parse_command, Command, ParseError, Verb};
use super::{auth, envelope};
pub use crate::mail::{AuthResult, Envelope, RcptVerdict, Recipient};

/// What kind of listener the session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Inbound MX (port 25): no AUTH, local recipients only.
    Mx,
    /// Submission (port 587): STARTTLS, AUTH required.
    Submission,
    /// Submissions (port 465): implicit TLS, AUTH required.
    Submissions,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub listener: Listener,
    pub hostname: String,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub starttls_available: bool,
    pub allow_plaintext_auth: bool,
    pub max_bad_commands: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitResult {
    Queued(String),
    OverQuota,
    TooBig,
    Refused(String),
    /// Refused by the sender's own policy: the reason, starting with its enhanced status code
    /// (5.7.1: DMARC p=reject; 4.7.0: DNS could not tell, try later).
    PolicyRejected(String),
    /// Refused by a milter: its whole reply (`550 5.7.1 …`, `451 4.7.1 …`).
    Filtered(String),
    /// A milter said to drop it: 250, nothing stored.
    Discarded,
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The connection is open; `tls` describes TLS when it is implicit.
    Connected {
        tls: Option<String>,
    },
    /// One command line, with its line ending.
    Line(&'a [u8]),
    LineTooLong,
    TlsStarted {
        tls: String,
    },
    Authenticated(AuthResult),
    RecipientChecked(RcptVerdict),
    DataReceived(super::data::DataOutcome),
    /// A BDAT chunk's octets were all read; the content so far is judged so.
    ChunkReceived(super::data::DataOutcome),
    Submitted(SubmitResult),
    Timeout,
    ShuttingDown,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(String),
    StartTls,
    Authenticate {
        user: String,
        password: String,
    },
    CheckRecipient {
        address: String,
        sender: String,
        authenticated: bool,
        size: u64,
    },
    /// Switch to DATA: receive up to `max_size` octets until CRLF.CRLF.
    ReceiveData {
        max_size: u64,
    },
    /// Read the next `size` octets as a BDAT chunk (RFC 3030): into the message when `keep`
    /// (`first`: the message's first chunk, up to `max_size` in all; `last`: its end), or
    /// read and dropped when the BDAT was refused.
    ReceiveChunk {
        size: u64,
        max_size: u64,
        first: bool,
        last: bool,
        keep: bool,
    },
    Submit(Envelope),
    Close,
}

/// A mail transaction in progress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Transaction {
    pub from: String,
    pub params: super::parse::MailParams,
    pub recipients: Vec<Recipient>,
    /// BDAT chunks taken so far (DATA is refused after one).
    pub chunks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Ready,
    SaslPlain,
    SaslLoginUser,
    SaslLoginPass {
        user: String,
    },
    Authenticating,
    CheckingRecipient {
        notify: u32,
        orcpt: String,
        asked: String,
    },
    Data,
    /// Reading a BDAT chunk; `refusal`: the reply once its octets are read, if refused.
    Chunk {
        size: u64,
        last: bool,
        refusal: Option<String>,
    },
    Submitting,
    Closed,
}

pub struct Session {
    pub(super) config: SmtpConfig,
    pub(super) state: State,
    pub(super) tls: Option<String>,
    pub(super) helo: Option<(String, bool)>,
    pub(super) auth: Option<(String, Vec<String>)>,
    pub(super) tx: Option<Transaction>,
    bad_commands: u32,
}

/// Longest command line we read, CRLF included: 512 (RFC 5321 §4.5.3.1.4) plus room for
/// ESMTP parameters (RFC 1870 §3, RFC 3461 §4).
pub const MAX_COMMAND_LINE: usize = 1024;
/// Longest SASL response line.
pub const MAX_SASL_LINE: usize = 2048;

impl Session {
    /// The kind of listener this session came in on.
    pub fn listener(&self) -> Listener {
        self.config.listener
    }

    pub fn new(config: SmtpConfig) -> Session {
        Session {
            config,
            state: State::Ready,
            tls: None,
            helo: None,
            auth: None,
            tx: None,
            bad_commands: 0,
        }
    }

    pub fn max_line(&self) -> usize {
        match self.state {
            State::SaslPlain | State::SaslLoginUser | State::SaslLoginPass { .. } => MAX_SASL_LINE,
            _ => MAX_COMMAND_LINE,
        }
    }

    /// Whether a mail transaction is open (MAIL accepted, not yet ended or reset).
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn handle(&mut self, event: Event<'_>) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        match event {
            Event::Connected { tls } => {
                self.tls = tls;
                vec![reply(&format!(
                    "220 {} ESMTP Bridgehead",
                    self.config.hostname
                ))]
            }
            Event::Line(line) => self.line(line),
            Event::LineTooLong => self.bad("500 5.5.2 Line too long"),
            Event::TlsStarted { tls } => {
                // RFC 3207 §4.2: forget everything learnt before TLS.
                self.tls = Some(tls);
                self.helo = None;
                self.tx = None;
                self.state = State::Ready;
                Vec::new()
            }
            Event::Authenticated(r) => auth::result(self, r),
            Event::RecipientChecked(v) => envelope::recipient_checked(self, v),
            Event::DataReceived(outcome) => envelope::data_received(self, outcome),
            Event::ChunkReceived(outcome) => envelope::chunk_received(self, outcome),
            Event::Submitted(r) => envelope::submitted(self, r),
            Event::Timeout => self.close(&format!(
                "421 4.4.2 {} Error: timeout exceeded",
                self.config.hostname
            )),
            Event::ShuttingDown => self.close("421 4.3.2 Service shutting down, try again later"),
            Event::Disconnected => {
                self.state = State::Closed;
                vec![Action::Close]
            }
        }
    }

    fn line(&mut self, line: &[u8]) -> Vec<Action> {
        match self.state {
            State::SaslPlain | State::SaslLoginUser | State::SaslLoginPass { .. } => {
                return auth::sasl_response(self, trim_eol(line));
            }
            State::Ready => {}
            _ => return Vec::new(),
        }
        if line.starts_with(b"PROXY ") {
            // Only trusted balancers may say who the client is; they are read before this.
            return self.close("554 5.7.0 PROXY protocol header from an untrusted address");
        }
        let command = match parse_command(line) {
            Ok(c) => c,
            Err(ParseError::Unknown) => return self.bad("500 5.5.2 Command unrecognized"),
            Err(ParseError::BadSender) => return self.bad("501 5.1.7 Bad sender address syntax"),
            Err(ParseError::BadRecipient) => {
                return self.bad("501 5.1.3 Bad recipient address syntax")
            }
            Err(ParseError::Syntax(s)) => return self.bad(&format!("501 5.5.4 {s}")),
            Err(ParseError::InvalidUtf8(verb)) => {
                return self.bad(match verb {
                    Verb::Mail => "553 5.1.7 Sender address is not valid UTF-8",
                    Verb::Rcpt => "553 5.1.3 Recipient address is not valid UTF-8",
                    Verb::Other => "501 5.5.4 Command is not valid UTF-8",
                })
            }
        };
        self.command(command)
    }

    fn command(&mut self, command: Command) -> Vec<Action> {
        match command {
            Command::Ehlo(host) => self.hello(host, true),
            Command::Helo(host) => self.hello(host, false),
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => auth::start(self, mechanism, initial),
            Command::Mail { from, params } => envelope::mail(self, from, params),
            Command::Rcpt { to, notify, orcpt } => envelope::rcpt(self, to, notify, orcpt),
            Command::Data => envelope::data(self),
            Command::Bdat { size, last } => envelope::bdat(self, size, last),
            Command::Rset => {
                self.tx = None;
                vec![reply("250 2.0.0 Ok")]
            }
            Command::Noop => vec![reply("250 2.0.0 Ok")],
            Command::Quit => {
                self.state = State::Closed;
                vec![reply("221 2.0.0 Bye"), Action::Close]
            }
            Command::Vrfy => vec![reply(
                "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
            )],
            Command::Expn => vec![reply("502 5.5.1 EXPN is not available")],
            Command::Help => vec![reply("214 2.0.0 See RFC 5321")],
        }
    }

    fn hello(&mut self, host: String, esmtp: bool) -> Vec<Action> {
        self.tx = None;
        let name = self.config.hostname.clone();
        self.helo = Some((host.clone(), esmtp));
        if !esmtp {
            return vec![reply(&format!("250 {name}"))];
        }
        let mut lines = vec![
            format!("{name} Hello {host}"),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "SMTPUTF8".to_string(),
            "DSN".to_string(),
            "CHUNKING".to_string(),
        ];
        if self.tls.is_none() && self.config.starttls_available {
            lines.push("STARTTLS".to_string());
        }
        if self.tls.is_some() {
            // RFC 8689 §4.1: only where the message arrives over TLS itself.
            lines.push("REQUIRETLS".to_string());
        }
        if self.auth_offered() && self.auth.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        vec![multiline(250, &lines)]
    }

    fn starttls(&mut self) -> Vec<Action> {
        if self.tls.is_some() {
            return self.bad("503 5.5.1 TLS is already active");
        }
        if !self.config.starttls_available {
            return self.bad("502 5.5.1 STARTTLS is not available");
        }
        vec![reply("220 2.0.0 Ready to start TLS"), Action::StartTls]
    }

    /// AUTH is offered on submission ports, over TLS unless plaintext is allowed.
    pub(super) fn auth_offered(&self) -> bool {
        self.config.listener != Listener::Mx
            && (self.tls.is_some() || self.config.allow_plaintext_auth)
    }

    /// Answers a bad command; too many of them end the session.
    pub(super) fn bad(&mut self, text: &str) -> Vec<Action> {
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            return self.close("421 4.7.0 Too many errors, closing connection");
        }
        vec![reply(text)]
    }

    fn close(&mut self, text: &str) -> Vec<Action> {
        self.state = State::Closed;
        vec![reply(text), Action::Close]
    }

    /// RFC 3848 protocol name for the Received header.
    pub(super) fn protocol(&self, smtputf8: bool) -> String {
        let esmtp = self.helo.as_ref().is_some_and(|h| h.1);
        let mut p = match (smtputf8, esmtp) {
            (true, _) => "UTF8SMTP".to_string(),
            (false, true) => "ESMTP".to_string(),
            (false, false) => "SMTP".to_string(),
        };
        if self.tls.is_some() {
            p.push('S');
        }
        if self.auth.is_some() {
            p.push('A');
        }
        p
    }
}

pub(super) fn reply(text: &str) -> Action {
    Action::Send(format!("{text}\r\n"))
}

/// A multi-line reply: "250-a", "250-b", "250 c".
pub(super) fn multiline(code: u16, lines: &[String]) -> Action {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{l}\r\n"));
    }
    Action::Send(out)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

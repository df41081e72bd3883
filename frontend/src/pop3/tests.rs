//! Transcript tests of the pure POP3 session: client input in, server output out, with the
//! back-end played by an in-memory maildrop. Every transcript is also run with its input split
//! at every byte boundary, which must not change a single output byte.
use super::dotstuff::DotStuffer;
use super::parse::{Frame, Framer};
use super::session::{Action, Event, Listed, LoginResult, Session, SessionConfig};

const MSG1: &[u8] = b"Subject: one\r\n\r\nbody1\r\n.dot\r\n";
const MSG2: &[u8] = b"Subject: two\r\nX: y\r\n\r\na\r\nb\r\nc\r\n";

struct Harness {
    session: Session,
    framer: Framer,
    out: Vec<u8>,
    deleted: Option<Vec<i64>>,
    released: bool,
    closed: bool,
    tls_started: bool,
    password: &'static str,
}

fn config(tls: bool) -> SessionConfig {
    SessionConfig {
        implicit_tls: tls,
        stls_available: true,
        allow_plaintext_auth: false,
        max_bad_commands: 5,
    }
}

impl Harness {
    fn new(cfg: SessionConfig) -> Harness {
        let mut h = Harness {
            session: Session::new(cfg),
            framer: Framer::default(),
            out: Vec::new(),
            deleted: None,
            released: false,
            closed: false,
            tls_started: false,
            password: "secret",
        };
        h.apply(Event::Connected);
        h
    }

    fn messages() -> Vec<(i64, &'static [u8])> {
        vec![(11, MSG1), (12, MSG2)]
    }

    fn apply(&mut self, event: Event<'_>) {
        let mut pending: Vec<Action> = self.session.handle(event);
        while !pending.is_empty() {
            let action = pending.remove(0);
            let follow = match action {
                Action::Send(b) => {
                    self.out.extend_from_slice(&b);
                    None
                }
                Action::SendListing(mut listing) => {
                    // Tiny pieces: a listing must come out whole however it is cut.
                    while !self.session.listing_chunk(&mut listing, &mut self.out, 1) {}
                    None
                }
                Action::StartTls => {
                    self.tls_started = true;
                    Some(Event::TlsStarted)
                }
                Action::Login { user, password } => Some(Event::Login(
                    if user == "alice@example.com" && password == self.password {
                        LoginResult::Opened(
                            Self::messages()
                                .iter()
                                .map(|(uid, m)| Listed {
                                    uid: *uid,
                                    size: m.len() as i64,
                                })
                                .collect(),
                        )
                    } else if user == "busy@example.com" {
                        LoginResult::InUse
                    } else {
                        LoginResult::AuthFailed
                    },
                )),
                Action::Stream {
                    uid, top, header, ..
                } => {
                    let (_, msg) = Self::messages()
                        .into_iter()
                        .find(|(u, _)| *u == uid)
                        .unwrap();
                    let body = match top {
                        Some(n) => top_of(msg, n),
                        None => msg.to_vec(),
                    };
                    self.out.extend_from_slice(header.as_bytes());
                    let mut d = DotStuffer::default();
                    d.push(&body, &mut self.out);
                    d.finish(&mut self.out);
                    None
                }
                Action::Commit { deleted } => {
                    let n = deleted.len() as u32;
                    self.deleted = Some(deleted);
                    Some(Event::Committed(Ok(n)))
                }
                Action::Release => {
                    self.released = true;
                    None
                }
                Action::Close => {
                    self.closed = true;
                    None
                }
            };
            if let Some(ev) = follow {
                pending.extend(self.session.handle(ev));
            }
        }
    }

    /// Feeds input as the driver does: frame whatever complete lines are buffered.
    fn feed(&mut self, buf: &mut Vec<u8>) {
        while !self.session.is_closed() {
            match self.framer.next(buf, self.session.max_line()) {
                Frame::Incomplete => break,
                Frame::Line { line, consumed } => {
                    let l = buf[line].to_vec();
                    self.apply(Event::Line(&l));
                    buf.drain(..consumed);
                }
                Frame::TooLong { consumed, ended } => {
                    buf.drain(..consumed);
                    if ended {
                        self.apply(Event::LineTooLong);
                    }
                }
            }
            if self.tls_started {
                self.tls_started = false;
                buf.clear();
            }
        }
    }
}

fn top_of(msg: &[u8], n: u32) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let lines: Vec<&str> = body.split_inclusive("\r\n").take(n as usize).collect();
    format!("{head}\r\n\r\n{}", lines.concat()).into_bytes()
}

/// Runs `input` in pieces split at `splits`, returns the harness after it.
fn run(cfg: SessionConfig, input: &[u8], splits: &[usize]) -> Harness {
    let mut h = Harness::new(cfg);
    let mut buf = Vec::new();
    let mut last = 0;
    for &s in splits.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[last..s]);
        last = s;
        h.feed(&mut buf);
    }
    h
}

/// Runs the transcript whole and split at every byte, checks all give `expected`.
fn transcript(cfg: SessionConfig, input: &[u8], expected: &str) -> Harness {
    let whole = run(cfg.clone(), input, &[]);
    assert_eq!(String::from_utf8_lossy(&whole.out), expected);
    for at in 1..input.len() {
        let split = run(cfg.clone(), input, &[at]);
        assert_eq!(split.out, whole.out, "differs when split at {at}");
    }
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(
        run(cfg, input, &bytewise).out,
        whole.out,
        "differs when fed byte by byte"
    );
    whole
}

#[test]
fn full_session_over_tls() {
    let input = b"CAPA\r\nUSER alice@example.com\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nLIST 1\r\nSTAT\r\nQUIT\r\n";
    let expected = "+OK Bridgehead POP3 server ready\r\n\
        +OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION Bridgehead\r\n.\r\n\
        +OK Send your password\r\n\
        +OK Logged in, 2 messages (60 octets)\r\n\
        +OK 2 60\r\n\
        +OK 2 messages (60 octets)\r\n1 29\r\n2 31\r\n.\r\n\
        +OK 2 12\r\n\
        +OK 29 octets\r\nSubject: one\r\n\r\nbody1\r\n..dot\r\n.\r\n\
        +OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\na\r\n.\r\n\
        +OK Message 1 deleted\r\n\
        -ERR Message already deleted\r\n\
        +OK 1 31\r\n\
        +OK Bridgehead POP3 server signing off (1 messages deleted)\r\n";
    let h = transcript(config(true), input, expected);
    assert_eq!(h.deleted, Some(vec![11]));
    assert!(h.closed);
}

#[test]
fn plaintext_login_is_refused_before_tls() {
    let input = b"CAPA\r\nUSER alice@example.com\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\nSTAT\r\nQUIT\r\n";
    let expected = "+OK Bridgehead POP3 server ready\r\n\
        +OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION Bridgehead\r\n.\r\n\
        -ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use STLS or POP3S\r\n\
        -ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use STLS or POP3S\r\n\
        -ERR Not valid before login\r\n\
        +OK Bridgehead POP3 server signing off\r\n";
    transcript(config(false), input, expected);
}

#[test]
fn stls_discards_pipelined_plaintext_and_drops_stls_from_capa() {
    // Everything after STLS in the same packet is an injection attempt and must vanish.
    let input = b"STLS\r\nUSER alice@example.com\r\nPASS secret\r\n";
    let h = run(config(false), input, &[]);
    assert_eq!(
        String::from_utf8_lossy(&h.out),
        "+OK Bridgehead POP3 server ready\r\n+OK Begin TLS negotiation\r\n"
    );
    let mut h = h;
    let mut buf = b"CAPA\r\nSTLS\r\n".to_vec();
    h.out.clear();
    h.feed(&mut buf);
    let out = String::from_utf8_lossy(&h.out).to_string();
    assert!(out.contains("USER\r\nSASL PLAIN LOGIN\r\n"), "{out}");
    assert!(!out.contains("STLS\r\n."), "{out}");
    assert!(out.ends_with("-ERR Already using TLS\r\n"), "{out}");
}

#[test]
fn sasl_plain_and_login() {
    // AUTH PLAIN with a continuation, then AUTH LOGIN in the next session.
    let input = b"AUTH PLAIN\r\nAGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\nQUIT\r\n";
    let h = transcript(
        config(true),
        input,
        "+OK Bridgehead POP3 server ready\r\n+ \r\n+OK Logged in, 2 messages (60 octets)\r\n+OK Bridgehead POP3 server signing off (0 messages deleted)\r\n",
    );
    assert_eq!(h.deleted, Some(vec![]));
    let input = b"AUTH LOGIN YWxpY2VAZXhhbXBsZS5jb20=\r\nc2VjcmV0\r\nNOOP\r\n";
    transcript(
        config(true),
        input,
        "+OK Bridgehead POP3 server ready\r\n+ UGFzc3dvcmQ6\r\n+OK Logged in, 2 messages (60 octets)\r\n+OK\r\n",
    );
    let input = b"AUTH LOGIN\r\n*\r\nAUTH PLAIN !!!\r\nAUTH\r\n";
    transcript(
        config(true),
        input,
        "+OK Bridgehead POP3 server ready\r\n+ VXNlcm5hbWU6\r\n-ERR Authentication cancelled\r\n-ERR Invalid base64 data\r\n+OK Supported mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n",
    );
}

#[test]
fn failed_and_contended_logins() {
    let input = b"USER alice@example.com\r\nPASS wrong\r\nPASS secret\r\nUSER busy@example.com\r\nPASS x\r\n";
    transcript(
        config(true),
        input,
        "+OK Bridgehead POP3 server ready\r\n+OK Send your password\r\n-ERR [AUTH] Authentication failed\r\n\
         -ERR No user name given; send USER first\r\n+OK Send your password\r\n\
         -ERR [IN-USE] Mailbox is in use by another POP3 session\r\n",
    );
}

#[test]
fn rset_unmarks_and_disconnect_deletes_nothing() {
    let input = b"USER alice@example.com\r\nPASS secret\r\nDELE 1\r\nDELE 2\r\nRSET\r\nDELE 2\r\n";
    let mut h = run(config(true), input, &[]);
    let out = String::from_utf8_lossy(&h.out).to_string();
    assert!(out.contains("+OK 2 messages (60 octets)\r\n"), "{out}");
    h.apply(Event::Disconnected);
    assert!(h.released, "the lease is given back");
    assert_eq!(h.deleted, None, "no QUIT, no deletion");
}

#[test]
fn bad_commands_and_long_lines() {
    let long = format!("NOOP {}\r\n", "x".repeat(300));
    let input = format!("FOO\r\n{long}RETR 1\r\nLIST x\r\nAPOP a b\r\nNOOP\r\n");
    let h = transcript(
        config(true),
        input.as_bytes(),
        "+OK Bridgehead POP3 server ready\r\n-ERR Unknown command\r\n-ERR Command line too long\r\n\
         -ERR Not valid before login\r\n-ERR Invalid message number\r\n\
         -ERR Too many bad commands, closing connection\r\n",
    );
    assert!(h.closed);
}

#[test]
fn message_numbers_are_checked() {
    let input = b"USER alice@example.com\r\nPASS secret\r\nRETR 3\r\nLIST 9\r\nTOP 1 0\r\nUIDL\r\n";
    transcript(
        config(true),
        input,
        "+OK Bridgehead POP3 server ready\r\n+OK Send your password\r\n+OK Logged in, 2 messages (60 octets)\r\n\
         -ERR No such message\r\n-ERR No such message\r\n+OK Top of message follows\r\nSubject: one\r\n\r\n.\r\n\
         +OK 2 messages (60 octets)\r\n1 11\r\n2 12\r\n.\r\n",
    );
}

#[test]
fn idle_timeout_and_shutdown_release_the_lease() {
    let mut h = run(
        config(true),
        b"USER alice@example.com\r\nPASS secret\r\n",
        &[],
    );
    h.apply(Event::IdleTimeout);
    assert!(h.released && h.closed);
    assert!(String::from_utf8_lossy(&h.out).ends_with("-ERR Autologout; idle for too long\r\n"));
    let mut h = run(config(true), b"", &[]);
    h.apply(Event::ShuttingDown);
    assert!(!h.released && h.closed);
}

//! Transcript tests of the pure SMTP session behind the intake (lines, DATA, BDAT chunks),
//! the back-end played by a small in-memory directory. Transcripts also run split at every
//! byte boundary.
use super::intake::{Intake, Step};
use super::session::{
    Action, AuthResult, Envelope, Event, Listener, RcptVerdict, Recipient, Session, SmtpConfig,
    SubmitResult,
};

struct Harness {
    session: Session,
    intake: Intake,
    out: String,
    submitted: Vec<(Envelope, Vec<u8>)>,
    tls_started: bool,
}

fn config(listener: Listener) -> SmtpConfig {
    SmtpConfig {
        listener,
        hostname: "mx.local.test".into(),
        max_message_size: 1000,
        max_recipients: 3,
        starttls_available: true,
        allow_plaintext_auth: false,
        max_bad_commands: 20,
    }
}

/// The back-end's directory: local.test has alice and bob; alice owns info@.
fn verdict(address: &str, authenticated: bool) -> RcptVerdict {
    match address.rsplit_once('@') {
        Some((user, "local.test")) if ["alice", "bob", "dave", "erin"].contains(&user) => {
            RcptVerdict::Accept(address.into())
        }
        Some((_, "local.test")) => RcptVerdict::UnknownLocal,
        Some(_) if authenticated => RcptVerdict::Accept(address.into()),
        _ => RcptVerdict::RelayDenied,
    }
}

impl Harness {
    fn new(listener: Listener, tls: bool) -> Harness {
        let mut h = Harness {
            session: Session::new(config(listener)),
            intake: Intake::default(),
            out: String::new(),
            submitted: Vec::new(),
            tls_started: false,
        };
        h.apply(Event::Connected {
            tls: tls.then(|| "TLSv1.3".to_string()),
        });
        h
    }

    fn apply(&mut self, event: Event<'_>) {
        let mut pending = self.session.handle(event);
        while !pending.is_empty() {
            let follow = match pending.remove(0) {
                Action::Send(t) => {
                    self.out.push_str(&t);
                    None
                }
                Action::StartTls => {
                    self.tls_started = true;
                    Some(Event::TlsStarted {
                        tls: "TLSv1.3".into(),
                    })
                }
                Action::Authenticate { user, password } => Some(Event::Authenticated(
                    if user == "alice@local.test" && password == "secret" {
                        AuthResult::Ok {
                            user,
                            addresses: vec!["alice@local.test".into(), "info@local.test".into()],
                        }
                    } else {
                        AuthResult::Failed
                    },
                )),
                Action::CheckRecipient {
                    address,
                    authenticated,
                    ..
                } => Some(Event::RecipientChecked(verdict(&address, authenticated))),
                a @ (Action::ReceiveData { .. } | Action::ReceiveChunk { .. }) => {
                    self.intake.begin(&a);
                    None
                }
                Action::Submit(env) => {
                    let content = self.intake.spool.take().concat();
                    self.submitted.push((env, content));
                    Some(Event::Submitted(SubmitResult::Queued(format!(
                        "Q{}",
                        self.submitted.len()
                    ))))
                }
                Action::Close => None,
            };
            if let Some(ev) = follow {
                pending.extend(self.session.handle(ev));
            }
        }
    }

    fn feed(&mut self, buf: &mut Vec<u8>) {
        while !self.session.is_closed() {
            let (consumed, event) = match self.intake.next(buf, self.session.max_line()) {
                Step::More { consumed } => {
                    buf.drain(..consumed);
                    return;
                }
                Step::Line { consumed } => {
                    let line = buf[..consumed].to_vec();
                    self.apply(Event::Line(&line));
                    (consumed, None)
                }
                Step::Skipped { consumed } => (consumed, None),
                Step::Event { consumed, event } => (consumed, Some(event)),
            };
            buf.drain(..consumed);
            if let Some(event) = event {
                self.apply(event);
            }
            if self.tls_started {
                self.tls_started = false;
                buf.clear();
            }
        }
    }
}

fn run(listener: Listener, tls: bool, input: &[u8], splits: &[usize]) -> Harness {
    let mut h = Harness::new(listener, tls);
    let mut buf = Vec::new();
    let mut last = 0;
    for &s in splits.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[last..s]);
        last = s;
        h.feed(&mut buf);
    }
    h
}

/// Runs whole, split at every byte, and byte by byte; all must agree. Returns the whole run.
fn transcript(listener: Listener, tls: bool, input: &[u8]) -> Harness {
    let whole = run(listener, tls, input, &[]);
    for at in 1..input.len() {
        let split = run(listener, tls, input, &[at]);
        assert_eq!(split.out, whole.out, "differs when split at {at}");
        assert_eq!(
            split.submitted, whole.submitted,
            "submissions differ when split at {at}"
        );
    }
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run(listener, tls, input, &bytewise).out, whole.out);
    whole
}

fn replies(h: &Harness) -> Vec<&str> {
    h.out.split("\r\n").filter(|l| !l.is_empty()).collect()
}

#[test]
fn inbound_mx_delivers_locally_and_refuses_relay() {
    let input = b"EHLO client.example\r\nMAIL FROM:<x@outside.example> SIZE=100\r\nRCPT TO:<alice@local.test>\r\nRCPT TO:<carol@local.test>\r\nRCPT TO:<someone@outside.example>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
    let h = transcript(Listener::Mx, false, input);
    let r = replies(&h);
    assert_eq!(r[0], "220 mx.local.test ESMTP Bridgehead");
    assert!(r.contains(&"250 STARTTLS"), "{r:?}");
    assert!(!h.out.contains("AUTH"), "no AUTH on the MX port: {r:?}");
    assert!(r.contains(&"550 5.1.1 <carol@local.test>: Recipient address rejected: User unknown"));
    assert!(r.contains(&"554 5.7.1 <someone@outside.example>: Relay access denied"));
    assert!(r.contains(&"250 2.0.0 Ok Q1"));
    assert_eq!(r.last(), Some(&"221 2.0.0 Bye"));
    let (env, content) = &h.submitted[0];
    assert_eq!(env.mail_from, "x@outside.example");
    assert_eq!(
        env.recipients,
        vec![Recipient {
            address: "alice@local.test".into(),
            ..Recipient::default()
        }]
    );
    assert_eq!(env.protocol, "ESMTP");
    assert!(!env.submission);
    assert_eq!(content, b"Subject: hi\r\n\r\n.dot\r\n");
}

#[test]
fn submission_requires_tls_auth_and_an_owned_sender() {
    // Before TLS: no AUTH offered, AUTH refused, MAIL refused.
    let h = transcript(Listener::Submission, false, b"EHLO c\r\nAUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAc2VjcmV0\r\nMAIL FROM:<alice@local.test>\r\n");
    let r = replies(&h);
    assert!(!h.out.contains("AUTH PLAIN LOGIN"), "{r:?}");
    assert!(r.contains(&"538 5.7.11 Encryption required for requested authentication mechanism"));
    assert!(r.contains(&"530 5.7.0 Authentication required"));

    // After TLS: AUTH, then sender checks, then relay to the outside.
    let input = b"EHLO c\r\nMAIL FROM:<alice@local.test>\r\nAUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAd3Jvbmc=\r\nAUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAc2VjcmV0\r\nAUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QAc2VjcmV0\r\nMAIL FROM:<bob@local.test>\r\nMAIL FROM:<>\r\nMAIL FROM:<INFO@local.test>\r\nRCPT TO:<friend@outside.example> NOTIFY=FAILURE\r\nDATA\r\nSubject: out\r\n\r\nhi\r\n.\r\n";
    let h = transcript(Listener::Submission, true, input);
    let r = replies(&h);
    assert!(r.contains(&"250 AUTH PLAIN LOGIN"), "{r:?}");
    assert!(r.contains(&"530 5.7.0 Authentication required"));
    assert!(r.contains(&"535 5.7.8 Authentication credentials invalid"));
    assert!(r.contains(&"235 2.7.0 Authentication successful"));
    assert!(r.contains(&"503 5.5.1 Already authenticated"));
    assert!(r.contains(
        &"553 5.7.1 <bob@local.test>: Sender address not owned by the authenticated user"
    ));
    assert!(r.contains(&"553 5.7.1 The null sender is not allowed on submission"));
    assert!(r.contains(&"250 2.0.0 Ok Q1"), "{r:?}");
    let (env, _) = &h.submitted[0];
    assert_eq!(
        env.recipients,
        vec![Recipient {
            address: "friend@outside.example".into(),
            notify: 2,
            ..Recipient::default()
        }]
    );
    assert_eq!(env.auth_user, "alice@local.test");
    assert_eq!(env.protocol, "ESMTPSA");
    assert!(env.submission);
}

#[test]
fn auth_login_and_cancel() {
    let input = b"EHLO c\r\nAUTH LOGIN\r\n*\r\nAUTH LOGIN YWxpY2VAbG9jYWwudGVzdA==\r\nc2VjcmV0\r\n";
    let h = transcript(Listener::Submissions, true, input);
    assert_eq!(
        &replies(&h)[replies(&h).len() - 4..],
        &[
            "334 VXNlcm5hbWU6",
            "501 5.7.0 Authentication cancelled",
            "334 UGFzc3dvcmQ6",
            "235 2.7.0 Authentication successful"
        ]
    );
}

#[test]
fn starttls_forgets_everything_pipelined_before() {
    let input =
        b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@outside.example>\r\nRCPT TO:<alice@local.test>\r\n";
    let mut h = run(Listener::Mx, false, input, &[]);
    assert!(
        h.out.ends_with("220 2.0.0 Ready to start TLS\r\n"),
        "{}",
        h.out
    );
    h.out.clear();
    let mut more = b"MAIL FROM:<a@b.example>\r\nEHLO c\r\nSTARTTLS\r\n".to_vec();
    h.feed(&mut more);
    let r = replies(&h);
    assert_eq!(
        r[0], "503 5.5.1 Send HELO/EHLO first",
        "HELO is forgotten after TLS"
    );
    assert!(!h.out.contains("STARTTLS\r\n250"), "{r:?}");
    assert!(
        !h.out.contains("250 STARTTLS") && !h.out.contains("250-STARTTLS"),
        "not offered again: {r:?}"
    );
    assert_eq!(r.last(), Some(&"503 5.5.1 TLS is already active"));
}

#[test]
fn requiretls_is_offered_and_taken_over_tls_only() {
    let input = b"EHLO c\r\nMAIL FROM:<x@outside.example> REQUIRETLS\r\n";
    let plain = transcript(Listener::Mx, false, input);
    assert!(!plain.out.contains("REQUIRETLS\r\n"), "{}", plain.out);
    assert!(
        plain
            .out
            .ends_with("530 5.7.10 REQUIRETLS needs a TLS session (RFC 8689)\r\n"),
        "{}",
        plain.out
    );
    let input = b"EHLO c\r\nMAIL FROM:<x@outside.example> REQUIRETLS\r\nRCPT TO:<alice@local.test>\r\nDATA\r\nSubject: s\r\n\r\nhi\r\n.\r\n";
    let tls = transcript(Listener::Mx, true, input);
    assert!(tls.out.contains("REQUIRETLS\r\n"), "{}", tls.out);
    assert_eq!(tls.submitted.len(), 1, "{}", tls.out);
    assert!(
        tls.submitted[0].0.requiretls,
        "the flag reaches the back-end"
    );
}

#[test]
fn smuggled_second_transaction_never_becomes_a_message() {
    for bad in [&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r.\r"] {
        let mut input = b"EHLO c\r\nMAIL FROM:<x@outside.example>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\nSubject: one\r\n\r\nfirst".to_vec();
        input.extend_from_slice(bad);
        input.extend_from_slice(b"MAIL FROM:<x@outside.example>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\nQUIT\r\n");
        let h = transcript(Listener::Mx, false, &input);
        assert!(h.submitted.is_empty(), "{bad:?}: {:?}", h.submitted);
        let r = replies(&h);
        assert!(
            r.contains(&"550 5.6.0 Message has bare CR or LF characters; lines must end with CRLF"),
            "{bad:?} {r:?}"
        );
        assert_eq!(r.last(), Some(&"221 2.0.0 Bye"));
    }
}

#[test]
fn limits_and_ordering_errors() {
    let long_line = format!("NOOP {}\r\n", "x".repeat(1100));
    let input = format!(
        "MAIL FROM:<a@b.example>\r\nHELO c\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n{long_line}MAIL FROM:<a@b.example> SIZE=5000\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\nDATA\r\nRCPT TO:<alice@local.test>\r\nRCPT TO:<bob@local.test>\r\nRCPT TO:<alice@local.test>\r\nRCPT TO:<bob@local.test>\r\nRSET\r\nVRFY alice\r\n"
    );
    let h = transcript(Listener::Mx, false, input.as_bytes());
    assert_eq!(
        replies(&h)[1..],
        [
            "503 5.5.1 Send HELO/EHLO first",
            "250 mx.local.test",
            "503 5.5.1 Need MAIL command",
            "503 5.5.1 Need MAIL command",
            "500 5.5.2 Line too long",
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "250 2.1.0 Ok",
            "503 5.5.1 Nested MAIL command",
            "554 5.5.1 No valid recipients",
            "250 2.1.5 Ok",
            "250 2.1.5 Ok",
            "250 2.1.5 Ok",
            "250 2.1.5 Ok",
            "250 2.0.0 Ok",
            "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
        ]
    );
}

#[test]
fn too_many_recipients_keeps_the_earlier_ones() {
    let input = b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@local.test>\r\nRCPT TO:<x@local.test>\r\nRCPT TO:<bob@local.test>\r\nRCPT TO:<bob@local.test>\r\nRCPT TO:<dave@local.test>\r\n";
    let mut h = run(Listener::Mx, false, input, &[]);
    // x@ is unknown and the second bob a repeat: neither counts; alice, bob, dave are kept.
    let mut more = b"RCPT TO:<erin@local.test>\r\nDATA\r\nx\r\n.\r\n".to_vec();
    h.feed(&mut more);
    let r = replies(&h);
    assert!(r.contains(&"452 4.5.3 Too many recipients"), "{r:?}");
    assert_eq!(h.submitted[0].0.recipients.len(), 3);
}

#[test]
fn too_many_hops_and_bad_commands_close() {
    let mut input =
        b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n".to_vec();
    input.extend_from_slice(&b"Received: x\r\n".repeat(51));
    input.extend_from_slice(b"\r\nloop\r\n.\r\n");
    let h = run(Listener::Mx, false, &input, &[]);
    assert!(h
        .out
        .contains("554 5.4.6 Too many Received headers: mail loop?"));
    assert!(h.submitted.is_empty());

    let h = run(Listener::Mx, false, &b"FOO\r\n".repeat(25), &[]);
    assert!(h
        .out
        .ends_with("421 4.7.0 Too many errors, closing connection\r\n"));
    assert!(h.session.is_closed());
}

#[test]
fn invalid_utf8_is_refused_and_non_ascii_needs_smtputf8() {
    let input = b"EHLO c\r\nMAIL FROM:<\xff\xfe\x80@outside.example> SMTPUTF8\r\nMAIL FROM:<x@outside.example>\r\nRCPT TO:<d\xc3\xa9mo@local.test>\r\nRCPT TO:<a\xc3@local.test>\r\nRSET\r\nMAIL FROM:<j\xc3\xb6rg@outside.example>\r\nMAIL FROM:<j\xc3\xb6rg@outside.example> SMTPUTF8\r\nRCPT TO:<alice@local.test>\r\nDATA\r\nSubject: hi\r\n\r\nhi\r\n.\r\nEHLO \xc0\xaf\r\n";
    let h = transcript(Listener::Mx, false, input);
    let r = replies(&h);
    assert!(
        r.contains(&"553 5.1.7 Sender address is not valid UTF-8"),
        "{r:?}"
    );
    assert!(
        r.contains(&"553 5.6.7 <démo@local.test>: Non-ASCII address requires SMTPUTF8 (RFC 6531)")
    );
    assert!(r.contains(&"553 5.1.3 Recipient address is not valid UTF-8"));
    assert!(r.contains(
        &"553 5.6.7 <jörg@outside.example>: Non-ASCII address requires SMTPUTF8 (RFC 6531)"
    ));
    assert!(r.contains(&"501 5.5.4 Command is not valid UTF-8"));
    let (env, _) = &h.submitted[0];
    assert_eq!(env.mail_from, "jörg@outside.example");
    assert!(env.smtputf8);
    assert_eq!(env.protocol, "UTF8SMTP");
}

#[test]
fn malformed_auth_plain_is_a_syntax_error() {
    let input =
        b"EHLO c\r\nAUTH PLAIN =\r\nAUTH PLAIN AGFsaWNlQGxvY2FsLnRlc3QA\r\nAUTH PLAIN\r\n=\r\n";
    let h = transcript(Listener::Submissions, true, input);
    let r = replies(&h);
    let syntax = "501 5.5.2 Malformed PLAIN response: expected [authzid] NUL user NUL password";
    assert_eq!(r.iter().filter(|l| **l == syntax).count(), 3, "{r:?}");
    assert!(!h.out.contains("535"), "{r:?}");
}

#[test]
fn bdat_chunks_are_their_octets_and_end_with_last() {
    let input = b"EHLO c\r\nMAIL FROM:<x@outside.example>\r\nRCPT TO:<alice@local.test>\r\nBDAT 15\r\nSubject: hi\r\n\r\nBDAT 11 LAST\r\n.dot\r\nend\r\nQUIT\r\n";
    let h = transcript(Listener::Mx, false, input);
    let r = replies(&h);
    assert!(r.contains(&"250-CHUNKING"), "{r:?}");
    assert!(r.contains(&"250 2.0.0 15 octets received"), "{r:?}");
    assert!(r.contains(&"250 2.0.0 Ok Q1"), "{r:?}");
    assert_eq!(
        h.submitted[0].1,
        b"Subject: hi\r\n\r\n.dot\r\nend\r\n".to_vec(),
        "no unstuffing"
    );
    assert_eq!(r.last(), Some(&"221 2.0.0 Bye"));
}

#[test]
fn bdat_content_is_never_commands_and_bare_line_endings_refuse_it() {
    // A chunk that holds what looks like the end of data and a second transaction.
    let chunk = b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<x@y>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\n";
    let mut input =
        b"EHLO c\r\nMAIL FROM:<x@outside.example>\r\nRCPT TO:<alice@local.test>\r\n".to_vec();
    input.extend_from_slice(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes());
    input.extend_from_slice(chunk);
    input.extend_from_slice(b"QUIT\r\n");
    let h = transcript(Listener::Mx, false, &input);
    let r = replies(&h);
    assert!(h.submitted.is_empty(), "{r:?}");
    assert!(r.contains(&"550 5.6.0 Message has bare CR or LF characters; lines must end with CRLF"));
    assert!(
        !r.iter().any(|l| l.starts_with("354")),
        "no DATA was seen: {r:?}"
    );
    assert_eq!(r.last(), Some(&"221 2.0.0 Bye"));
}

#[test]
fn refused_bdat_octets_are_read_and_dropped() {
    // No transaction: the six octets "QUIT\r\n" are the chunk, not a command.
    let input = b"EHLO c\r\nBDAT 6\r\nQUIT\r\nNOOP\r\nMAIL FROM:<x@outside.example>\r\nBDAT 2\r\nhiRCPT TO:<alice@local.test>\r\nBDAT 4\r\nab\r\nDATA\r\nBDAT 5000 LAST\r\n";
    let mut input = input.to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(b"NOOP\r\n");
    let h = transcript(Listener::Mx, false, &input);
    let r = replies(&h);
    assert_eq!(
        r[r.len() - 9..],
        [
            "503 5.5.1 Need MAIL command",
            "250 2.0.0 Ok",
            "250 2.1.0 Ok",
            "554 5.5.1 No valid recipients",
            "250 2.1.5 Ok",
            "250 2.0.0 4 octets received",
            "503 5.5.1 DATA is not allowed after BDAT",
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "250 2.0.0 Ok",
        ][..],
        "the NOOP after the big chunk is a command again: {r:?}"
    );
    assert!(h.submitted.is_empty());
}

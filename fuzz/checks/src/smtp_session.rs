//! The SMTP intake (framer, DATA receiver, BDAT chunks), command parser and session on
//! arbitrary input, as the driver runs them. Invariants: no panic; DATA ends only at CRLF.CRLF; every reply line is a
//! three-digit code, a space or hyphen, and CRLF (RFC 5321 §4.2); a message is handed on only
//! after its end of data (DATA or the LAST chunk), with 1..=max_recipients recipients and no
//! bare LF in its content; addresses are never altered
//! (no U+FFFD that the input did not carry: invalid UTF-8 is refused, not replaced), and a
//! non-ASCII address reaches the back-end only in an SMTPUTF8 transaction (RFC 6531).
use bridgehead_frontend::smtp::intake::{Intake, Step};
use bridgehead_frontend::smtp::session::{
    Action, AuthResult, Envelope, Event, Listener, RcptVerdict, Session, SmtpConfig, SubmitResult,
};

fn check_reply(reply: &str) {
    assert!(reply.ends_with("\r\n"), "{reply:?}");
    for line in reply.split_terminator("\r\n") {
        let b = line.as_bytes();
        assert!(
            b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit),
            "{reply:?}"
        );
        assert!(
            matches!(b.get(3), None | Some(b' ') | Some(b'-')),
            "{reply:?}"
        );
        assert!(!line.contains(['\r', '\n']), "{reply:?}");
    }
}

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let listener = match data.first().map(|b| b % 3) {
        Some(0) => Listener::Mx,
        Some(1) => Listener::Submission,
        _ => Listener::Submissions,
    };
    let mut s = Session::new(SmtpConfig {
        listener,
        hostname: "mx.fuzz".into(),
        max_message_size: 4096,
        max_recipients: 5,
        starttls_available: true,
        allow_plaintext_auth: true,
        max_bad_commands: 20,
    });
    let mut run = Run {
        intake: Intake::default(),
        carries_replacement: data.windows(3).any(|w| w == "\u{fffd}".as_bytes()),
        data_ended: false,
    };
    let mut buf = data.to_vec();
    let mut pending = s.handle(Event::Connected { tls: None });
    loop {
        while let Some(a) = pending.pop() {
            if let Some(e) = run.act(a) {
                pending.extend(s.handle(e));
            }
        }
        run.data_ended = false;
        if s.is_closed() {
            break;
        }
        let (consumed, event) = match run.intake.next(&buf, s.max_line()) {
            Step::More { consumed } => {
                buf.drain(..consumed);
                break;
            }
            Step::Line { consumed } => {
                let line = buf[..consumed].to_vec();
                pending = s.handle(Event::Line(&line));
                (consumed, None)
            }
            Step::Skipped { consumed } => (consumed, None),
            Step::Event { consumed, event } => {
                run.ended(&event, &buf[..consumed]);
                (consumed, Some(event))
            }
        };
        buf.drain(..consumed);
        if let Some(e) = event {
            pending = s.handle(e);
        }
    }
}

/// The driver's side of one run: the intake, and what the checks need to know.
struct Run {
    intake: Intake,
    /// The input itself holds U+FFFD (so an address may too).
    carries_replacement: bool,
    /// The data of a message just ended (DATA or the LAST chunk).
    data_ended: bool,
}

impl Run {
    /// Carries out one action as the driver would, checking what it hands on.
    fn act(&mut self, a: Action) -> Option<Event<'static>> {
        match a {
            Action::Authenticate { .. } => Some(Event::Authenticated(AuthResult::Ok {
                user: "u@fuzz".into(),
                addresses: vec!["u@fuzz".into()],
            })),
            Action::CheckRecipient {
                address, sender, ..
            } => {
                self.unaltered(&address);
                self.unaltered(&sender);
                Some(Event::RecipientChecked(RcptVerdict::Accept(address)))
            }
            a @ (Action::ReceiveData { .. } | Action::ReceiveChunk { .. }) => {
                self.intake.begin(&a);
                None
            }
            Action::Submit(envelope) => {
                self.submitted(&envelope);
                Some(Event::Submitted(SubmitResult::Queued("Q".into())))
            }
            Action::StartTls => Some(Event::TlsStarted { tls: "TLS".into() }),
            Action::Send(reply) => {
                check_reply(&reply);
                None
            }
            Action::Close => None,
        }
    }

    /// The end of DATA or of a chunk: DATA ends only at CRLF.CRLF.
    fn ended(&mut self, event: &Event<'_>, taken: &[u8]) {
        match event {
            Event::DataReceived(_) => {
                assert!(
                    taken.ends_with(b"\r\n.\r\n") || taken.len() == 3,
                    "DATA ended without CRLF.CRLF"
                );
                self.data_ended = true;
            }
            Event::ChunkReceived(_) => self.data_ended = true,
            _ => {}
        }
    }

    fn unaltered(&self, address: &str) {
        assert!(
            self.carries_replacement || !address.contains('\u{fffd}'),
            "an address was altered: {address:?}"
        );
    }

    fn submitted(&mut self, envelope: &Envelope) {
        assert!(self.data_ended, "message handed on before its end of data");
        assert!((1..=5).contains(&envelope.recipients.len()));
        let ascii = envelope.mail_from.is_ascii()
            && envelope.recipients.iter().all(|r| r.address.is_ascii());
        assert!(ascii || envelope.smtputf8, "non-ASCII without SMTPUTF8");
        let content = self.intake.spool.take().concat();
        assert!(
            !content.windows(2).any(|w| w[0] != b'\r' && w[1] == b'\n'),
            "a bare LF reached the back-end"
        );
    }
}

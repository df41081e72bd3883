//! The SMTP framer, command parser, session and DATA receiver on arbitrary input, as the
//! driver runs them. Invariants: no panic; DATA ends only at CRLF.CRLF; every reply line is a
//! three-digit code, a space or hyphen, and CRLF (RFC 5321 §4.2); a message is handed on only
//! after its end of data, with 1..=max_recipients recipients; addresses are never altered
//! (no U+FFFD that the input did not carry: invalid UTF-8 is refused, not replaced), and a
//! non-ASCII address reaches the back-end only in an SMTPUTF8 transaction (RFC 6531).
use bridgehead_frontend::lines::{Frame, Framer};
use bridgehead_frontend::smtp::data::DataReceiver;
use bridgehead_frontend::smtp::session::{
    Action, AuthResult, Event, Listener, RcptVerdict, Session, SmtpConfig, SubmitResult,
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
    let mut f = Framer::default();
    let mut buf = data.to_vec();
    let carries_replacement = data.windows(3).any(|w| w == "\u{fffd}".as_bytes());
    let unaltered = |address: &str| {
        assert!(
            carries_replacement || !address.contains('\u{fffd}'),
            "an address was altered: {address:?}"
        );
    };
    let mut receiver: Option<DataReceiver> = None;
    let mut spool = Vec::new();
    let mut pending = s.handle(Event::Connected { tls: None });
    let mut data_ended = false;
    loop {
        while let Some(a) = pending.pop() {
            let follow = match a {
                Action::Authenticate { .. } => Some(Event::Authenticated(AuthResult::Ok {
                    user: "u@fuzz".into(),
                    addresses: vec!["u@fuzz".into()],
                })),
                Action::CheckRecipient {
                    address, sender, ..
                } => {
                    unaltered(&address);
                    unaltered(&sender);
                    Some(Event::RecipientChecked(RcptVerdict::Accept(address)))
                }
                Action::ReceiveData { max_size } => {
                    receiver = Some(DataReceiver::new(max_size));
                    None
                }
                Action::Submit(envelope) => {
                    assert!(data_ended, "message handed on before its end of data");
                    assert!((1..=5).contains(&envelope.recipients.len()));
                    let ascii = envelope.mail_from.is_ascii()
                        && envelope.recipients.iter().all(|r| r.0.is_ascii());
                    assert!(ascii || envelope.smtputf8, "non-ASCII without SMTPUTF8");
                    Some(Event::Submitted(SubmitResult::Queued("Q".into())))
                }
                Action::StartTls => Some(Event::TlsStarted { tls: "TLS".into() }),
                Action::Send(reply) => {
                    check_reply(&reply);
                    None
                }
                Action::Close => None,
            };
            if let Some(e) = follow {
                pending.extend(s.handle(e));
            }
        }
        data_ended = false;
        if s.is_closed() || buf.is_empty() {
            break;
        }
        if let Some(r) = receiver.as_mut() {
            match r.feed(&buf, &mut spool) {
                None => break,
                Some(n) => {
                    assert!(
                        buf[..n].ends_with(b"\r\n.\r\n") || n == 3,
                        "DATA ended without CRLF.CRLF"
                    );
                    buf.drain(..n);
                    let outcome = r.outcome();
                    receiver = None;
                    spool.clear();
                    pending = s.handle(Event::DataReceived(outcome));
                    data_ended = true;
                    continue;
                }
            }
        }
        match f.next(&buf, s.max_line()) {
            Frame::Incomplete => break,
            Frame::Line { consumed, .. } => {
                let line = buf[..consumed].to_vec();
                buf.drain(..consumed);
                pending = s.handle(Event::Line(&line));
            }
            Frame::TooLong { consumed, ended } => {
                buf.drain(..consumed);
                if ended {
                    pending = s.handle(Event::LineTooLong);
                }
            }
        }
    }
}

//! The SMTP framer, command parser, session and DATA receiver on arbitrary input, as the
//! driver runs them: no panic, and DATA ends only at CRLF.CRLF.
#![no_main]
use bridgehead_frontend::lines::{Frame, Framer};
use bridgehead_frontend::smtp::data::DataReceiver;
use bridgehead_frontend::smtp::session::{
    Action, AuthResult, Event, Listener, RcptVerdict, Session, SmtpConfig, SubmitResult,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
    let mut receiver: Option<DataReceiver> = None;
    let mut spool = Vec::new();
    let mut pending = s.handle(Event::Connected { tls: None });
    loop {
        while let Some(a) = pending.pop() {
            let follow = match a {
                Action::Authenticate { .. } => Some(Event::Authenticated(AuthResult::Ok {
                    user: "u@fuzz".into(),
                    addresses: vec!["u@fuzz".into()],
                })),
                Action::CheckRecipient { address, .. } => {
                    Some(Event::RecipientChecked(RcptVerdict::Accept(address)))
                }
                Action::ReceiveData { max_size } => {
                    receiver = Some(DataReceiver::new(max_size));
                    None
                }
                Action::Submit(_) => Some(Event::Submitted(SubmitResult::Queued("Q".into()))),
                Action::StartTls => Some(Event::TlsStarted { tls: "TLS".into() }),
                Action::Send(_) | Action::Close => None,
            };
            if let Some(e) = follow {
                pending.extend(s.handle(e));
            }
        }
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
});

//! The mail transaction: MAIL, RCPT, DATA or BDAT (RFC 3030) and the back-end's answers
//! (RFC 5321 §3.3).
use super::data::DataOutcome;
use super::parse::MailParams;
use super::session::{
    reply, Action, Envelope, Listener, RcptVerdict, Recipient, Session, State, SubmitResult,
    Transaction,
};

pub(super) fn mail(s: &mut Session, from: String, params: MailParams) -> Vec<Action> {
    if s.helo.is_none() {
        return s.bad("503 5.5.1 Send HELO/EHLO first");
    }
    if s.tx.is_some() {
        return s.bad("503 5.5.1 Nested MAIL command");
    }
    if !from.is_ascii() && !params.smtputf8 {
        return s.bad(&format!(
            "553 5.6.7 <{from}>: Non-ASCII address requires SMTPUTF8 (RFC 6531)"
        ));
    }
    if params.requiretls && s.tls.is_none() {
        return s.bad("530 5.7.10 REQUIRETLS needs a TLS session (RFC 8689)");
    }
    if s.config.listener != Listener::Mx {
        let Some((_, owned)) = &s.auth else {
            return s.bad("530 5.7.0 Authentication required");
        };
        if from.is_empty() {
            return s.bad("553 5.7.1 The null sender is not allowed on submission");
        }
        if !owned.iter().any(|a| a.eq_ignore_ascii_case(&from)) {
            return s.bad(&format!(
                "553 5.7.1 <{from}>: Sender address not owned by the authenticated user"
            ));
        }
    }
    if params.size > s.config.max_message_size {
        return vec![reply(
            "552 5.3.4 Message size exceeds fixed maximum message size",
        )];
    }
    s.tx = Some(Transaction {
        from,
        params,
        recipients: Vec::new(),
        chunks: 0,
    });
    vec![reply("250 2.1.0 Ok")]
}

pub(super) fn rcpt(s: &mut Session, to: String, notify: u32, orcpt: String) -> Vec<Action> {
    let Some(tx) = &s.tx else {
        return s.bad("503 5.5.1 Need MAIL command");
    };
    if !to.is_ascii() && !tx.params.smtputf8 {
        return s.bad(&format!(
            "553 5.6.7 <{to}>: Non-ASCII address requires SMTPUTF8 (RFC 6531)"
        ));
    }
    if tx.recipients.len() >= s.config.max_recipients {
        return vec![reply("452 4.5.3 Too many recipients")];
    }
    let size = tx.params.size;
    let sender = tx.from.clone();
    s.state = State::CheckingRecipient {
        notify,
        orcpt,
        asked: to.clone(),
    };
    vec![Action::CheckRecipient {
        address: to,
        sender,
        authenticated: s.auth.is_some(),
        size,
    }]
}

pub(super) fn recipient_checked(s: &mut Session, verdict: RcptVerdict) -> Vec<Action> {
    let State::CheckingRecipient {
        notify,
        orcpt,
        asked,
    } = std::mem::replace(&mut s.state, State::Ready)
    else {
        return Vec::new();
    };
    let Some(tx) = s.tx.as_mut() else {
        return Vec::new();
    };
    let text = match verdict {
        RcptVerdict::Accept(address) => {
            if !tx.recipients.iter().any(|r| r.address == address) {
                tx.recipients.push(Recipient {
                    address,
                    notify,
                    orcpt,
                });
            }
            return vec![reply("250 2.1.5 Ok")];
        }
        RcptVerdict::UnknownLocal => {
            format!("550 5.1.1 <{asked}>: Recipient address rejected: User unknown")
        }
        RcptVerdict::RelayDenied => format!("554 5.7.1 <{asked}>: Relay access denied"),
        RcptVerdict::OverQuota => {
            return vec![reply(&format!("452 4.2.2 <{asked}>: Mailbox full"))]
        }
        RcptVerdict::BadSyntax(why) => format!("553 5.1.3 <{asked}>: {why}"),
        RcptVerdict::SenderRefused => {
            format!("550 5.7.1 <{asked}>: Sender not allowed to send to this group")
        }
        RcptVerdict::Throttled => {
            "450 4.7.1 Too many unknown recipients from your address; try again later".into()
        }
        RcptVerdict::Unavailable => {
            return vec![reply("451 4.3.0 Temporary lookup failure, try again later")]
        }
    };
    s.bad(&text)
}

pub(super) fn data(s: &mut Session) -> Vec<Action> {
    match &s.tx {
        None => s.bad("503 5.5.1 Need MAIL command"),
        Some(tx) if tx.recipients.is_empty() => s.bad("554 5.5.1 No valid recipients"),
        Some(tx) if tx.chunks > 0 => s.bad("503 5.5.1 DATA is not allowed after BDAT"),
        Some(_) => {
            s.state = State::Data;
            vec![
                reply("354 End data with <CR><LF>.<CR><LF>"),
                Action::ReceiveData {
                    max_size: s.config.max_message_size,
                },
            ]
        }
    }
}

/// BDAT: its octets are read whatever the verdict (they are on the wire); a refusal is
/// answered once they are.
pub(super) fn bdat(s: &mut Session, size: u64, last: bool) -> Vec<Action> {
    let refusal = match &s.tx {
        None => Some("503 5.5.1 Need MAIL command"),
        Some(tx) if tx.recipients.is_empty() => Some("554 5.5.1 No valid recipients"),
        Some(_) => None,
    };
    let first = s.tx.as_ref().is_some_and(|tx| tx.chunks == 0);
    if let Some(tx) = s.tx.as_mut().filter(|_| refusal.is_none()) {
        tx.chunks += 1;
    }
    s.state = State::Chunk {
        size,
        last,
        refusal: refusal.map(str::to_string),
    };
    vec![Action::ReceiveChunk {
        size,
        max_size: s.config.max_message_size,
        first,
        last,
        keep: refusal.is_none(),
    }]
}

/// A BDAT chunk was read: refused, acknowledged, or (LAST) the message judged and handed on.
pub(super) fn chunk_received(s: &mut Session, outcome: DataOutcome) -> Vec<Action> {
    let State::Chunk {
        size,
        last,
        refusal,
    } = std::mem::replace(&mut s.state, State::Ready)
    else {
        return Vec::new();
    };
    if let Some(text) = refusal {
        return s.bad(&text);
    }
    if !last {
        return vec![reply(&format!("250 2.0.0 {size} octets received"))];
    }
    finish(s, outcome)
}

pub(super) fn data_received(s: &mut Session, outcome: DataOutcome) -> Vec<Action> {
    if s.state != State::Data {
        return Vec::new();
    }
    s.state = State::Ready;
    finish(s, outcome)
}

/// The end of the data (DATA's CRLF.CRLF or the LAST chunk): refused, or handed on.
fn finish(s: &mut Session, outcome: DataOutcome) -> Vec<Action> {
    let refusal = match outcome {
        DataOutcome::Ok { .. } => None,
        DataOutcome::BareLineEnding => {
            Some("550 5.6.0 Message has bare CR or LF characters; lines must end with CRLF")
        }
        DataOutcome::TooBig => Some("552 5.3.4 Message size exceeds fixed maximum message size"),
        DataOutcome::LineTooLong => {
            Some("550 5.6.0 Message has a text line longer than 998 octets")
        }
        DataOutcome::TooManyHops(_) => Some("554 5.4.6 Too many Received headers: mail loop?"),
    };
    let tx = s.tx.take().expect("DATA only within a transaction");
    if let Some(text) = refusal {
        return vec![reply(text)];
    }
    s.state = State::Submitting;
    let envelope = Envelope {
        protocol: s.protocol(tx.params.smtputf8),
        mail_from: tx.from,
        recipients: tx.recipients,
        ret: tx.params.ret,
        envid: tx.params.envid,
        body: tx.params.body,
        smtputf8: tx.params.smtputf8,
        requiretls: tx.params.requiretls,
        helo: s.helo.as_ref().map(|h| h.0.clone()).unwrap_or_default(),
        tls: s.tls.clone().unwrap_or_default(),
        auth_user: s.auth.as_ref().map(|a| a.0.clone()).unwrap_or_default(),
        submission: s.config.listener != Listener::Mx,
        quarantine: String::new(),
    };
    vec![Action::Submit(envelope)]
}

pub(super) fn submitted(s: &mut Session, r: SubmitResult) -> Vec<Action> {
    if s.state != State::Submitting {
        return Vec::new();
    }
    s.state = State::Ready;
    let text = match r {
        SubmitResult::Queued(id) => format!("250 2.0.0 Ok {id}"),
        SubmitResult::OverQuota => "452 4.2.2 Mailbox full, try again later".into(),
        SubmitResult::TooBig => "552 5.3.4 Message size exceeds fixed maximum message size".into(),
        SubmitResult::Refused(why) => {
            let why = one_line(&why);
            format!("451 4.3.0 Recipients changed while receiving ({why}); try again")
        }
        SubmitResult::PolicyRejected(why) => policy_reply(&one_line(&why)),
        SubmitResult::Filtered(reply) => one_line(&reply),
        SubmitResult::Discarded => "250 2.0.0 Ok".into(),
        SubmitResult::Unavailable => {
            "451 4.3.0 Temporary failure storing the message, try again later".into()
        }
    };
    vec![reply(&text)]
}

/// The reply to a refusal by the sender's policy: the back-end's text starts with the enhanced
/// status code — 4.x.x is temporary (451), anything else permanent (550; 5.7.1 when unsaid).
fn policy_reply(why: &str) -> String {
    let coded = |c: &str| {
        let parts: Vec<&str> = c.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match why.split_once(' ') {
        Some((code, _)) if coded(code) && code.starts_with("4.") => format!("451 {why}"),
        Some((code, _)) if coded(code) && code.starts_with("5.") => format!("550 {why}"),
        _ => format!("550 5.7.1 {why}"),
    }
}

/// Text from another tier made safe for one reply line (no CR/LF, bounded).
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::policy_reply;

    #[test]
    fn policy_replies_follow_the_enhanced_code() {
        let reject = policy_reply("5.7.1 Message rejected: it fails the DMARC policy of x.example");
        assert_eq!(
            reject,
            "550 5.7.1 Message rejected: it fails the DMARC policy of x.example"
        );
        assert!(policy_reply("4.7.0 DNS error; try again later").starts_with("451 4.7.0 "));
        assert_eq!(policy_reply("no code here"), "550 5.7.1 no code here");
        assert_eq!(policy_reply("4.x.0 odd"), "550 5.7.1 4.x.0 odd");
    }
}

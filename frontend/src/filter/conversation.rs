//! One message's conversation with one milter, pure: which commands go out in which order
//! (honouring the steps the filter asked to skip), what each reply means, and the filter's
//! verdict with the modifications it asked for. No I/O: the driver (`client.rs`) sends what
//! `next_command` returns and feeds every reply to `reply`.
//!
//! The whole message is at hand when filtering starts (the front-end holds it in its spool),
//! so the conversation runs from CONNECT to end of message at once after DATA, as Postfix
//! does for a message it has received. Invariants: a reply the current step does not allow is
//! a protocol error (the caller applies the default action); a reject, tempfail or discard
//! at any step ends the conversation with that verdict; modifications count only when they
//! come before the final reply to end of message; a filter that accepts skips the rest.
use super::codec::{protocol as p, Command, Reply};
use super::message::{Envelope, Headers};

/// How a conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on: to the next filter, then to the store, with the modifications.
    Continue,
    /// The message is fine; this filter's later steps are skipped.
    Accept,
    /// Refuse for good: the SMTP reply (`5xx …`).
    Reject(String),
    /// Refuse for now: the SMTP reply (`4xx …`).
    Tempfail(String),
    /// Accept and drop (the filter's decision, logged).
    Discard,
    /// Store held, for an operator to release: the reason.
    Quarantine(String),
}

/// A change the filter asked for at end of message, in order.
pub type Modification = Reply;

/// The reply Postfix gives for a bare reject or tempfail.
pub const REJECT: &str = "550 5.7.1 Command rejected";
pub const TEMPFAIL: &str = "451 4.7.1 Service unavailable - try again later";

/// What the driver does after a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// Ask `next_command` for the next command.
    Next,
    /// Read another reply (end of message: modifications, progress, quarantine).
    More,
    Done(Verdict),
}

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// Send this; wait for a reply when `reply` is true.
    Send {
        command: Command<'a>,
        reply: bool,
    },
    Done(Verdict),
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Negotiate,
    Connect,
    Helo,
    Mail,
    Rcpt(usize),
    Data,
    Header(usize),
    EndOfHeaders,
    Body(usize),
    EndOfMessage,
    Finished,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the milter answered {0:?} where it may not")]
    Unexpected(String),
    #[error("the milter speaks protocol version {0}; version 2 or later is needed")]
    Version(u32),
    #[error("the milter gave a reply code that is not 4xx or 5xx: {0:?}")]
    BadReplyCode(String),
}

/// One message's conversation.
pub struct Conversation<'m> {
    envelope: &'m Envelope,
    headers: &'m Headers,
    body: &'m [&'m [u8]],
    step: Step,
    /// Steps the filter does not want (SMFIP_NO*) or does not answer (SMFIP_NR_*).
    protocol: u32,
    /// Actions the filter may take.
    pub actions: u32,
    skip_body: bool,
    modifications: Vec<Modification>,
    quarantine: Option<String>,
    /// The verdict came before the end of message: the filter is inside a message still.
    ended_early: bool,
}

impl<'m> Conversation<'m> {
    /// `body`: the body in pieces of at most `codec::BODY_CHUNK` octets.
    pub fn new(envelope: &'m Envelope, headers: &'m Headers, body: &'m [&'m [u8]]) -> Self {
        Conversation {
            envelope,
            headers,
            body,
            step: Step::Negotiate,
            protocol: 0,
            actions: 0,
            skip_body: false,
            modifications: Vec::new(),
            quarantine: None,
            ended_early: false,
        }
    }

    /// The next message on a connection that has negotiated (`protocol`, `actions`) and
    /// been through CONNECT and HELO: it starts at MAIL.
    pub fn resumed(
        envelope: &'m Envelope,
        headers: &'m Headers,
        body: &'m [&'m [u8]],
        (protocol, actions): (u32, u32),
    ) -> Self {
        let mut c = Conversation::new(envelope, headers, body);
        c.protocol = protocol;
        c.actions = actions;
        c.step = Step::Mail;
        c
    }

    /// What was negotiated (protocol flags, actions), for the next message on the connection.
    pub fn negotiated(&self) -> (u32, u32) {
        (self.protocol, self.actions)
    }

    /// Whether the verdict came before the end of message (the filter must be told ABORT
    /// before the connection carries another message).
    pub fn ended_early(&self) -> bool {
        self.ended_early
    }

    /// The modifications asked for (valid once the verdict is `Continue` or `Accept`).
    pub fn take_modifications(&mut self) -> Vec<Modification> {
        std::mem::take(&mut self.modifications)
    }

    /// The next command, or the verdict when there is nothing more to send.
    pub fn next_command(&mut self) -> Next<'m> {
        loop {
            match self.step {
                Step::Negotiate => {
                    let command = Command::OptionNegotiation {
                        actions: super::codec::actions::ALL,
                        protocol: p::ALL,
                    };
                    return Next::Send {
                        command,
                        reply: true,
                    };
                }
                Step::Finished => {
                    return Next::Done(match self.quarantine.take() {
                        Some(why) => Verdict::Quarantine(why),
                        None => Verdict::Continue,
                    })
                }
                _ => {}
            }
            let Some((command, no, no_reply)) = self.command() else {
                continue;
            };
            if self.protocol & no != 0 {
                self.advance();
                continue;
            }
            let reply = self.protocol & no_reply == 0;
            if !reply {
                self.advance();
            }
            return Next::Send { command, reply };
        }
    }

    /// The current step's command with the flags that skip it and that leave it unanswered;
    /// `None` (and the step moved on) past the last recipient, header or body piece.
    fn command(&mut self) -> Option<(Command<'m>, u32, u32)> {
        let e = self.envelope;
        Some(match self.step {
            Step::Connect => (
                Command::Connect {
                    host: &e.client_name,
                    family: e.family,
                    port: e.client_port,
                    address: &e.client_address,
                },
                p::NO_CONNECT,
                p::NO_REPLY_CONNECT,
            ),
            Step::Helo => (Command::Helo(&e.helo), p::NO_HELO, p::NO_REPLY_HELO),
            Step::Mail => (Command::Mail(&e.mail), p::NO_MAIL, p::NO_REPLY_MAIL),
            Step::Rcpt(i) => match e.rcpts.get(i) {
                Some(r) => (Command::Rcpt(r), p::NO_RCPT, p::NO_REPLY_RCPT),
                None => return self.moved(Step::Data),
            },
            Step::Data => (Command::Data, p::NO_DATA, p::NO_REPLY_DATA),
            Step::Header(i) => match self.headers.fields.get(i) {
                Some((name, value)) => (
                    Command::Header { name, value },
                    p::NO_HEADERS,
                    p::NO_REPLY_HEADER,
                ),
                None => return self.moved(Step::EndOfHeaders),
            },
            Step::EndOfHeaders => (Command::EndOfHeaders, p::NO_EOH, p::NO_REPLY_EOH),
            Step::Body(i) => match self.body.get(i) {
                Some(chunk) if !self.skip_body => {
                    (Command::Body(chunk), p::NO_BODY, p::NO_REPLY_BODY)
                }
                _ => return self.moved(Step::EndOfMessage),
            },
            Step::EndOfMessage => (Command::EndOfMessage, 0, 0),
            Step::Negotiate | Step::Finished => return None,
        })
    }

    fn moved(&mut self, to: Step) -> Option<(Command<'m>, u32, u32)> {
        self.step = to;
        None
    }

    fn advance(&mut self) {
        self.step = match self.step {
            Step::Negotiate => Step::Connect,
            Step::Connect => Step::Helo,
            Step::Helo => Step::Mail,
            Step::Mail => Step::Rcpt(0),
            Step::Rcpt(i) => Step::Rcpt(i + 1),
            Step::Data => Step::Header(0),
            Step::Header(i) => Step::Header(i + 1),
            Step::EndOfHeaders => Step::Body(0),
            Step::Body(i) => Step::Body(i + 1),
            Step::EndOfMessage | Step::Finished => Step::Finished,
        };
    }

    /// A reply to the command last sent with `reply: true`.
    pub fn reply(&mut self, reply: Reply) -> Result<After, ProtocolError> {
        let unexpected = |r: &Reply| ProtocolError::Unexpected(format!("{r:?}"));
        if self.step == Step::Negotiate {
            let Reply::Options {
                version,
                actions,
                protocol,
            } = reply
            else {
                return Err(unexpected(&reply));
            };
            if version < 2 {
                return Err(ProtocolError::Version(version));
            }
            self.actions = actions;
            self.protocol = protocol & p::ALL;
            self.advance();
            return Ok(After::Next);
        }
        let at_end = self.step == Step::EndOfMessage;
        let verdict = match reply {
            Reply::Continue if at_end => Verdict::Continue,
            Reply::Continue => {
                self.advance();
                return Ok(After::Next);
            }
            Reply::Progress if at_end => return Ok(After::More),
            Reply::Skip if matches!(self.step, Step::Body(_)) => {
                self.skip_body = true;
                self.step = Step::EndOfMessage;
                return Ok(After::Next);
            }
            Reply::Accept => Verdict::Accept,
            Reply::Reject => Verdict::Reject(REJECT.into()),
            Reply::Tempfail => Verdict::Tempfail(TEMPFAIL.into()),
            Reply::Discard => Verdict::Discard,
            Reply::ReplyCode(text) => coded(text)?,
            Reply::Quarantine(why) if at_end => {
                self.quarantine = Some(why);
                return Ok(After::More);
            }
            Reply::ConnectionFailed | Reply::Shutdown => Verdict::Tempfail(TEMPFAIL.into()),
            m @ (Reply::AddHeader { .. }
            | Reply::InsertHeader { .. }
            | Reply::ChangeHeader { .. }
            | Reply::ReplaceBody(_)
            | Reply::AddRcpt { .. }
            | Reply::DeleteRcpt(_)
            | Reply::ChangeFrom { .. })
                if at_end =>
            {
                self.modifications.push(m);
                return Ok(After::More);
            }
            other => return Err(unexpected(&other)),
        };
        self.ended_early = !at_end;
        self.step = Step::Finished;
        // A quarantine asked for before the final answer holds the message unless refused.
        Ok(After::Done(match (verdict, self.quarantine.take()) {
            (Verdict::Accept | Verdict::Continue, Some(why)) => Verdict::Quarantine(why),
            (v, _) => v,
        }))
    }
}

/// A filter's own reply: a 4xx is a tempfail, a 5xx a reject; anything else is not allowed.
fn coded(text: String) -> Result<Verdict, ProtocolError> {
    let text = text.replace(['\r', '\n'], " ");
    let code_ok = text.len() >= 3 && text.as_bytes()[..3].iter().all(u8::is_ascii_digit);
    match text.as_bytes().first() {
        Some(b'4') if code_ok => Ok(Verdict::Tempfail(text)),
        Some(b'5') if code_ok => Ok(Verdict::Reject(text)),
        _ => Err(ProtocolError::BadReplyCode(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::codec::protocol as p;

    fn envelope() -> Envelope {
        Envelope {
            client_name: "unknown".into(),
            client_address: "192.0.2.1".into(),
            client_port: 2525,
            family: b'4',
            helo: "mta.example".into(),
            mail: vec!["<a@example.net>".into()],
            rcpts: vec![
                vec!["<b@example.org>".into()],
                vec!["<c@example.org>".into()],
            ],
            macros: Vec::new(),
        }
    }

    fn headers() -> Headers {
        Headers {
            fields: vec![
                ("From".into(), "a@example.net".into()),
                ("Subject".into(), "x".into()),
            ],
        }
    }

    /// Runs a conversation against a scripted filter: its answer to negotiation, then a
    /// reply for every command that wants one (`Continue` once the script runs out). The
    /// commands' codes in order, and the verdict.
    fn run(protocol: u32, script: Vec<Reply>) -> (String, Result<Verdict, ProtocolError>, usize) {
        let (env, hdr) = (envelope(), headers());
        let body: Vec<&[u8]> = vec![b"one\r\n", b"two\r\n"];
        let mut c = Conversation::new(&env, &hdr, &body);
        let mut sent = String::new();
        let mut script = script.into_iter();
        let mut negotiated = false;
        loop {
            match c.next_command() {
                Next::Done(v) => return (sent, Ok(v), c.take_modifications().len()),
                Next::Send { command, reply } => {
                    sent.push(command.code() as char);
                    if !reply {
                        continue;
                    }
                    loop {
                        let r = if !negotiated {
                            negotiated = true;
                            Reply::Options {
                                version: 6,
                                actions: 0x1ff,
                                protocol,
                            }
                        } else {
                            script.next().unwrap_or(Reply::Continue)
                        };
                        match c.reply(r) {
                            Ok(After::Next) => break,
                            Ok(After::More) => continue,
                            Ok(After::Done(v)) => {
                                return (sent, Ok(v), c.take_modifications().len())
                            }
                            Err(e) => return (sent, Err(e), 0),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_step_in_order_and_skipped_steps_left_out() {
        let (sent, v, _) = run(0, vec![]);
        assert_eq!(sent, "OCHMRRTLLNBBE");
        assert_eq!(v, Ok(Verdict::Continue));
        let skip = p::NO_HELO | p::NO_HEADERS | p::NO_BODY | p::NO_DATA;
        let (sent, v, _) = run(skip, vec![]);
        assert_eq!(sent, "OCMRRNE");
        assert_eq!(v, Ok(Verdict::Continue));
        // Steps not answered are still sent.
        let (sent, _, _) = run(p::NO_REPLY_HEADER | p::NO_REPLY_BODY, vec![]);
        assert_eq!(sent, "OCHMRRTLLNBBE");
    }

    #[test]
    fn replies_end_the_conversation_with_their_verdict() {
        // Reject at the first RCPT: nothing more is sent.
        let (sent, v, _) = run(
            0,
            vec![
                Reply::Continue,
                Reply::Continue,
                Reply::Continue,
                Reply::Reject,
            ],
        );
        assert_eq!(
            (sent.as_str(), v),
            ("OCHMR", Ok(Verdict::Reject(REJECT.into())))
        );
        let coded = Reply::ReplyCode("554 5.7.1 Virus found".into());
        let mut script = vec![Reply::Continue; 11];
        script.push(coded);
        let (_, v, _) = run(0, script);
        assert_eq!(v, Ok(Verdict::Reject("554 5.7.1 Virus found".into())));
        let (_, v, _) = run(0, vec![Reply::Tempfail]);
        assert_eq!(v, Ok(Verdict::Tempfail(TEMPFAIL.into())));
        let (_, v, _) = run(0, vec![Reply::Discard]);
        assert_eq!(v, Ok(Verdict::Discard));
        // Accept early: the rest is skipped.
        let (sent, v, _) = run(0, vec![Reply::Continue, Reply::Accept]);
        assert_eq!((sent.as_str(), v), ("OCH", Ok(Verdict::Accept)));
        // Skip during the body: straight to end of message.
        let mut script = vec![Reply::Continue; 9];
        script.push(Reply::Skip);
        let (sent, _, _) = run(0, script);
        assert_eq!(sent, "OCHMRRTLLNBE");
    }

    #[test]
    fn modifications_and_quarantine_come_with_the_final_reply() {
        let mut script = vec![Reply::Continue; 11];
        script.extend([
            Reply::Progress,
            Reply::AddHeader {
                name: "X-Spam".into(),
                value: "yes".into(),
            },
            Reply::Quarantine("spam".into()),
            Reply::DeleteRcpt("<c@example.org>".into()),
            Reply::Accept,
        ]);
        let (_, v, mods) = run(0, script);
        assert_eq!(v, Ok(Verdict::Quarantine("spam".into())));
        assert_eq!(mods, 2);
        // A modification before end of message is a protocol error.
        let bad = vec![Reply::AddHeader {
            name: "X".into(),
            value: "y".into(),
        }];
        assert!(matches!(run(0, bad).1, Err(ProtocolError::Unexpected(_))));
        let code = vec![Reply::ReplyCode("250 fine".into())];
        assert!(matches!(
            run(0, code).1,
            Err(ProtocolError::BadReplyCode(_))
        ));
    }
}

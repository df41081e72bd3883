//! Delivery status notifications (RFC 3464, RFC 3461, RFC 3463 codes), pure: one report for
//! one message and any number of its recipients, built with mail-builder.
//!
//! Invariants: `multipart/report; report-type=delivery-status` with a human-readable part, a
//! `message/delivery-status` part and the original — whole as `message/rfc822` when RET=FULL
//! (or unset) and not too large, else its header as `text/rfc822-headers`; the original part
//! is never re-encoded (7bit or 8bit as it is). Texts from remote servers are stripped of
//! control characters before they go into header fields.
use chrono::{DateTime, Utc};
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    Failed,
    Delayed,
    Delivered,
    Relayed,
}

impl DsnAction {
    fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
            DsnAction::Delivered => "delivered",
            DsnAction::Relayed => "relayed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReportRecipient {
    pub address: String,
    /// RFC 3461 ORCPT (the address part), empty when not given.
    pub orcpt: String,
    pub action: DsnAction,
    pub status: String,
    pub remote_mta: String,
    pub diagnostic: String,
    pub last_attempt: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub reporting_mta: &'a str,
    /// Who gets the report (the original envelope sender).
    pub to: &'a str,
    pub envid: &'a str,
    pub arrival: DateTime<Utc>,
    pub recipients: &'a [ReportRecipient],
    pub original: &'a [u8],
    /// RET=HDRS was asked for.
    pub headers_only: bool,
    /// Larger originals are returned as headers only.
    pub max_original: usize,
    pub will_retry_until: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

pub fn build(r: &Report) -> Vec<u8> {
    let action = r.recipients.first().map_or(DsnAction::Failed, |x| x.action);
    let (subject, intro) = match action {
        DsnAction::Failed => (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients. It is attached below.",
        ),
        DsnAction::Delayed => (
            "Delayed Mail (still being retried)",
            "Your message has not been delivered yet to one or more recipients. Delivery will be retried; you do not need to send it again.",
        ),
        DsnAction::Delivered | DsnAction::Relayed => (
            "Successful Mail Delivery Report",
            "Your message was delivered to the recipients listed below, as you asked to be told.",
        ),
    };
    let mut human = format!(
        "This is the mail system at {}.\r\n\r\n{intro}\r\n\r\n",
        clean(r.reporting_mta)
    );
    for x in r.recipients {
        human.push_str(&format!(
            "<{}>: {}\r\n",
            clean(&x.address),
            clean(&x.diagnostic)
        ));
    }
    let header_end = find_header_end(r.original);
    let original_part = if r.headers_only || r.original.len() > r.max_original {
        leaf("text/rfc822-headers", &r.original[..header_end])
    } else {
        leaf("message/rfc822", r.original)
    };
    let status = delivery_status(r);
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                human,
            )
            .transfer_encoding("8bit"),
            leaf("message/delivery-status", status.as_bytes()),
            original_part,
        ]),
    );
    let from = format!("MAILER-DAEMON@{}", clean(r.reporting_mta));
    let mut message = MessageBuilder::new()
        .from(("Mail Delivery System", from.as_str()))
        .to(r.to)
        .subject(subject)
        .date(r.now.timestamp())
        .message_id(format!(
            "{}.dsn@{}",
            r.now.timestamp_nanos_opt().unwrap_or(0),
            clean(r.reporting_mta)
        ))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report);
    if let Some(id) = original_message_id(&r.original[..header_end]) {
        message = message.in_reply_to(id.clone()).references(id);
    }
    message.write_to_vec().unwrap_or_default()
}

/// The message/delivery-status body: per-message fields, then one block per recipient.
fn delivery_status(r: &Report) -> String {
    let mut s = format!("Reporting-MTA: dns; {}\r\n", clean(r.reporting_mta));
    if !r.envid.is_empty() {
        s.push_str(&format!("Original-Envelope-Id: {}\r\n", clean(r.envid)));
    }
    s.push_str(&format!("Arrival-Date: {}\r\n", r.arrival.to_rfc2822()));
    for x in r.recipients {
        s.push_str("\r\n");
        if !x.orcpt.is_empty() {
            s.push_str(&format!(
                "Original-Recipient: rfc822; {}\r\n",
                clean(&x.orcpt)
            ));
        }
        s.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            clean(&x.address)
        ));
        s.push_str(&format!("Action: {}\r\n", x.action.as_str()));
        s.push_str(&format!("Status: {}\r\n", clean(&x.status)));
        if !x.remote_mta.is_empty() {
            s.push_str(&format!("Remote-MTA: dns; {}\r\n", clean(&x.remote_mta)));
        }
        if !x.diagnostic.is_empty() {
            s.push_str(&format!(
                "Diagnostic-Code: smtp; {}\r\n",
                clean(&x.diagnostic)
            ));
        }
        s.push_str(&format!(
            "Last-Attempt-Date: {}\r\n",
            x.last_attempt.to_rfc2822()
        ));
        if let (DsnAction::Delayed, Some(until)) = (x.action, r.will_retry_until) {
            s.push_str(&format!("Will-Retry-Until: {}\r\n", until.to_rfc2822()));
        }
    }
    s
}

/// A part whose body goes out exactly as given, declared 7bit or 8bit.
fn leaf<'a>(content_type: &'a str, body: &'a [u8]) -> MimePart<'a> {
    let cte = if body.is_ascii() { "7bit" } else { "8bit" };
    MimePart::new(
        ContentType::new(content_type),
        BodyPart::Binary(body.into()),
    )
    .transfer_encoding(cte)
}

fn find_header_end(msg: &[u8]) -> usize {
    crate::trace::header_end(msg).unwrap_or(msg.len())
}

fn original_message_id(header: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(header)?;
    parsed.message_id().map(str::to_string)
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn failure_report_has_the_three_parts() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap();
        let rcpt = ReportRecipient {
            address: "nobody@outside.example".into(),
            orcpt: "Nobody@Outside.Example".into(),
            action: DsnAction::Failed,
            status: "5.1.1".into(),
            remote_mta: "mx.outside.example".into(),
            diagnostic: "550 5.1.1 no such user\r\nX-Injected: 1".into(),
            last_attempt: now,
        };
        let original = b"Message-ID: <orig@client.example>\r\nSubject: hello\r\n\r\nbody\r\n";
        let report = Report {
            reporting_mta: "mx.local.test",
            to: "alice@local.test",
            envid: "ENV1",
            arrival: now,
            recipients: &[rcpt],
            original,
            headers_only: false,
            max_original: 1 << 20,
            will_retry_until: None,
            now,
        };
        let out = String::from_utf8(build(&report)).unwrap();
        assert!(
            out.contains("Content-Type: multipart/report; report-type=\"delivery-status\""),
            "{out}"
        );
        assert!(out.contains("Auto-Submitted: auto-replied"), "{out}");
        assert!(out.contains("In-Reply-To: <orig@client.example>"), "{out}");
        assert!(out.contains("Original-Envelope-Id: ENV1\r\n"));
        assert!(out.contains("Original-Recipient: rfc822; Nobody@Outside.Example\r\n"));
        assert!(out.contains("Final-Recipient: rfc822; nobody@outside.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
        assert!(
            out.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user  X-Injected: 1\r\n"),
            "{out}"
        );
        assert!(out.contains("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nMessage-ID: <orig@client.example>\r\nSubject: hello\r\n\r\nbody\r\n"), "{out}");

        let headers_only = Report {
            headers_only: true,
            ..report
        };
        let out = String::from_utf8(build(&headers_only)).unwrap();
        assert!(out.contains("Content-Type: text/rfc822-headers"));
        assert!(!out.contains("\r\nbody\r\n"));
    }
}

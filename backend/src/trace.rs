//! Trace and submission headers, pure: the Received header a back-end prepends (RFC 5321
//! §4.4, with RFC 3848 protocol names), Return-Path for final delivery, and Message-ID/Date
//! for submissions that lack them (RFC 6409 §8).
use chrono::{DateTime, Utc};

/// What the Received header says about how the message came in.
#[derive(Debug, Clone, Default)]
pub struct Arrival {
    pub client_helo: String,
    pub client_address: String,
    pub by: String,
    pub protocol: String,
    pub tls: String,
    pub queue_id: String,
    /// Named in a "for" clause when there is exactly one recipient.
    pub single_recipient: Option<String>,
}

pub fn received(a: &Arrival, now: DateTime<Utc>) -> String {
    let mut h = format!(
        "Received: from {} ([{}])\r\n\tby {} (Bridgehead) with {} id {}",
        clean(&a.client_helo),
        clean(&a.client_address),
        clean(&a.by),
        clean(&a.protocol),
        clean(&a.queue_id)
    );
    if !a.tls.is_empty() {
        h.push_str(&format!("\r\n\t(using {})", clean(&a.tls)));
    }
    if let Some(r) = &a.single_recipient {
        h.push_str(&format!("\r\n\tfor <{}>", clean(r)));
    }
    h.push_str(&format!(";\r\n\t{}\r\n", now.to_rfc2822()));
    h
}

pub fn return_path(sender: &str) -> Vec<u8> {
    format!("Return-Path: <{}>\r\n", clean(sender)).into_bytes()
}

/// Headers a submitted message lacks: Message-ID and Date (RFC 6409 §8.2, §8.3).
pub fn submission_headers(
    header: &[u8],
    domain: &str,
    queue_id: &str,
    now: DateTime<Utc>,
) -> String {
    let mut add = String::new();
    if !has_header(header, "message-id") {
        add.push_str(&format!(
            "Message-ID: <{}.{}@{}>\r\n",
            now.timestamp(),
            queue_id,
            clean(domain)
        ));
    }
    if !has_header(header, "date") {
        add.push_str(&format!("Date: {}\r\n", now.to_rfc2822()));
    }
    add
}

/// Length of the header block, blank line included, once it is complete in `buf`.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    if buf.starts_with(b"\r\n") {
        return Some(2);
    }
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The Message-ID field's value in a header block, without angle brackets or white space
/// (folded lines joined), if it has one; at most 998 octets of it.
pub fn message_id(block: &[u8]) -> Option<String> {
    let block = &block[..header_end(block).unwrap_or(block.len())];
    let mut lines = block.split(|&b| b == b'\n');
    while let Some(line) = lines.next() {
        let Some(rest) = line
            .get(..11)
            .filter(|n| n.eq_ignore_ascii_case(b"message-id:"))
            .map(|_| &line[11..])
        else {
            continue;
        };
        let mut value = String::from_utf8_lossy(rest).into_owned();
        for more in lines.by_ref() {
            if !more.starts_with(b" ") && !more.starts_with(b"\t") {
                break;
            }
            value.push_str(&String::from_utf8_lossy(more));
        }
        let id: String = value
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '<' && *c != '>')
            .take(998)
            .collect();
        return (!id.is_empty()).then_some(id);
    }
    None
}

/// True when the header block has a field of this (lower-case) name.
pub fn has_header(header: &[u8], name: &str) -> bool {
    header.split(|&b| b == b'\n').any(|line| {
        line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    })
}

/// Keeps header text printable: no CR, LF or control characters from clients.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn received_header_names_the_path() {
        let a = Arrival {
            client_helo: "client.example\r\nX-Injected: 1".into(),
            client_address: "192.0.2.7".into(),
            by: "mx.local.test".into(),
            protocol: "ESMTPSA".into(),
            tls: "TLSv1.3".into(),
            queue_id: "ABC123".into(),
            single_recipient: Some("alice@local.test".into()),
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 1, 2, 3).unwrap();
        assert_eq!(
            received(&a, now),
            "Received: from client.example??X-Injected: 1 ([192.0.2.7])\r\n\tby mx.local.test (Bridgehead) with ESMTPSA id ABC123\r\n\t(using TLSv1.3)\r\n\tfor <alice@local.test>;\r\n\tSun, 22 Nov 2026 01:02:03 +0000\r\n"
        );
    }

    #[test]
    fn adds_only_missing_submission_headers() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 1, 2, 3).unwrap();
        let h = submission_headers(
            b"Subject: x\r\nDATE: today\r\n\r\n",
            "local.test",
            "Q1",
            now,
        );
        assert_eq!(h, "Message-ID: <1795309323.Q1@local.test>\r\n");
        let h = submission_headers(
            b"message-id: <a@b>\r\nSubject: x\r\n\r\n",
            "local.test",
            "Q1",
            now,
        );
        assert_eq!(h, "Date: Sun, 22 Nov 2026 01:02:03 +0000\r\n");
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), Some(8));
        assert_eq!(header_end(b"\r\nbody"), Some(2));
        assert_eq!(header_end(b"A: b\r\n"), None);
    }

    #[test]
    fn finds_the_message_id() {
        let h =
            b"Subject: x\r\nMESSAGE-ID:\r\n <a.b@c.test>\r\nTo: y\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(message_id(h).as_deref(), Some("a.b@c.test"));
        assert_eq!(
            message_id(b"Subject: x\r\n\r\nMessage-ID: <no@x>\r\n"),
            None
        );
        assert_eq!(message_id(b"Message-ID: <>\r\n\r\n"), None);
    }
}

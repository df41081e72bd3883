//! Whether a queued message may go to a next hop as it is, by the hop's service extensions
//! (pure): RFC 6152 8BITMIME and RFC 6531 SMTPUTF8.
//!
//! Bridgehead never mangles a message to make it fit: 8-bit content for a hop without
//! 8BITMIME fails with `5.6.3` (no conversion to quoted-printable: it would break signatures
//! and is rarely needed today), and mail that needs SMTPUTF8 (a UTF-8 sender, UTF-8 headers in
//! a message sent with SMTPUTF8) for a hop without it fails with `5.6.7` (RFC 6531 §3.5); a
//! UTF-8 recipient address alone fails just that recipient. Parameters are sent only when
//! the hop offers them.
use super::client::Extensions;

/// How a message goes to one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Send `BODY=8BITMIME`.
    pub eight_bit: bool,
    /// Send `SMTPUTF8`.
    pub smtputf8: bool,
    /// Recipients (by index) that cannot go to this hop: (index, status, reason).
    pub refused: Vec<(usize, &'static str, String)>,
}

/// What the queue knows of a message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub from: &'a str,
    /// BODY= as received ("" when not given).
    pub body: &'a str,
    /// SMTPUTF8 as received.
    pub smtputf8: bool,
    pub content: &'a [u8],
}

pub fn plan(m: Message<'_>, recipients: &[&str], hop: Extensions) -> Plan {
    let eight_bit_content = !m.content.is_ascii();
    let declared = matches!(m.body, "8BITMIME" | "BINARYMIME");
    let utf8_headers = m.smtputf8 && !header_section(m.content).is_ascii();
    let utf8_address = !m.from.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    let mut refused = Vec::new();
    let everyone = |status, why: &str| -> Vec<(usize, &'static str, String)> {
        (0..recipients.len())
            .map(|i| (i, status, why.to_string()))
            .collect()
    };
    if eight_bit_content && !hop.eight_bit_mime {
        let why =
            "the next hop accepts only 7-bit content (no 8BITMIME); Bridgehead does not convert";
        refused = everyone("5.6.3", why);
    } else if !hop.smtputf8 && (!m.from.is_ascii() || utf8_headers) {
        let why = "the message needs SMTPUTF8 (UTF-8 sender or headers), which the next hop does not offer";
        refused = everyone("5.6.7", why);
    } else if !hop.smtputf8 {
        for (i, r) in recipients.iter().enumerate() {
            if !r.is_ascii() {
                let why = "a UTF-8 address needs SMTPUTF8, which the next hop does not offer";
                refused.push((i, "5.6.7", why.to_string()));
            }
        }
    }
    Plan {
        eight_bit: (declared || eight_bit_content) && hop.eight_bit_mime,
        smtputf8: (m.smtputf8 || utf8_address) && hop.smtputf8,
        refused,
    }
}

/// The header section: everything up to the first empty line.
fn header_section(content: &[u8]) -> &[u8] {
    memchr::memmem::find(content, b"\r\n\r\n").map_or(content, |end| &content[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Extensions = Extensions {
        eight_bit_mime: true,
        smtputf8: true,
        dsn: false,
        chunking: false,
        requiretls: false,
    };
    const SEVEN_BIT: Extensions = Extensions {
        eight_bit_mime: false,
        smtputf8: false,
        dsn: false,
        chunking: false,
        requiretls: false,
    };
    const NO_UTF8: Extensions = Extensions {
        eight_bit_mime: true,
        smtputf8: false,
        dsn: false,
        chunking: false,
        requiretls: false,
    };

    fn msg<'a>(from: &'a str, body: &'a str, smtputf8: bool, content: &'a [u8]) -> Message<'a> {
        Message {
            from,
            body,
            smtputf8,
            content,
        }
    }

    #[test]
    fn parameters_go_only_where_offered_and_needed() {
        let ascii = msg("a@x.test", "8BITMIME", false, b"Subject: hi\r\n\r\nhi\r\n");
        let p = plan(ascii, &["b@y.test"], BOTH);
        assert!(p.eight_bit && !p.smtputf8 && p.refused.is_empty());
        // Declared 8BITMIME, but 7-bit octets: fine for a 7-bit hop, without the parameter.
        let p = plan(ascii, &["b@y.test"], SEVEN_BIT);
        assert!(!p.eight_bit && p.refused.is_empty());
        // Undeclared 8-bit content still says BODY=8BITMIME where it may.
        let latin = msg(
            "a@x.test",
            "",
            false,
            "Subject: hi\r\n\r\nÄrger\r\n".as_bytes(),
        );
        assert!(plan(latin, &["b@y.test"], BOTH).eight_bit);
    }

    #[test]
    fn eight_bit_content_to_a_seven_bit_hop_fails_every_recipient() {
        let m = msg(
            "a@x.test",
            "8BITMIME",
            false,
            "Subject: hi\r\n\r\nÄrger\r\n".as_bytes(),
        );
        let p = plan(m, &["b@y.test", "c@y.test"], SEVEN_BIT);
        assert_eq!(p.refused.len(), 2);
        assert!(p.refused.iter().all(|r| r.1 == "5.6.3"));
    }

    #[test]
    fn smtputf8_mail_to_a_hop_without_it() {
        let headers = msg(
            "a@x.test",
            "8BITMIME",
            true,
            "Subject: Grüße\r\n\r\nhi\r\n".as_bytes(),
        );
        let p = plan(headers, &["b@y.test"], NO_UTF8);
        assert_eq!(p.refused, vec![(0, "5.6.7", p.refused[0].2.clone())]);
        let sender = msg("jörg@x.test", "", true, b"Subject: hi\r\n\r\nhi\r\n");
        assert_eq!(plan(sender, &["b@y.test"], NO_UTF8).refused.len(), 1);
        // Only one recipient has a UTF-8 address: only it fails; the other goes, plainly.
        let body_only = msg(
            "a@x.test",
            "8BITMIME",
            true,
            "Subject: hi\r\n\r\nÄ\r\n".as_bytes(),
        );
        let p = plan(body_only, &["b@y.test", "jürgen@y.test"], NO_UTF8);
        assert_eq!(p.refused.iter().map(|r| r.0).collect::<Vec<_>>(), [1]);
        assert!(!p.smtputf8 && p.eight_bit);
        // With SMTPUTF8 offered, all of it goes, with the parameter.
        let p = plan(body_only, &["b@y.test", "jürgen@y.test"], BOTH);
        assert!(p.refused.is_empty() && p.smtputf8);
    }
}

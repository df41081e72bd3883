//! Where a fetched message goes (pure): the user-mode target, or for a global mailbox the
//! local recipients named in its To and Cc headers (every To and Cc header; groups and
//! encoded words are handled by mail-parser) plus the routing rules that match their text.
//! What has no local recipient — Bcc mail, unknown names — goes to the undeliverable mailbox;
//! so does a message that already carries our Delivered-To for a target, or has too many
//! Received headers (loop safety).
use mail_parser::{HeaderValue, MessageParser};

/// More Received headers than this is taken for a mail loop.
pub const MAX_HOPS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routing {
    /// Addresses to look up and deliver to, in order, without repeats.
    pub candidates: Vec<String>,
    /// Why (part of) the message goes to the undeliverable mailbox, if it does.
    pub looped: bool,
}

/// The candidates for a message, before they are looked up.
pub fn route(mode: &str, target: &str, rules: &[(String, String)], message: &[u8]) -> Routing {
    let header = &message[..crate::trace::header_end(message).unwrap_or(message.len())];
    let parsed = MessageParser::default().parse_headers(header);
    let delivered_to: Vec<String> = parsed
        .as_ref()
        .map(|m| {
            m.header_values("Delivered-To")
                .filter_map(|v| {
                    v.as_text()
                        .map(|t| t.trim().trim_matches(['<', '>']).to_ascii_lowercase())
                })
                .collect()
        })
        .unwrap_or_default();
    let hops = parsed
        .as_ref()
        .map_or(0, |m| m.header_values("Received").count());
    let mut candidates: Vec<String> = Vec::new();
    let mut push = |a: String| {
        if !candidates.contains(&a) {
            candidates.push(a);
        }
    };
    if mode == "user" {
        push(target.to_ascii_lowercase());
    } else if let Some(m) = &parsed {
        let mut haystack = String::new();
        for name in ["To", "Cc"] {
            for v in m.header_values(name) {
                if let HeaderValue::Address(list) = v {
                    for a in list.iter() {
                        let address = a.address().unwrap_or("").to_ascii_lowercase();
                        haystack.push_str(&format!(" {} <{address}>", a.name().unwrap_or("")));
                        let domain = address.rsplit_once('@').map(|(_, d)| d);
                        if domain.is_some_and(|d| d.eq_ignore_ascii_case(target)) {
                            push(address);
                        }
                    }
                }
            }
            if let Some(raw) = m.header_raw(name) {
                haystack.push_str(raw);
            }
        }
        let haystack = haystack.to_lowercase();
        for (text, rule_target) in rules {
            if haystack.contains(&text.to_lowercase()) {
                push(rule_target.to_ascii_lowercase());
            }
        }
    }
    let looped = hops > MAX_HOPS || candidates.iter().any(|c| delivered_to.contains(c));
    if looped {
        candidates.clear();
    }
    Routing { candidates, looped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<(String, String)> {
        vec![(
            "mailinglist@treyresearch.net".into(),
            "research@wingtip.test".into(),
        )]
    }

    #[test]
    fn user_mode_delivers_to_its_target() {
        let r = route(
            "user",
            "Chris@Wingtip.Test",
            &[],
            b"Subject: x\r\n\r\nbody\r\n",
        );
        assert_eq!(r.candidates, vec!["chris@wingtip.test"]);
    }

    #[test]
    fn global_mode_reads_every_to_and_cc_and_the_rules() {
        let msg = b"To: Chris <CHRIS@wingtip.test>, other@elsewhere.example\r\nTo: undisclosed-recipients:;\r\n\
Cc: =?utf-8?q?K=C3=A9lly?= <kelly@wingtip.test>, Team: chris@wingtip.test, dana@wingtip.test;\r\n\
Subject: hi\r\n\r\nbody\r\n";
        let r = route("global", "wingtip.test", &rules(), msg);
        assert_eq!(
            r.candidates,
            vec![
                "chris@wingtip.test",
                "kelly@wingtip.test",
                "dana@wingtip.test"
            ]
        );
        let list = b"To: The List <mailinglist@treyresearch.net>\r\n\r\nx\r\n";
        assert_eq!(
            route("global", "wingtip.test", &rules(), list).candidates,
            vec!["research@wingtip.test"]
        );
        let bcc = b"To: someone@elsewhere.example\r\n\r\nx\r\n";
        assert!(route("global", "wingtip.test", &rules(), bcc)
            .candidates
            .is_empty());
    }

    #[test]
    fn loops_are_caught() {
        let msg = b"Delivered-To: chris@wingtip.test\r\nTo: chris@wingtip.test\r\n\r\nx\r\n";
        let r = route("global", "wingtip.test", &[], msg);
        assert!(r.looped && r.candidates.is_empty());
        let hops = [
            b"Received: x\r\n".repeat(51),
            b"To: chris@wingtip.test\r\n\r\nx\r\n".to_vec(),
        ]
        .concat();
        assert!(route("user", "chris@wingtip.test", &[], &hops).looped);
    }
}

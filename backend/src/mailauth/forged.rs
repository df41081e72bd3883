//! Authentication-Results fields that arrive claiming our checks (RFC 8601 §5): renamed
//! before the message is stored, so no reader takes a sender's word for what we found. Pure.
//!
//! Invariants: only fields whose authserv-id is ours (any case) are touched; the rest of each
//! field, every other line and their order stay as they were.

/// The name a forged Authentication-Results field is given.
const FORGED: &[u8] = b"X-Forged-Authentication-Results";

/// RFC 8601 §5: Authentication-Results fields in `head` that claim to be ours (their
/// authserv-id is `authserv_id`) are renamed, so no reader takes a sender's word for our
/// checks. `None` when there is none.
pub fn rename_forged(head: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    const NAME: &[u8] = b"authentication-results:";
    let lines: Vec<&[u8]> = head.split_inclusive(|&b| b == b'\n').collect();
    let mut out = Vec::with_capacity(head.len() + 16);
    let mut renamed = false;
    for (i, line) in lines.iter().enumerate() {
        let ours = line.len() >= NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) && {
            let mut value = line[NAME.len()..].to_vec();
            let folded = lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with(b" ") || l.starts_with(b"\t"));
            folded.for_each(|l| value.extend_from_slice(l));
            let text = String::from_utf8_lossy(&value);
            let id = text.trim_start().split([';', ' ', '\t', '\r', '\n']).next();
            id.is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
        };
        if ours {
            out.extend_from_slice(FORGED);
            out.extend_from_slice(&line[NAME.len() - 1..]);
            renamed = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    renamed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_claiming_our_checks_are_renamed() {
        let head = b"Received: x\r\nAuthentication-Results: MX.example.net; dmarc=pass\r\n\
            authentication-results:\r\n mx.example.net;\r\n\tspf=pass\r\n\
            Authentication-Results: other.example; spf=fail\r\n\
            Authentication-Results: mx.example.network; spf=fail\r\n\r\n";
        let out = rename_forged(head, "mx.example.net").expect("renamed");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Received: x\r\nX-Forged-Authentication-Results: MX.example.net; dmarc=pass\r\n\
             X-Forged-Authentication-Results:\r\n mx.example.net;\r\n\tspf=pass\r\n\
             Authentication-Results: other.example; spf=fail\r\n\
             Authentication-Results: mx.example.network; spf=fail\r\n\r\n"
        );
        assert_eq!(
            rename_forged(b"Subject: hi\r\n\r\n", "mx.example.net"),
            None
        );
    }
}

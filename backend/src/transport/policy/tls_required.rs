//! The `TLS-Required: No` header field (RFC 8689 §5): the sender asks that the recipient
//! domain's TLS policies (MTA-STS, DANE) be ignored for this message — it prefers delivery,
//! perhaps in clear, to none (a report about a TLS problem, for instance). Pure.
//!
//! Invariant: only a header field of the message's own header section counts, and it is
//! ignored when the message carries REQUIRETLS (the caller's rule, §5).

/// Whether the header section of `content` has `TLS-Required: No`.
pub fn policies_waived(content: &[u8]) -> bool {
    let end = crate::trace::header_end(content).unwrap_or(content.len());
    let header = &content[..end];
    let mut lines = header.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let Some(value) = field_value(line, b"tls-required") else {
            continue;
        };
        // The value, with any folded continuation lines.
        let mut text = String::from_utf8_lossy(value).into_owned();
        while let Some(next) = lines.peek() {
            if !next.starts_with(b" ") && !next.starts_with(b"\t") {
                break;
            }
            text.push_str(&String::from_utf8_lossy(next));
            lines.next();
        }
        if text.trim().eq_ignore_ascii_case("no") {
            return true;
        }
    }
    false
}

/// The value of `line` when it is the header field `name` (compared without case).
fn field_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let field = line[..colon].trim_ascii_end();
    field.eq_ignore_ascii_case(name).then(|| &line[colon + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_header_field_no_waives() {
        assert!(policies_waived(
            b"Subject: x\r\nTLS-Required: No\r\n\r\nbody\r\n"
        ));
        assert!(policies_waived(b"tls-required:   no  \r\n\r\n"));
        assert!(policies_waived(b"TLS-Required:\r\n No\r\n\r\n"), "folded");
        assert!(!policies_waived(b"TLS-Required: Yes\r\n\r\n"));
        assert!(
            !policies_waived(b"Subject: x\r\n\r\nTLS-Required: No\r\n"),
            "in the body"
        );
        assert!(!policies_waived(b"X-TLS-Required: No\r\n\r\n"));
        assert!(!policies_waived(b"TLS-Required: Nope\r\n\r\n"));
    }
}

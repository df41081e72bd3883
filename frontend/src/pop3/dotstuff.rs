//! Byte-stuffing of multi-line POP3 responses (RFC 1939 §3), streaming and pure: every
//! line that starts with "." gets one more, and the response ends with ".\r\n".
//! The input is CRLF text; chunks may split it anywhere.
#[derive(Debug)]
pub struct DotStuffer {
    at_line_start: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
        }
    }
}

impl DotStuffer {
    /// Appends the stuffed form of `chunk` to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + 8);
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.at_line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&rest[..=i]);
                    rest = &rest[i + 1..];
                    self.at_line_start = true;
                }
                None => {
                    out.extend_from_slice(rest);
                    self.at_line_start = false;
                    rest = &[];
                }
            }
        }
    }

    /// Appends the terminator, ending an unfinished last line first.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.at_line_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffs_at_every_split() {
        let msg = b".leading\r\nmid.dle\r\n.\r\n..two\r\n";
        let want = b"..leading\r\nmid.dle\r\n..\r\n...two\r\n.\r\n".to_vec();
        for at in 0..=msg.len() {
            let mut d = DotStuffer::default();
            let mut out = Vec::new();
            d.push(&msg[..at], &mut out);
            d.push(&msg[at..], &mut out);
            d.finish(&mut out);
            assert_eq!(out, want, "split at {at}");
        }
    }

    #[test]
    fn ends_unterminated_line() {
        let mut d = DotStuffer::default();
        let mut out = Vec::new();
        d.push(b"no newline", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"no newline\r\n.\r\n".to_vec());
    }
}

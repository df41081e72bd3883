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
    /// Appends the stuffed form of `chunk` to `out`: the text between line-starting dots is
    /// copied in whole runs (lines that start with "." are rare).
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = chunk.last() else {
            return;
        };
        out.reserve(chunk.len() + 8);
        if self.at_line_start && chunk[0] == b'.' {
            out.push(b'.');
        }
        let mut from = 0;
        for lf in memchr::memmem::find_iter(chunk, b"\n.") {
            out.extend_from_slice(&chunk[from..=lf]);
            out.push(b'.');
            from = lf + 1;
        }
        out.extend_from_slice(&chunk[from..]);
        self.at_line_start = last == b'\n';
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
    fn stuffs_like_the_line_by_line_rule_for_any_chunking() {
        let pieces: [&[u8]; 6] = [b".", b"\r\n", b"\n", b"ab", b"..", b"x.y"];
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
        for case in 0..2000 {
            let mut msg = Vec::new();
            for _ in 0..next() % 30 {
                msg.extend_from_slice(pieces[(next() % 6) as usize]);
            }
            // The rule, line by line: a line starting with "." gets another.
            let mut want = Vec::new();
            for line in msg.split_inclusive(|&b| b == b'\n') {
                if line.first() == Some(&b'.') {
                    want.push(b'.');
                }
                want.extend_from_slice(line);
            }
            let mut d = DotStuffer::default();
            let mut out = Vec::new();
            let mut rest = &msg[..];
            while !rest.is_empty() {
                let n = 1 + (next() as usize) % rest.len();
                d.push(&rest[..n], &mut out);
                rest = &rest[n..];
            }
            assert_eq!(out, want, "case {case}");
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

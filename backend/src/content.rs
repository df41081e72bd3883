//! Message content transformations, pure and streaming (no I/O).
//!
//! * `Canonicalizer` turns any line endings into CRLF and makes sure non-empty content
//!   ends with CRLF, so that the stored octets are exactly what POP3 RETR sends before
//!   dot-stuffing (RFC 1939 §3), and the stored size is the exact size LIST reports.
//! * `TopCutter` finds where POP3 TOP n stops: the header, the blank line, n body lines
//!   (RFC 1939 §7).
//!
//! Both work on chunks split at any byte, keeping their state between calls.

/// Streaming CRLF canonicalizer.
#[derive(Debug, Default)]
pub struct Canonicalizer {
    pending_cr: bool,
    total: u64,
    ends_crlf: bool,
}

impl Canonicalizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the canonical form of `input` to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(input.len() + 2);
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        while let Some(pos) = memchr::memchr2(b'\r', b'\n', input) {
            out.extend_from_slice(&input[..pos]);
            out.extend_from_slice(b"\r\n");
            let is_cr = input[pos] == b'\r';
            input = &input[pos + 1..];
            if is_cr {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    Some(_) => {}
                    None => {
                        // Cannot tell yet whether an LF follows: hold the CR back.
                        out.truncate(out.len() - 2);
                        self.pending_cr = true;
                    }
                }
            }
        }
        out.extend_from_slice(input);
        self.note_written(&out[start..]);
    }

    /// Flushes a held-back CR and ends non-empty content with CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
        } else if self.total > 0 && !self.ends_crlf {
            out.extend_from_slice(b"\r\n");
        }
        self.note_written(&out[start..]);
    }

    /// Octets produced so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn note_written(&mut self, written: &[u8]) {
        if written.is_empty() {
            return;
        }
        self.total += written.len() as u64;
        self.ends_crlf = written.ends_with(b"\r\n");
    }
}

/// Decides how much of a CRLF message POP3 TOP n sends.
#[derive(Debug)]
pub struct TopCutter {
    in_header: bool,
    line_len: usize,
    remaining: u32,
    done: bool,
}

impl TopCutter {
    pub fn new(body_lines: u32) -> Self {
        TopCutter {
            in_header: true,
            line_len: 0,
            remaining: body_lines,
            done: false,
        }
    }

    /// How many octets of `chunk` belong to the TOP output. After `is_done`, always 0.
    pub fn take(&mut self, chunk: &[u8]) -> usize {
        if self.done {
            return 0;
        }
        for (i, &b) in chunk.iter().enumerate() {
            match b {
                b'\n' => {
                    if self.in_header {
                        if self.line_len == 0 {
                            self.in_header = false;
                            self.done = self.remaining == 0;
                        }
                    } else {
                        self.remaining -= 1;
                        self.done = self.remaining == 0;
                    }
                    self.line_len = 0;
                    if self.done {
                        return i + 1;
                    }
                }
                b'\r' => {}
                _ => self.line_len += 1,
            }
        }
        chunk.len()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon_split(input: &[u8], at: usize) -> Vec<u8> {
        let mut c = Canonicalizer::new();
        let mut out = Vec::new();
        c.push(&input[..at], &mut out);
        c.push(&input[at..], &mut out);
        c.finish(&mut out);
        assert_eq!(c.total(), out.len() as u64);
        out
    }

    #[test]
    fn canonicalizes_at_every_split() {
        let input = b"A: b\nC: d\r\n\r\nbody\rline\r\n\nend";
        let want = b"A: b\r\nC: d\r\n\r\nbody\r\nline\r\n\r\nend\r\n".to_vec();
        for at in 0..=input.len() {
            assert_eq!(canon_split(input, at), want, "split at {at}");
        }
    }

    #[test]
    fn canonical_content_is_unchanged() {
        let input = b"Subject: x\r\n\r\nhello\r\n";
        for at in 0..=input.len() {
            assert_eq!(canon_split(input, at), input.to_vec());
        }
        assert_eq!(canon_split(b"", 0), b"".to_vec());
        assert_eq!(canon_split(b"x\r", 2), b"x\r\n".to_vec());
    }

    fn top(msg: &[u8], n: u32, split: usize) -> Vec<u8> {
        let mut t = TopCutter::new(n);
        let mut out = Vec::new();
        for part in [&msg[..split], &msg[split..]] {
            let k = t.take(part);
            out.extend_from_slice(&part[..k]);
        }
        out
    }

    #[test]
    fn top_cuts_after_header_and_n_lines() {
        let msg = b"A: 1\r\nB: 2\r\n\r\nl1\r\n\r\nl3\r\nl4\r\n";
        for split in 0..=msg.len() {
            assert_eq!(top(msg, 0, split), b"A: 1\r\nB: 2\r\n\r\n".to_vec());
            assert_eq!(
                top(msg, 2, split),
                b"A: 1\r\nB: 2\r\n\r\nl1\r\n\r\n".to_vec()
            );
            assert_eq!(top(msg, 99, split), msg.to_vec());
        }
    }

    #[test]
    fn top_of_message_without_body() {
        assert_eq!(top(b"A: 1\r\n", 3, 2), b"A: 1\r\n".to_vec());
        assert_eq!(top(b"\r\nbody\r\n", 0, 1), b"\r\n".to_vec());
    }
}

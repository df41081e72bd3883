//! The SMTP DATA receiver, pure and streaming (RFC 5321 §4.1.1.4, §4.5.2, §2.3.8), also
//! judging the content of BDAT chunks (RFC 3030).
//!
//! Invariants: the data ends only at CRLF "." CRLF (the first line counts as following a
//! CRLF); a bare CR or bare LF never ends a line for this purpose and makes the message
//! refused once the data ends, so no byte sequence can smuggle a second message out of one
//! DATA (CVE-2023-51764 class). Leading dots are unstuffed. Content past the size limit is
//! scanned but not kept. Received headers are counted for loop detection. For BDAT the
//! length says where the data ends and nothing is unstuffed, but the same rules judge the
//! content — a bare CR or LF in a chunk refuses the message too, so nothing that a later
//! hop could read as a line end travels on.

/// How a completed DATA section is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOutcome {
    Ok { size: u64 },
    BareLineEnding,
    TooBig,
    LineTooLong,
    TooManyHops(u32),
}

/// Longest text line, CRLF excluded (RFC 5321 §4.5.3.1.6: 1000 with CRLF).
pub const MAX_TEXT_LINE: usize = 998;
/// More Received headers than this is taken for a mail loop.
pub const MAX_RECEIVED: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// At the start of a line (after CRLF, or at the start of the data).
    LineStart,
    /// A "." at the start of a line.
    Dot,
    /// ".\r" at the start of a line.
    DotCr,
    /// Inside a line.
    Text,
    /// A CR inside (or ending) a line.
    Cr,
}

#[derive(Debug)]
pub struct DataReceiver {
    pos: Pos,
    max_size: u64,
    size: u64,
    line_len: usize,
    bare: bool,
    too_big: bool,
    long_line: bool,
    in_header: bool,
    header_prefix: Vec<u8>,
    received: u32,
    /// DATA (dot-stuffed, ended by CRLF.CRLF); false for BDAT chunks.
    stuffed: bool,
}

impl DataReceiver {
    pub fn new(max_size: u64) -> Self {
        DataReceiver {
            pos: Pos::LineStart,
            max_size,
            size: 0,
            line_len: 0,
            bare: false,
            too_big: false,
            long_line: false,
            in_header: true,
            header_prefix: Vec::with_capacity(9),
            received: 0,
            stuffed: true,
        }
    }

    /// A receiver for the content of BDAT chunks: no dot-stuffing and no end marker (`feed`
    /// takes all of its input); `end_chunks` after the LAST chunk.
    pub fn for_chunks(max_size: u64) -> Self {
        DataReceiver {
            stuffed: false,
            ..DataReceiver::new(max_size)
        }
    }

    /// After the LAST chunk: content ending in a lone CR ends with a bare line ending.
    pub fn end_chunks(&mut self) {
        if self.pos == Pos::Cr {
            self.bare = true;
        }
    }

    /// Consumes input, appending the unstuffed content to `out`. Returns how many bytes of
    /// `input` belonged to the data when its end was found, or `None` when all of `input` was
    /// data and more is needed.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            if self.pos == Pos::Text {
                // Inside a line only CR and LF matter: take the text before them at once.
                let rest = &input[i..];
                let run = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                if run > 0 {
                    self.text(&rest[..run], out);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            match (self.pos, b) {
                (Pos::LineStart, b'.') if self.stuffed => self.pos = Pos::Dot,
                (Pos::Dot, b'\r') => self.pos = Pos::DotCr,
                (Pos::DotCr, b'\n') => return Some(i),
                (Pos::DotCr, _) => {
                    // ".\r" then not LF: a bare CR inside a dot-stuffed line.
                    self.bare = true;
                    self.pos = Pos::Text;
                    self.push(b'\r', out);
                    self.byte(b, out);
                }
                (Pos::Dot, _) => {
                    // A stuffed dot: drop it, the rest of the line is text.
                    self.pos = Pos::Text;
                    self.byte(b, out);
                }
                (Pos::Cr, b'\n') => {
                    self.push(b'\n', out);
                    self.end_line();
                }
                (Pos::Cr, _) => {
                    self.bare = true;
                    self.pos = Pos::Text;
                    self.byte(b, out);
                }
                (_, _) => self.byte(b, out),
            }
        }
        None
    }

    /// A data byte in `Text` or `LineStart` position (a CR starts a line ending).
    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            b'\r' => {
                self.pos = Pos::Cr;
                self.push(b, out);
            }
            b'\n' => {
                // A bare LF: refused later, and never the start of a line for ".".
                self.bare = true;
                self.pos = Pos::Text;
                self.push(b, out);
            }
            _ => {
                self.pos = Pos::Text;
                self.line_len += 1;
                if self.line_len > MAX_TEXT_LINE {
                    self.long_line = true;
                }
                if self.in_header && self.header_prefix.len() < 9 {
                    self.header_prefix.push(b.to_ascii_lowercase());
                }
                self.push(b, out);
            }
        }
    }

    /// A run of text bytes inside a line (no CR or LF): what `byte` does for each, at once.
    fn text(&mut self, run: &[u8], out: &mut Vec<u8>) {
        self.line_len += run.len();
        if self.line_len > MAX_TEXT_LINE {
            self.long_line = true;
        }
        if self.in_header && self.header_prefix.len() < 9 {
            let take = (9 - self.header_prefix.len()).min(run.len());
            self.header_prefix
                .extend(run[..take].iter().map(u8::to_ascii_lowercase));
        }
        let room = self.max_size.saturating_sub(self.size);
        let keep = run.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        out.extend_from_slice(&run[..keep]);
        self.size += run.len() as u64;
        if self.size > self.max_size {
            self.too_big = true;
        }
    }

    fn end_line(&mut self) {
        if self.in_header {
            if self.line_len == 0 {
                self.in_header = false;
            } else if self.header_prefix == b"received:" {
                self.received += 1;
            }
            self.header_prefix.clear();
        }
        self.line_len = 0;
        self.pos = Pos::LineStart;
    }

    fn push(&mut self, b: u8, out: &mut Vec<u8>) {
        self.size += 1;
        if self.size > self.max_size {
            self.too_big = true;
        } else {
            out.push(b);
        }
    }

    /// The judgement once `feed` has found the end.
    pub fn outcome(&self) -> DataOutcome {
        if self.bare {
            DataOutcome::BareLineEnding
        } else if self.too_big {
            DataOutcome::TooBig
        } else if self.long_line {
            DataOutcome::LineTooLong
        } else if self.received > MAX_RECEIVED {
            DataOutcome::TooManyHops(self.received)
        } else {
            DataOutcome::Ok { size: self.size }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], split: usize) -> (Option<usize>, Vec<u8>, DataOutcome) {
        let mut r = DataReceiver::new(1 << 20);
        let mut out = Vec::new();
        let first = r.feed(&input[..split], &mut out);
        let end = match first {
            Some(n) => Some(n),
            None => r.feed(&input[split..], &mut out).map(|n| n + split),
        };
        (end, out, r.outcome())
    }

    #[test]
    fn ends_at_crlf_dot_crlf_and_unstuffs_at_every_split() {
        let input = b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n";
        for split in 0..=input.len() {
            let (end, out, outcome) = run(input, split);
            assert_eq!(end, Some(input.len() - 17), "split {split}");
            assert_eq!(out, b"Subject: x\r\n\r\n.dot\r\nbody\r\n".to_vec());
            assert_eq!(outcome, DataOutcome::Ok { size: 26 });
        }
        assert_eq!(run(b".\r\n", 1).0, Some(3), "an empty message");
    }

    #[test]
    fn smuggling_sequences_never_end_the_data() {
        for bad in [&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r.\r"] {
            let mut input = b"Subject: a\r\n\r\nfirst".to_vec();
            input.extend_from_slice(bad);
            input.extend_from_slice(b"MAIL FROM:<x@y>\r\nRCPT TO:<v@w>\r\nDATA\r\nsmuggled\r\n");
            let end_at = input.len();
            input.extend_from_slice(b".\r\nQUIT\r\n");
            for split in 0..=input.len() {
                let (end, _, outcome) = run(&input, split);
                assert_eq!(
                    end,
                    Some(end_at + 3),
                    "{bad:?} split {split}: only the real CRLF.CRLF ends"
                );
                assert_eq!(outcome, DataOutcome::BareLineEnding, "{bad:?}");
            }
        }
    }

    #[test]
    fn chunks_keep_dots_and_never_end_but_bare_line_endings_still_refuse() {
        let content = b"Subject: x\r\n\r\n.\r\n..dot\r\nMAIL FROM:<a@b>\r\n";
        for split in 0..=content.len() {
            let mut r = DataReceiver::for_chunks(1 << 20);
            let mut out = Vec::new();
            assert_eq!(r.feed(&content[..split], &mut out), None);
            assert_eq!(r.feed(&content[split..], &mut out), None);
            r.end_chunks();
            assert_eq!(out, content.to_vec(), "kept as sent");
            assert_eq!(r.outcome(), DataOutcome::Ok { size: 41 });
        }
        for bad in [&b"a\nb\r\n"[..], b"a\rb\r\n", b"\n.\n", b"end\r"] {
            let mut r = DataReceiver::for_chunks(1 << 20);
            assert_eq!(r.feed(bad, &mut Vec::new()), None);
            r.end_chunks();
            assert_eq!(r.outcome(), DataOutcome::BareLineEnding, "{bad:?}");
        }
    }

    #[test]
    fn limits_size_line_length_and_hops() {
        let mut r = DataReceiver::new(10);
        let mut out = Vec::new();
        assert!(r.feed(b"0123456789abcdef\r\n.\r\n", &mut out).is_some());
        assert_eq!(r.outcome(), DataOutcome::TooBig);
        assert_eq!(out.len(), 10, "nothing kept past the limit");

        let long = [vec![b'x'; 999], b"\r\n.\r\n".to_vec()].concat();
        assert_eq!(run(&long, 500).2, DataOutcome::LineTooLong);

        let mut hops = b"Received: from a\r\n".repeat(51);
        hops.extend_from_slice(b"\r\nReceived: in the body\r\n.\r\n");
        assert_eq!(run(&hops, 7).2, DataOutcome::TooManyHops(51));
        let mut fifty = b"RECEIVED: x\r\n".repeat(50);
        fifty.extend_from_slice(b".\r\n");
        assert_eq!(run(&fifty, 3).2, DataOutcome::Ok { size: 650 });
    }

    /// The receiver one byte at a time with no run of text taken at once: the oracle for
    /// `feed`'s fast path.
    fn feed_bytewise(r: &mut DataReceiver, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        for (i, &b) in input.iter().enumerate() {
            match (r.pos, b) {
                (Pos::LineStart, b'.') => r.pos = Pos::Dot,
                (Pos::Dot, b'\r') => r.pos = Pos::DotCr,
                (Pos::DotCr, b'\n') => return Some(i + 1),
                (Pos::DotCr, _) => {
                    r.bare = true;
                    r.pos = Pos::Text;
                    r.push(b'\r', out);
                    r.byte(b, out);
                }
                (Pos::Dot, _) => {
                    r.pos = Pos::Text;
                    r.byte(b, out);
                }
                (Pos::Cr, b'\n') => {
                    r.push(b'\n', out);
                    r.end_line();
                }
                (Pos::Cr, _) => {
                    r.bare = true;
                    r.pos = Pos::Text;
                    r.byte(b, out);
                }
                (_, _) => r.byte(b, out),
            }
        }
        None
    }

    #[test]
    fn runs_of_text_are_taken_as_byte_by_byte() {
        // Inputs from pieces that matter (dots, CR, LF, header names, long runs), split at
        // pseudo-random points, under a size limit that cuts some of them.
        let pieces: [&[u8]; 9] = [
            b".",
            b"\r",
            b"\n",
            b"\r\n",
            b"Received: x",
            b"Subject: y",
            b"abc",
            b"..",
            &[b'z'; 700],
        ];
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        for case in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..next() % 40 {
                input.extend_from_slice(pieces[(next() % 9) as usize]);
            }
            input.extend_from_slice(b"\r\n.\r\ntail");
            let max = [1 << 20, 50, 1000][case % 3];
            let (mut fast, mut slow) = (DataReceiver::new(max), DataReceiver::new(max));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let split = (next() as usize) % (input.len() + 1);
            let end_fast = match fast.feed(&input[..split], &mut a) {
                Some(n) => Some(n),
                None => fast.feed(&input[split..], &mut a).map(|n| n + split),
            };
            let end_slow = feed_bytewise(&mut slow, &input, &mut b);
            assert_eq!(end_fast, end_slow, "case {case}");
            assert_eq!(a, b, "case {case}");
            assert_eq!(fast.outcome(), slow.outcome(), "case {case}");
            assert_eq!(
                fast.received, slow.received,
                "case {case}: Received counted alike"
            );
        }
    }
}

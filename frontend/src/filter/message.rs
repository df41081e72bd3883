//! The message as filters see it, pure: the envelope in milter form, the header fields split
//! out of the spool's first blocks, the body as pieces of the spool's blocks (no copy), and
//! the modifications filters ask for applied to all of it.
//!
//! Invariants: a message no filter changed is handed over as the very blocks it arrived in;
//! header values go to filters with LF line ends and no leading space (as libmilter expects)
//! and come back to CRLF; a changed message is rebuilt once, after every filter has run.
use super::codec::{Reply, BODY_CHUNK};
use bytes::Bytes;

/// The envelope and connection, as milter commands and macros carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub client_name: String,
    pub client_address: String,
    pub client_port: u16,
    /// '4', '6' or 'U'.
    pub family: u8,
    pub helo: String,
    /// `<sender>` and its ESMTP parameters.
    pub mail: Vec<String>,
    /// Each `<recipient>` with its ESMTP parameters.
    pub rcpts: Vec<Vec<String>>,
    /// Macros per stage (the stage's command byte).
    pub macros: Vec<(u8, Vec<(String, String)>)>,
}

/// The header fields, in order: (name, value with LF line ends, no leading space).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub fields: Vec<(String, String)>,
}

/// The message split for filtering: its header fields, and where its body starts.
pub struct Split {
    pub headers: Headers,
    /// Octets of the header section, including the empty line that ends it.
    pub header_len: usize,
}

/// Splits the header section off the start of `blocks`; a message without an empty line is
/// all header (no body).
pub fn split(blocks: &[Bytes]) -> Split {
    let mut head = Vec::new();
    let mut end = None;
    for b in blocks {
        let before = head.len();
        head.extend_from_slice(b);
        let from = before.saturating_sub(3);
        if let Some(i) = find(&head[from..], b"\r\n\r\n") {
            end = Some(from + i + 4);
            break;
        }
        if head.len() > 1 << 20 {
            break;
        }
    }
    let header_len = end.unwrap_or(head.len());
    head.truncate(header_len);
    Split {
        headers: parse_fields(&head),
        header_len,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Fields of a header section (CRLF lines; continuation lines join their field).
fn parse_fields(head: &[u8]) -> Headers {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(line);
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) => {
                let value = value.strip_prefix(' ').unwrap_or(value);
                fields.push((name.to_string(), value.to_string()));
            }
            None => fields.push((line.to_string(), String::new())),
        }
    }
    Headers { fields }
}

/// The body as pieces of at most `BODY_CHUNK` octets, borrowed from the blocks.
pub fn body_pieces(blocks: &[Bytes], header_len: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut skip = header_len;
    for b in blocks {
        let rest = if skip >= b.len() {
            skip -= b.len();
            continue;
        } else {
            let r = &b[skip..];
            skip = 0;
            r
        };
        pieces.extend(rest.chunks(BODY_CHUNK));
    }
    pieces
}

/// What the filters changed, gathered over all of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub headers: Option<Headers>,
    pub body: Option<Vec<u8>>,
    pub added_rcpts: Vec<String>,
    pub deleted_rcpts: Vec<String>,
    pub new_sender: Option<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// Applies one filter's modifications (in the order given) on top of what earlier filters
    /// changed; `original` is the message's own header fields.
    pub fn apply(&mut self, original: &Headers, mods: Vec<Reply>) {
        let mut replaced_body: Option<Vec<u8>> = None;
        for m in mods {
            match m {
                Reply::AddHeader { name, value } => {
                    self.headers_mut(original).fields.push((name, value));
                }
                Reply::InsertHeader { index, name, value } => {
                    let f = &mut self.headers_mut(original).fields;
                    let at = (index as usize).min(f.len());
                    f.insert(at, (name, value));
                }
                Reply::ChangeHeader { index, name, value } => {
                    change(&mut self.headers_mut(original).fields, index, name, value);
                }
                Reply::ReplaceBody(chunk) => {
                    replaced_body.get_or_insert_with(Vec::new).extend(chunk);
                }
                Reply::AddRcpt { rcpt, .. } => self.added_rcpts.push(unbracket(&rcpt)),
                Reply::DeleteRcpt(rcpt) => self.deleted_rcpts.push(unbracket(&rcpt)),
                Reply::ChangeFrom { from, .. } => self.new_sender = Some(unbracket(&from)),
                _ => {}
            }
        }
        if let Some(body) = replaced_body {
            self.body = Some(body);
        }
    }

    fn headers_mut(&mut self, original: &Headers) -> &mut Headers {
        self.headers.get_or_insert_with(|| original.clone())
    }
}

/// smfi_chgheader: the `index`-th field called `name` (from 1, any case) gets `value`; an
/// empty value deletes it; a field that is not there is added.
fn change(fields: &mut Vec<(String, String)>, index: u32, name: String, value: String) {
    let nth = fields
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| n.eq_ignore_ascii_case(&name))
        .nth(index.max(1) as usize - 1)
        .map(|(i, _)| i);
    match (nth, value.is_empty()) {
        (Some(i), true) => {
            fields.remove(i);
        }
        (Some(i), false) => fields[i].1 = value,
        (None, false) => fields.push((name, value)),
        (None, true) => {}
    }
}

fn unbracket(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// The message rebuilt with its changed header section and/or body (CRLF line ends).
pub fn rebuild(blocks: &[Bytes], split: &Split, changes: &Changes) -> Vec<Bytes> {
    let headers = changes.headers.as_ref().unwrap_or(&split.headers);
    let mut head = Vec::new();
    for (name, value) in &headers.fields {
        let value = value.replace("\r\n", "\n").replace('\n', "\r\n");
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut out = vec![Bytes::from(head)];
    match &changes.body {
        Some(body) => {
            let mut b = to_crlf(body);
            if !b.is_empty() && !b.ends_with(b"\r\n") {
                b.extend_from_slice(b"\r\n");
            }
            out.push(Bytes::from(b));
        }
        None => out.extend(body_blocks(blocks, split.header_len)),
    }
    out
}

/// The body as slices of the blocks it is in (no copy).
fn body_blocks(blocks: &[Bytes], header_len: usize) -> Vec<Bytes> {
    let mut skip = header_len;
    let mut out = Vec::new();
    for b in blocks {
        if skip >= b.len() {
            skip -= b.len();
            continue;
        }
        out.push(b.slice(skip..));
        skip = 0;
    }
    out
}

/// Bare LF in a body a filter gave becomes CRLF (stored content is canonical CRLF).
fn to_crlf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32);
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str, at: usize) -> Vec<Bytes> {
        let b = text.as_bytes();
        vec![
            Bytes::copy_from_slice(&b[..at]),
            Bytes::copy_from_slice(&b[at..]),
        ]
    }

    const MSG: &str = "From: a@b.example\r\nSubject: hi\r\n\tthere\r\nX-A: 1\r\n\r\nbody line\r\n";

    #[test]
    fn headers_and_body_split_across_blocks() {
        for at in 0..MSG.len() {
            let b = blocks(MSG, at);
            let s = split(&b);
            assert_eq!(
                s.headers.fields,
                [
                    ("From".to_string(), "a@b.example".to_string()),
                    ("Subject".into(), "hi\n\tthere".into()),
                    ("X-A".into(), "1".into())
                ],
                "split at {at}"
            );
            assert_eq!(body_pieces(&b, s.header_len).concat(), b"body line\r\n");
        }
    }

    #[test]
    fn modifications_rebuild_the_message() {
        let b = blocks(MSG, 10);
        let s = split(&b);
        let mut c = Changes::default();
        c.apply(
            &s.headers,
            vec![
                Reply::AddHeader {
                    name: "X-Spam".into(),
                    value: "yes\n\tscore 9".into(),
                },
                Reply::InsertHeader {
                    index: 0,
                    name: "X-Top".into(),
                    value: "1".into(),
                },
                Reply::ChangeHeader {
                    index: 1,
                    name: "x-a".into(),
                    value: String::new(),
                },
                Reply::ChangeHeader {
                    index: 1,
                    name: "Subject".into(),
                    value: "[SPAM] hi".into(),
                },
                Reply::ReplaceBody(b"new\nbody".to_vec()),
                Reply::AddRcpt {
                    rcpt: "<c@d.example>".into(),
                    args: String::new(),
                },
                Reply::ChangeFrom {
                    from: "<e@f.example>".into(),
                    args: String::new(),
                },
            ],
        );
        let out = rebuild(&b, &s, &c).concat();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "X-Top: 1\r\nFrom: a@b.example\r\nSubject: [SPAM] hi\r\nX-Spam: yes\r\n\tscore 9\r\n\r\nnew\r\nbody\r\n"
        );
        assert_eq!(c.added_rcpts, ["c@d.example"]);
        assert_eq!(c.new_sender.as_deref(), Some("e@f.example"));
        let untouched = rebuild(&b, &s, &Changes::default()).concat();
        assert_eq!(untouched, MSG.as_bytes());
    }
}

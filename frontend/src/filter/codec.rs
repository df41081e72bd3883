//! The milter wire format (Sendmail's milter protocol, version 6, as Postfix's `milter8`
//! speaks it), pure: commands the MTA sends encoded to bytes, and the filter's replies decoded
//! from bytes with no I/O — `Decoded::Incomplete` is a normal result, the caller reads more.
//!
//! A packet is a 32-bit big-endian length (of what follows), a command or reply byte, and
//! its data; strings are NUL-terminated. Invariants: a reply longer than `MAX_REPLY` is an
//! error before any of it is buffered beyond the header (a filter cannot make us hold 4 GiB);
//! every malformed reply is an error, never a panic; decoding consumes exactly one packet.

/// The protocol version we speak.
pub const VERSION: u32 = 6;
/// The longest reply packet taken (a replaced body comes in chunks of at most 64 KiB, or 1 MiB
/// when negotiated; headers are far smaller).
pub const MAX_REPLY: usize = 1 << 20;
/// The most body octets one BODY command carries (libmilter's MILTER_CHUNK_SIZE).
pub const BODY_CHUNK: usize = 65_535;

/// Actions a filter may take at end of message (SMFIF_*), offered in option negotiation.
pub mod actions {
    pub const ADD_HEADERS: u32 = 0x01;
    pub const CHANGE_BODY: u32 = 0x02;
    pub const ADD_RCPT: u32 = 0x04;
    pub const DELETE_RCPT: u32 = 0x08;
    pub const CHANGE_HEADERS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
    pub const CHANGE_FROM: u32 = 0x40;
    pub const ADD_RCPT_PARAMS: u32 = 0x80;
    pub const SET_SYMBOL_LIST: u32 = 0x100;
    /// Everything we can apply.
    pub const ALL: u32 = 0x1ff;
}

/// Protocol steps a filter may skip or not answer (SMFIP_*), offered in option negotiation.
pub mod protocol {
    pub const NO_CONNECT: u32 = 0x01;
    pub const NO_HELO: u32 = 0x02;
    pub const NO_MAIL: u32 = 0x04;
    pub const NO_RCPT: u32 = 0x08;
    pub const NO_BODY: u32 = 0x10;
    pub const NO_HEADERS: u32 = 0x20;
    pub const NO_EOH: u32 = 0x40;
    pub const NO_REPLY_HEADER: u32 = 0x80;
    pub const NO_UNKNOWN: u32 = 0x100;
    pub const NO_DATA: u32 = 0x200;
    pub const SKIP: u32 = 0x400;
    pub const RCPT_REJECTED: u32 = 0x800;
    pub const NO_REPLY_CONNECT: u32 = 0x1000;
    pub const NO_REPLY_HELO: u32 = 0x2000;
    pub const NO_REPLY_MAIL: u32 = 0x4000;
    pub const NO_REPLY_RCPT: u32 = 0x8000;
    pub const NO_REPLY_DATA: u32 = 0x10000;
    pub const NO_REPLY_UNKNOWN: u32 = 0x20000;
    pub const NO_REPLY_EOH: u32 = 0x40000;
    pub const NO_REPLY_BODY: u32 = 0x80000;
    pub const HEADER_LEADING_SPACE: u32 = 0x100000;
    /// Every step flag we honour (the filter may set any of these). Not
    /// HEADER_LEADING_SPACE: header values go both ways without the space after the colon,
    /// which the MTA writes (as libmilter's default).
    pub const ALL: u32 = 0x0fffff;
}

/// A command from the MTA to the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    OptionNegotiation {
        actions: u32,
        protocol: u32,
    },
    /// Macros for the step named by `stage` (the step's command byte).
    Macros {
        stage: u8,
        pairs: &'a [(String, String)],
    },
    /// Host name, address family ('4', '6' or 'U' unknown), port and address.
    Connect {
        host: &'a str,
        family: u8,
        port: u16,
        address: &'a str,
    },
    Helo(&'a str),
    /// The sender (in angle brackets) and its ESMTP parameters.
    Mail(&'a [String]),
    /// A recipient (in angle brackets) and its ESMTP parameters.
    Rcpt(&'a [String]),
    Data,
    Header {
        name: &'a str,
        value: &'a str,
    },
    EndOfHeaders,
    Body(&'a [u8]),
    EndOfMessage,
    Abort,
    Quit,
}

impl Command<'_> {
    /// The command's byte: also the stage a Macros command names.
    pub fn code(&self) -> u8 {
        match self {
            Command::OptionNegotiation { .. } => b'O',
            Command::Macros { .. } => b'D',
            Command::Connect { .. } => b'C',
            Command::Helo(_) => b'H',
            Command::Mail(_) => b'M',
            Command::Rcpt(_) => b'R',
            Command::Data => b'T',
            Command::Header { .. } => b'L',
            Command::EndOfHeaders => b'N',
            Command::Body(_) => b'B',
            Command::EndOfMessage => b'E',
            Command::Abort => b'A',
            Command::Quit => b'Q',
        }
    }

    /// Appends the encoded packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0, self.code()]);
        match self {
            Command::OptionNegotiation { actions, protocol } => {
                for v in [VERSION, *actions, *protocol] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            Command::Macros { stage, pairs } => {
                out.push(*stage);
                for (name, value) in pairs.iter() {
                    cstr(out, name);
                    cstr(out, value);
                }
            }
            Command::Connect {
                host,
                family,
                port,
                address,
            } => {
                cstr(out, host);
                out.push(*family);
                if *family != b'U' {
                    out.extend_from_slice(&port.to_be_bytes());
                    cstr(out, address);
                }
            }
            Command::Helo(h) => cstr(out, h),
            Command::Mail(args) | Command::Rcpt(args) => args.iter().for_each(|a| cstr(out, a)),
            Command::Header { name, value } => {
                cstr(out, name);
                cstr(out, value);
            }
            Command::Body(chunk) => out.extend_from_slice(chunk),
            Command::Data
            | Command::EndOfHeaders
            | Command::EndOfMessage
            | Command::Abort
            | Command::Quit => {}
        }
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// A NUL-terminated string; a NUL inside is cut there (it could not be sent otherwise).
fn cstr(out: &mut Vec<u8>, s: &str) {
    let s = s.split('\0').next().unwrap_or_default();
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// A reply from the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Its answer to option negotiation: what it will do, and which steps it skips.
    Options {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    Continue,
    Accept,
    Reject,
    Tempfail,
    Discard,
    /// An SMTP reply of its own: code, and the whole text (`550 5.7.1 text`).
    ReplyCode(String),
    /// Still working: wait (the end-of-message timeout starts again).
    Progress,
    Quarantine(String),
    /// No more body, please (SMFIR_SKIP).
    Skip,
    /// End-of-message modifications.
    AddHeader {
        name: String,
        value: String,
    },
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Changes the `index`-th (from 1) field called `name`; an empty value deletes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    ReplaceBody(Vec<u8>),
    AddRcpt {
        rcpt: String,
        args: String,
    },
    DeleteRcpt(String),
    ChangeFrom {
        from: String,
        args: String,
    },
    /// The filter closes the connection: tempfail this and later messages.
    ConnectionFailed,
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("milter reply of {0} octets is longer than allowed")]
    TooLong(usize),
    #[error("milter reply of length zero")]
    Empty,
    #[error("unknown milter reply {0:?}")]
    Unknown(char),
    #[error("malformed milter reply {0:?}")]
    Malformed(char),
}

/// One decoded reply and how many octets it took, or the need for more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Reply(Reply, usize),
    Incomplete,
}

/// Decodes the reply at the start of `buf`.
pub fn decode(buf: &[u8]) -> Result<Decoded, DecodeError> {
    let Some(header) = buf.get(..4) else {
        return Ok(Decoded::Incomplete);
    };
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    if len > MAX_REPLY {
        return Err(DecodeError::TooLong(len));
    }
    let Some(packet) = buf.get(4..4 + len) else {
        return Ok(Decoded::Incomplete);
    };
    let (code, data) = (packet[0], &packet[1..]);
    Ok(Decoded::Reply(reply(code, data)?, 4 + len))
}

fn reply(code: u8, data: &[u8]) -> Result<Reply, DecodeError> {
    let bad = || DecodeError::Malformed(code as char);
    let mut strings = Strings(data);
    Ok(match code {
        b'O' => {
            let word = |i: usize| {
                data.get(i * 4..i * 4 + 4)
                    .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            };
            Reply::Options {
                version: word(0).ok_or_else(bad)?,
                actions: word(1).ok_or_else(bad)?,
                protocol: word(2).ok_or_else(bad)?,
            }
        }
        b'c' => Reply::Continue,
        b'a' => Reply::Accept,
        b'r' => Reply::Reject,
        b't' => Reply::Tempfail,
        b'd' => Reply::Discard,
        b'p' => Reply::Progress,
        b'k' => Reply::Skip,
        b'f' => Reply::ConnectionFailed,
        b's' => Reply::Shutdown,
        b'y' => Reply::ReplyCode(strings.next().ok_or_else(bad)?),
        b'q' => Reply::Quarantine(strings.next().unwrap_or_default()),
        b'h' => Reply::AddHeader {
            name: strings.next().ok_or_else(bad)?,
            value: strings.next().ok_or_else(bad)?,
        },
        b'i' | b'm' => {
            let index = data.get(..4).ok_or_else(bad)?;
            let index = u32::from_be_bytes([index[0], index[1], index[2], index[3]]);
            let mut rest = Strings(&data[4..]);
            let name = rest.next().ok_or_else(bad)?;
            let value = rest.next().ok_or_else(bad)?;
            match code {
                b'i' => Reply::InsertHeader { index, name, value },
                _ => Reply::ChangeHeader { index, name, value },
            }
        }
        b'b' => Reply::ReplaceBody(data.to_vec()),
        b'+' | b'2' => Reply::AddRcpt {
            rcpt: strings.next().ok_or_else(bad)?,
            args: strings.next().unwrap_or_default(),
        },
        b'-' => Reply::DeleteRcpt(strings.next().ok_or_else(bad)?),
        b'e' => Reply::ChangeFrom {
            from: strings.next().ok_or_else(bad)?,
            args: strings.next().unwrap_or_default(),
        },
        other => return Err(DecodeError::Unknown(other as char)),
    })
}

/// NUL-terminated strings in turn; an unterminated last one is taken as it is.
struct Strings<'a>(&'a [u8]);

impl Iterator for Strings<'_> {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = self.0.get(end + 1..).unwrap_or_default();
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u8, data: &[u8]) -> Vec<u8> {
        let mut p = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        p.push(code);
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn commands_are_framed_with_their_length() {
        let mut out = Vec::new();
        Command::Helo("mx.example.net").encode(&mut out);
        assert_eq!(out, packet(b'H', b"mx.example.net\0"));
        out.clear();
        let args = ["<a@b.example>".to_string(), "SIZE=10".to_string()];
        Command::Mail(&args).encode(&mut out);
        assert_eq!(out, packet(b'M', b"<a@b.example>\0SIZE=10\0"));
        out.clear();
        Command::Connect {
            host: "client.example",
            family: b'4',
            port: 2525,
            address: "192.0.2.1",
        }
        .encode(&mut out);
        assert_eq!(out, packet(b'C', b"client.example\x004\x09\xdd192.0.2.1\0"));
        out.clear();
        Command::OptionNegotiation {
            actions: actions::ALL,
            protocol: 0,
        }
        .encode(&mut out);
        assert_eq!(out, packet(b'O', &[0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0, 0, 0]));
        out.clear();
        let pairs = [("i".to_string(), "ABC".to_string())];
        Command::Macros {
            stage: b'E',
            pairs: &pairs,
        }
        .encode(&mut out);
        assert_eq!(out, packet(b'D', b"Ei\0ABC\0"));
    }

    #[test]
    fn replies_decode_split_at_every_byte() {
        let mut stream = Vec::new();
        stream.extend(packet(b'O', &[0, 0, 0, 6, 0, 0, 0, 0x21, 0, 0, 0, 0x7f]));
        stream.extend(packet(b'h', b"X-Spam\0yes\0"));
        stream.extend(packet(b'm', b"\0\0\0\x01Subject\0\0"));
        stream.extend(packet(b'y', b"554 5.7.1 Virus found\0"));
        stream.extend(packet(b'c', b""));
        let want = [
            Reply::Options {
                version: 6,
                actions: 0x21,
                protocol: 0x7f,
            },
            Reply::AddHeader {
                name: "X-Spam".into(),
                value: "yes".into(),
            },
            Reply::ChangeHeader {
                index: 1,
                name: "Subject".into(),
                value: String::new(),
            },
            Reply::ReplyCode("554 5.7.1 Virus found".into()),
            Reply::Continue,
        ];
        for split in 0..stream.len() {
            let mut got = Vec::new();
            let mut buf = stream[..split].to_vec();
            let mut rest = &stream[split..];
            loop {
                match decode(&buf).unwrap() {
                    Decoded::Reply(r, used) => {
                        got.push(r);
                        buf.drain(..used);
                    }
                    Decoded::Incomplete if rest.is_empty() => break,
                    Decoded::Incomplete => {
                        buf.push(rest[0]);
                        rest = &rest[1..];
                    }
                }
            }
            assert_eq!(got, want, "split at {split}");
        }
    }

    #[test]
    fn hostile_replies_are_errors() {
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::TooLong(u32::MAX as usize))
        );
        assert_eq!(decode(&[0, 0, 0, 0]), Err(DecodeError::Empty));
        assert_eq!(decode(&packet(b'Z', b"")), Err(DecodeError::Unknown('Z')));
        assert_eq!(
            decode(&packet(b'O', &[0, 0, 0, 6])),
            Err(DecodeError::Malformed('O'))
        );
        assert_eq!(
            decode(&packet(b'i', b"\0\0")),
            Err(DecodeError::Malformed('i'))
        );
        assert_eq!(decode(&packet(b'h', b"")), Err(DecodeError::Malformed('h')));
        assert_eq!(decode(&[0, 0]), Ok(Decoded::Incomplete));
    }
}

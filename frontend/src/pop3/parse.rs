//! POP3 input parsing, with no I/O: framing lines out of a byte buffer, then commands out
//! of lines. `Frame::Incomplete` is a normal result: read more and try again.
//!
//! RFC 1939 §3 (commands), RFC 2449 §4 (at most 255 octets per command line, CRLF
//! included), RFC 5034 (AUTH). A bare LF also ends a line, as most servers accept it.
use std::ops::Range;

/// What the next bytes of the input hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole line yet.
    Incomplete,
    /// A line: `line` is its content (without CR LF), `consumed` how many bytes to drop.
    Line { line: Range<usize>, consumed: usize },
    /// Part of a line longer than the limit: drop `consumed` bytes; `ended` once the long
    /// line's terminator has been seen (time to answer it).
    TooLong { consumed: usize, ended: bool },
}

/// Splits input into lines, remembering when it is skipping the rest of an over-long line.
#[derive(Debug, Default)]
pub struct Framer {
    discarding: bool,
}

impl Framer {
    pub fn next(&mut self, buf: &[u8], max_line: usize) -> Frame {
        let newline = buf.iter().position(|&b| b == b'\n');
        if self.discarding {
            return match newline {
                Some(i) => {
                    self.discarding = false;
                    Frame::TooLong {
                        consumed: i + 1,
                        ended: true,
                    }
                }
                None if buf.is_empty() => Frame::Incomplete,
                None => Frame::TooLong {
                    consumed: buf.len(),
                    ended: false,
                },
            };
        }
        match newline {
            Some(i) if i < max_line => {
                let end = if i > 0 && buf[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                Frame::Line {
                    line: 0..end,
                    consumed: i + 1,
                }
            }
            Some(i) => Frame::TooLong {
                consumed: i + 1,
                ended: true,
            },
            None if buf.len() >= max_line => {
                self.discarding = true;
                Frame::TooLong {
                    consumed: buf.len(),
                    ended: false,
                }
            }
            None => Frame::Incomplete,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    User(String),
    Pass(String),
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Stls,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Quit,
    Top(u32, u32),
    Uidl(Option<u32>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Unknown,
    Syntax(&'static str),
}

/// Parses one command line (without its CRLF).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let text = String::from_utf8_lossy(line);
    let (keyword, rest) = match text.split_once(' ') {
        Some((k, r)) => (k, r),
        None => (text.as_ref(), ""),
    };
    let mut args = rest.split_ascii_whitespace();
    let cmd = match keyword.to_ascii_uppercase().as_str() {
        "CAPA" => Command::Capa,
        "USER" => Command::User(one_word(rest, "USER needs a user name")?),
        // The password is the whole rest of the line: it may contain spaces.
        "PASS" if !rest.is_empty() => Command::Pass(rest.to_string()),
        "PASS" => return Err(ParseError::Syntax("PASS needs a password")),
        "AUTH" => Command::Auth {
            mechanism: args.next().map(str::to_ascii_uppercase),
            initial: args.next().map(str::to_string),
        },
        "STLS" => Command::Stls,
        "STAT" => Command::Stat,
        "LIST" => Command::List(optional_number(args.next())?),
        "RETR" => Command::Retr(number(args.next())?),
        "DELE" => Command::Dele(number(args.next())?),
        "NOOP" => Command::Noop,
        "RSET" => Command::Rset,
        "QUIT" => Command::Quit,
        "TOP" => {
            let msg = number(args.next())?;
            let lines =
                args.next()
                    .and_then(|a| a.parse::<u32>().ok())
                    .ok_or(ParseError::Syntax(
                        "TOP needs a message number and a line count",
                    ))?;
            Command::Top(msg, lines)
        }
        "UIDL" => Command::Uidl(optional_number(args.next())?),
        _ => return Err(ParseError::Unknown),
    };
    Ok(cmd)
}

fn one_word(rest: &str, why: &'static str) -> Result<String, ParseError> {
    let word = rest.trim();
    if word.is_empty() {
        return Err(ParseError::Syntax(why));
    }
    Ok(word.to_string())
}

fn number(arg: Option<&str>) -> Result<u32, ParseError> {
    arg.and_then(|a| a.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .ok_or(ParseError::Syntax("Invalid message number"))
}

fn optional_number(arg: Option<&str>) -> Result<Option<u32>, ParseError> {
    arg.map(|a| number(Some(a))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lines_and_partial_input() {
        let mut f = Framer::default();
        assert_eq!(f.next(b"STA", 255), Frame::Incomplete);
        assert_eq!(
            f.next(b"STAT\r\nNOOP", 255),
            Frame::Line {
                line: 0..4,
                consumed: 6
            }
        );
        assert_eq!(
            f.next(b"NOOP\n", 255),
            Frame::Line {
                line: 0..4,
                consumed: 5
            }
        );
        assert_eq!(
            f.next(b"\r\n", 255),
            Frame::Line {
                line: 0..0,
                consumed: 2
            }
        );
    }

    #[test]
    fn limits_line_length_including_crlf() {
        let mut f = Framer::default();
        let ok = [b"A".repeat(253), b"\r\n".to_vec()].concat();
        assert_eq!(
            f.next(&ok, 255),
            Frame::Line {
                line: 0..253,
                consumed: 255
            }
        );
        let long = [b"A".repeat(254), b"\r\n".to_vec()].concat();
        assert_eq!(
            f.next(&long, 255),
            Frame::TooLong {
                consumed: 256,
                ended: true
            }
        );
        let endless = b"B".repeat(300);
        assert_eq!(
            f.next(&endless, 255),
            Frame::TooLong {
                consumed: 300,
                ended: false
            }
        );
        assert_eq!(
            f.next(b"BBB", 255),
            Frame::TooLong {
                consumed: 3,
                ended: false
            }
        );
        assert_eq!(f.next(b"", 255), Frame::Incomplete);
        assert_eq!(
            f.next(b"B\r\nNOOP\r\n", 255),
            Frame::TooLong {
                consumed: 3,
                ended: true
            }
        );
        assert_eq!(
            f.next(b"NOOP\r\n", 255),
            Frame::Line {
                line: 0..4,
                consumed: 6
            }
        );
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse_command(b"stat"), Ok(Command::Stat));
        assert_eq!(
            parse_command(b"USER alice@example.com"),
            Ok(Command::User("alice@example.com".into()))
        );
        assert_eq!(
            parse_command(b"PASS two words"),
            Ok(Command::Pass("two words".into()))
        );
        assert_eq!(parse_command(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse_command(b"LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse_command(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse_command(b"AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse_command(b"RETR 0"),
            Err(ParseError::Syntax("Invalid message number"))
        );
        assert_eq!(
            parse_command(b"RETR x"),
            Err(ParseError::Syntax("Invalid message number"))
        );
        assert_eq!(
            parse_command(b"TOP 1"),
            Err(ParseError::Syntax(
                "TOP needs a message number and a line count"
            ))
        );
        assert_eq!(parse_command(b"APOP a b"), Err(ParseError::Unknown));
        assert_eq!(
            parse_command(b"PASS"),
            Err(ParseError::Syntax("PASS needs a password"))
        );
        assert_eq!(
            parse_command(b"USER "),
            Err(ParseError::Syntax("USER needs a user name"))
        );
    }
}

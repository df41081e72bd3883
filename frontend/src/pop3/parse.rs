//! POP3 input parsing, with no I/O: commands out of lines (framing is `crate::lines`).
//!
//! RFC 1939 §3 (commands), RFC 2449 §4 (at most 255 octets per command line, CRLF
//! included), RFC 5034 (AUTH). A bare LF also ends a line, as most servers accept it.

pub use crate::lines::{Frame, Framer};

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

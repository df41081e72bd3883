//! SMTP command parsing, with no I/O: `smtp-proto` reads the command line (RFC 5321 §4.1,
//! with the ESMTP parameters of RFC 1870 SIZE, 6152 8BITMIME, 3461 DSN, 6531 SMTPUTF8, 8689
//! REQUIRETLS);
//! this module turns its result into our own `Command`, so the session never sees the crate.
use smtp_proto::{Error as ProtoError, Request};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    pub size: u64,
    pub body: String,
    pub ret: String,
    pub envid: String,
    pub smtputf8: bool,
    /// RFC 8689: the message may only travel over verified TLS.
    pub requiretls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        from: String,
        params: MailParams,
    },
    Rcpt {
        to: String,
        notify: u32,
        orcpt: String,
    },
    Data,
    /// RFC 3030: the next `size` octets are message data; `last` ends it.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    StartTls,
    Auth {
        mechanism: Mechanism,
        initial: Option<String>,
    },
    Vrfy,
    Expn,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Unknown,
    BadSender,
    BadRecipient,
    /// The line is not UTF-8 (RFC 6531 §3.3 allows UTF-8 only): never replaced, refused.
    InvalidUtf8(Verb),
    Syntax(String),
}

/// Which command a line that could not be parsed was meant to be, for its refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Mail,
    Rcpt,
    Other,
}

impl Verb {
    fn of(line: &[u8]) -> Verb {
        let head = line.get(..4).unwrap_or(line);
        if head.eq_ignore_ascii_case(b"MAIL") {
            Verb::Mail
        } else if head.eq_ignore_ascii_case(b"RCPT") {
            Verb::Rcpt
        } else {
            Verb::Other
        }
    }
}

/// Parses one command line; `line` ends with LF (CR LF or a bare LF).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    // smtp-proto would replace invalid sequences with U+FFFD: data changed without a word.
    if std::str::from_utf8(line).is_err() {
        return Err(ParseError::InvalidUtf8(Verb::of(line)));
    }
    let request = Request::parse(&mut line.iter()).map_err(|e| match e {
        ProtoError::UnknownCommand => ParseError::Unknown,
        ProtoError::InvalidSenderAddress => ParseError::BadSender,
        ProtoError::InvalidRecipientAddress => ParseError::BadRecipient,
        ProtoError::SyntaxError { syntax } => ParseError::Syntax(format!("Syntax: {syntax}")),
        ProtoError::InvalidParameter { param } => {
            ParseError::Syntax(format!("Invalid parameter {param}"))
        }
        ProtoError::UnsupportedParameter { param } => {
            ParseError::Syntax(format!("Unsupported parameter {param}"))
        }
        other => ParseError::Syntax(format!("{other:?}")),
    })?;
    Ok(match request {
        Request::Ehlo { host } => Command::Ehlo(host.into_owned()),
        Request::Helo { host } => Command::Helo(host.into_owned()),
        Request::Lhlo { .. } => return Err(ParseError::Unknown),
        Request::Mail { from } => Command::Mail {
            params: MailParams {
                size: from.size as u64,
                body: body(from.flags).to_string(),
                ret: ret(from.flags).to_string(),
                envid: from.env_id.map(|e| e.into_owned()).unwrap_or_default(),
                smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
                requiretls: from.flags & smtp_proto::MAIL_REQUIRETLS != 0,
            },
            from: from.address.into_owned(),
        },
        Request::Rcpt { to } => Command::Rcpt {
            notify: notify(to.flags),
            orcpt: to.orcpt.map(|o| o.into_owned()).unwrap_or_default(),
            to: match to.address.into_owned() {
                // smtp-proto leaves the domain-less `<Postmaster>` (RFC 5321 §4.1.1.3) empty.
                empty if empty.is_empty() => bare_postmaster(line)?,
                to => to,
            },
        },
        Request::Data => Command::Data,
        Request::Bdat {
            chunk_size,
            is_last,
        } => Command::Bdat {
            size: chunk_size as u64,
            last: is_last,
        },
        Request::Rset => Command::Rset,
        Request::Noop { .. } => Command::Noop,
        Request::Quit => Command::Quit,
        Request::StartTls => Command::StartTls,
        Request::Auth {
            mechanism,
            initial_response,
        } => Command::Auth {
            mechanism: match mechanism {
                smtp_proto::AUTH_PLAIN => Mechanism::Plain,
                smtp_proto::AUTH_LOGIN => Mechanism::Login,
                _ => Mechanism::Other,
            },
            initial: (!initial_response.is_empty()).then(|| initial_response.into_owned()),
        },
        Request::Vrfy { .. } => Command::Vrfy,
        Request::Expn { .. } => Command::Expn,
        Request::Help { .. } => Command::Help,
        Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => {
            return Err(ParseError::Unknown)
        }
    })
}

/// "Postmaster" for `RCPT TO:<Postmaster>` in any case; any other empty path is refused.
fn bare_postmaster(line: &[u8]) -> Result<String, ParseError> {
    let path = line.get(8..).unwrap_or_default().trim_ascii_start();
    let named = path
        .get(..12)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"<postmaster>"));
    if named {
        Ok("Postmaster".to_string())
    } else {
        Err(ParseError::BadRecipient)
    }
}

fn body(flags: u64) -> &'static str {
    if flags & smtp_proto::MAIL_BODY_8BITMIME != 0 {
        "8BITMIME"
    } else if flags & smtp_proto::MAIL_BODY_7BIT != 0 {
        "7BIT"
    } else if flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
        "BINARYMIME"
    } else {
        ""
    }
}

fn ret(flags: u64) -> &'static str {
    if flags & smtp_proto::MAIL_RET_FULL != 0 {
        "FULL"
    } else if flags & smtp_proto::MAIL_RET_HDRS != 0 {
        "HDRS"
    } else {
        ""
    }
}

/// RFC 3461 NOTIFY as bits: 1 SUCCESS, 2 FAILURE, 4 DELAY, 8 NEVER (0: not given).
fn notify(flags: u64) -> u32 {
    [
        (smtp_proto::RCPT_NOTIFY_SUCCESS, 1),
        (smtp_proto::RCPT_NOTIFY_FAILURE, 2),
        (smtp_proto::RCPT_NOTIFY_DELAY, 4),
        (smtp_proto::RCPT_NOTIFY_NEVER, 8),
    ]
    .iter()
    .filter(|(f, _)| flags & f != 0)
    .map(|(_, b)| b)
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelope_commands_with_parameters() {
        assert_eq!(
            parse_command(
                b"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=xyz\r\n"
            ),
            Ok(Command::Mail {
                from: "a@b.example".into(),
                params: MailParams {
                    size: 1000,
                    body: "8BITMIME".into(),
                    ret: "HDRS".into(),
                    envid: "xyz".into(),
                    smtputf8: false,
                    requiretls: false,
                }
            })
        );
        let Ok(Command::Mail { params, .. }) =
            parse_command(b"MAIL FROM:<a@b.example> REQUIRETLS\r\n")
        else {
            panic!("MAIL with REQUIRETLS parses");
        };
        assert!(params.requiretls);
        assert_eq!(
            parse_command(
                b"RCPT TO:<c@d.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;c@d.example\r\n"
            ),
            Ok(Command::Rcpt {
                to: "c@d.example".into(),
                notify: 6,
                orcpt: "c@d.example".into()
            })
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<>\r\n"),
            Ok(Command::Mail {
                from: String::new(),
                params: MailParams::default()
            })
        );
        assert_eq!(
            parse_command(b"ehlo client.example\r\n"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(
            parse_command(b"AUTH PLAIN AGEAYg==\r\n"),
            Ok(Command::Auth {
                mechanism: Mechanism::Plain,
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse_command(b"AUTH LOGIN\r\n"),
            Ok(Command::Auth {
                mechanism: Mechanism::Login,
                initial: None
            })
        );
    }

    #[test]
    fn the_bare_postmaster_is_a_recipient() {
        for line in [
            &b"RCPT TO:<Postmaster>\r\n"[..],
            b"rcpt to: <POSTMASTER> NOTIFY=NEVER\r\n",
        ] {
            let got = parse_command(line);
            assert!(
                matches!(&got, Ok(Command::Rcpt { to, .. }) if to == "Postmaster"),
                "{got:?}"
            );
        }
        assert_eq!(
            parse_command(b"RCPT TO:<>\r\n"),
            Err(ParseError::BadRecipient)
        );
    }

    #[test]
    fn refuses_bad_commands() {
        assert_eq!(parse_command(b"FOO bar\r\n"), Err(ParseError::Unknown));
        assert_eq!(
            parse_command(b"RCPT TO:<a@b@c>\r\n"),
            Err(ParseError::BadRecipient)
        );
        assert!(matches!(
            parse_command(b"MAIL FROM:a@b\r\n"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn refuses_invalid_utf8_instead_of_replacing_it() {
        assert_eq!(
            parse_command(b"MAIL FROM:<\xff\xfe\x80@example.net> SMTPUTF8\r\n"),
            Err(ParseError::InvalidUtf8(Verb::Mail))
        );
        assert_eq!(
            parse_command(b"rcpt TO:<a\xc3@example.net>\r\n"),
            Err(ParseError::InvalidUtf8(Verb::Rcpt))
        );
        assert_eq!(
            parse_command(b"EHLO \xc0\xaf\r\n"),
            Err(ParseError::InvalidUtf8(Verb::Other))
        );
        // Valid UTF-8 is kept as it is (whether it is allowed is the session's business).
        assert!(matches!(
            parse_command("RCPT TO:<jürgen@local.test>\r\n".as_bytes()),
            Ok(Command::Rcpt { to, .. }) if to == "jürgen@local.test"
        ));
    }
}

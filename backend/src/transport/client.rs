//! The SMTP client of the outbound transport (RFC 5321, 3207 STARTTLS, 4954 AUTH, 2920
//! PIPELINING, 3461 DSN, 1870 SIZE, 6152 8BITMIME, 6531 SMTPUTF8, 3030 CHUNKING).
//!
//! Invariants: every line we send ends with CRLF and nothing else; content goes out
//! dot-stuffed after DATA, or as it is in one `BDAT n LAST` when the server offers CHUNKING; a server that sends anything after its "220" to STARTTLS and before the TLS
//! handshake is refused (response injection); AUTH is only sent over TLS.
use super::{Target, TlsMode};
use crate::envelope::Recipient;
use crate::tls_client::{self, Check, ClientStream};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One reply: code, enhanced status (if any) and text, lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
    /// The RFC 3463 status in the text, or one made from the code.
    pub fn status(&self) -> String {
        let first = self.text.split_whitespace().next().unwrap_or("");
        let parts: Vec<&str> = first.split('.').collect();
        if parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return first.to_string();
        }
        match self.code / 100 {
            2 => "2.0.0",
            4 => "4.0.0",
            _ => "5.0.0",
        }
        .to_string()
    }
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("timed out")]
    Timeout,
    #[error("the server answered {0:?}")]
    Rejected(Reply),
    #[error("TLS is required but the server does not offer STARTTLS")]
    NoStartTls,
    #[error("the server sent data before the TLS handshake (response injection)")]
    Injection,
    #[error("malformed reply: {0:?}")]
    Malformed(String),
}

impl ClientError {
    /// A failure that will not go away by trying again.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ClientError::Rejected(r) if r.is_permanent())
    }

    /// The server could not give the TLS a policy requires: no STARTTLS, or a handshake
    /// that failed (a certificate that does not verify).
    pub fn is_tls_policy(&self) -> bool {
        match self {
            ClientError::NoStartTls => true,
            ClientError::Io(e) => e
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
            _ => false,
        }
    }
}

/// One outgoing message to this server.
pub struct Outgoing<'a> {
    pub from: &'a str,
    pub recipients: &'a [Recipient],
    pub ret: &'a str,
    pub envid: &'a str,
    /// Header lines to send before the content (DKIM-Signature), CRLF-ended; may be empty.
    pub signature: &'a [u8],
    /// Canonical CRLF content, not yet dot-stuffed.
    pub content: &'a [u8],
    /// Send `BODY=8BITMIME` (the server offers it; the content has 8-bit octets or was
    /// declared so).
    pub eight_bit: bool,
    /// Send `SMTPUTF8` (the server offers it).
    pub smtputf8: bool,
    /// Send `REQUIRETLS` (RFC 8689; the worker sends such mail only to servers offering it).
    pub requiretls: bool,
}

/// The service extensions of the server that matter to what may be sent to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    /// RFC 3461 DSN: NOTIFY and ORCPT are passed on.
    pub dsn: bool,
    /// RFC 3030 CHUNKING: the content goes in a BDAT.
    pub chunking: bool,
    /// RFC 8689 REQUIRETLS.
    pub requiretls: bool,
}

#[derive(Debug)]
pub struct Outcome {
    /// One reply per recipient, in order.
    pub recipients: Vec<Reply>,
    /// The reply to the end of DATA, when DATA was sent.
    pub data: Option<Reply>,
}

pub struct SmtpClient {
    io: BufReader<ClientStream>,
    pub host: String,
    pipelining: bool,
    dsn: bool,
    size: bool,
    extensions: Extensions,
    timeout: Duration,
}

impl SmtpClient {
    /// Connects, greets, and sets up TLS and AUTH as the target asks.
    pub async fn connect(
        target: &Target,
        helo: &str,
        timeout: Duration,
    ) -> Result<SmtpClient, ClientError> {
        let tcp = match target.ip {
            Some(ip) => within(timeout, TcpStream::connect((ip, target.port))).await??,
            None => {
                let by_name = TcpStream::connect((target.host.as_str(), target.port));
                within(timeout, by_name).await??
            }
        };
        let _ = tcp.set_nodelay(true);
        let stream = if target.tls == TlsMode::Implicit {
            // Between mail servers: encryption without certificate checks (see tls_client).
            ClientStream::Tls(Box::new(
                tls_client::connect(tcp, &target.host, false).await?,
            ))
        } else {
            ClientStream::Plain(tcp)
        };
        let mut c = SmtpClient {
            io: BufReader::new(stream),
            host: target.host.clone(),
            pipelining: false,
            dsn: false,
            size: false,
            extensions: Extensions::default(),
            timeout,
        };
        c.expect(220).await?;
        let mut caps = c.ehlo(helo).await?;
        let wants_tls = matches!(
            target.tls,
            TlsMode::Opportunistic | TlsMode::Required | TlsMode::Verify | TlsMode::Dane
        );
        if wants_tls && !c.is_tls() {
            if caps.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                c.starttls(&target.host, &check(target)).await?;
                caps = c.ehlo(helo).await?;
            } else if target.tls.mandatory() {
                return Err(ClientError::NoStartTls);
            }
        }
        c.pipelining = has(&caps, "PIPELINING");
        c.dsn = has(&caps, "DSN");
        c.extensions = Extensions {
            eight_bit_mime: has(&caps, "8BITMIME"),
            smtputf8: has(&caps, "SMTPUTF8"),
            dsn: c.dsn,
            chunking: has(&caps, "CHUNKING"),
            requiretls: has(&caps, "REQUIRETLS"),
        };
        c.size = caps
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("SIZE"));
        if let Some((user, secret)) = &target.auth {
            if !c.is_tls() {
                return Err(ClientError::NoStartTls);
            }
            c.auth_plain(user, secret).await?;
        }
        Ok(c)
    }

    /// What the server offers of 8BITMIME and SMTPUTF8.
    pub fn extensions(&self) -> Extensions {
        self.extensions
    }

    fn is_tls(&self) -> bool {
        matches!(self.io.get_ref(), ClientStream::Tls(_))
    }

    async fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, ClientError> {
        self.send(&format!("EHLO {helo}\r\n")).await?;
        let reply = self.reply().await?;
        if reply.code != 250 {
            self.send(&format!("HELO {helo}\r\n")).await?;
            self.expect(250).await?;
            return Ok(Vec::new());
        }
        Ok(reply.text.lines().skip(1).map(str::to_string).collect())
    }

    /// STARTTLS, the certificate checked as `check` says.
    async fn starttls(&mut self, host: &str, check: &Check) -> Result<(), ClientError> {
        self.send("STARTTLS\r\n").await?;
        self.expect(220).await?;
        if !self.io.buffer().is_empty() {
            return Err(ClientError::Injection);
        }
        let old =
            std::mem::replace(&mut self.io, BufReader::new(ClientStream::Closed)).into_inner();
        self.io = BufReader::new(old.start_tls(host, check).await?);
        Ok(())
    }

    async fn auth_plain(&mut self, user: &str, secret: &str) -> Result<(), ClientError> {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{secret}"));
        self.send(&format!("AUTH PLAIN {token}\r\n")).await?;
        self.expect(235).await.map(|_| ())
    }

    /// Sends one message; per-recipient replies. Errors are about the whole connection.
    pub async fn send_message(&mut self, m: &Outgoing<'_>) -> Result<Outcome, ClientError> {
        let mut commands = vec![self.mail_command(m)];
        commands.extend(m.recipients.iter().map(|r| self.rcpt_command(r)));
        let chunking = self.extensions.chunking;
        if !chunking {
            commands.push("DATA\r\n".to_string());
        }
        let replies = self.exchange(&commands).await?;
        let mail_reply = replies[0].clone();
        if !mail_reply.is_positive() {
            return Err(ClientError::Rejected(mail_reply));
        }
        let rcpt_replies: Vec<Reply> = replies[1..=m.recipients.len()].to_vec();
        let any_accepted = rcpt_replies.iter().any(Reply::is_positive);
        if chunking {
            return self.send_chunk(m, rcpt_replies, any_accepted).await;
        }
        let data_reply = replies.last().cloned().expect("DATA reply");
        if data_reply.code != 354 || !any_accepted {
            if data_reply.code == 354 {
                // Every RCPT failed but DATA was accepted in the pipeline: end it empty.
                self.send(".\r\n").await?;
                self.reply().await?;
            }
            self.reset().await?;
            return Ok(Outcome {
                recipients: rcpt_replies,
                data: None,
            });
        }
        self.write_all(&dot_stuff(&[m.signature, m.content]))
            .await?;
        let end = self.reply().await?;
        Ok(Outcome {
            recipients: rcpt_replies,
            data: Some(end),
        })
    }

    /// MAIL with the parameters this server takes.
    fn mail_command(&self, m: &Outgoing<'_>) -> String {
        let mut mail = format!("MAIL FROM:<{}>", m.from);
        if self.size {
            mail.push_str(&format!(" SIZE={}", m.signature.len() + m.content.len()));
        }
        if m.eight_bit && self.extensions.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        if m.smtputf8 && self.extensions.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if m.requiretls {
            mail.push_str(" REQUIRETLS");
        }
        if self.dsn && !m.ret.is_empty() {
            mail.push_str(&format!(" RET={}", m.ret));
        }
        if self.dsn && !m.envid.is_empty() {
            mail.push_str(&format!(" ENVID={}", xtext(m.envid)));
        }
        mail + "\r\n"
    }

    /// RCPT with the DSN parameters when this server takes them.
    fn rcpt_command(&self, r: &Recipient) -> String {
        let mut rcpt = format!("RCPT TO:<{}>", r.address);
        if self.dsn && r.notify != 0 {
            rcpt.push_str(&format!(" NOTIFY={}", notify_words(r.notify)));
        }
        if self.dsn && !r.orcpt.is_empty() {
            rcpt.push_str(&format!(" ORCPT=rfc822;{}", xtext(&r.orcpt)));
        }
        rcpt + "\r\n"
    }

    /// Sends the commands (together when the server pipelines) and reads their replies; a
    /// refused MAIL ends it early without pipelining.
    async fn exchange(&mut self, commands: &[String]) -> Result<Vec<Reply>, ClientError> {
        let mut replies = Vec::with_capacity(commands.len());
        if self.pipelining {
            self.send(&commands.concat()).await?;
            for _ in 0..commands.len() {
                replies.push(self.reply().await?);
            }
            return Ok(replies);
        }
        for cmd in commands {
            self.send(cmd).await?;
            let r = self.reply().await?;
            let stop = !r.is_positive();
            replies.push(r);
            if stop && replies.len() == 1 {
                break; // MAIL refused: no RCPT
            }
        }
        Ok(replies)
    }

    /// The content as one `BDAT n LAST` (no dot-stuffing), once a recipient was accepted.
    async fn send_chunk(
        &mut self,
        m: &Outgoing<'_>,
        recipients: Vec<Reply>,
        any_accepted: bool,
    ) -> Result<Outcome, ClientError> {
        if !any_accepted {
            self.reset().await?;
            return Ok(Outcome {
                recipients,
                data: None,
            });
        }
        let size = m.signature.len() + m.content.len();
        self.send(&format!("BDAT {size} LAST\r\n")).await?;
        self.write_all(m.signature).await?;
        self.write_all(m.content).await?;
        let end = self.reply().await?;
        Ok(Outcome {
            recipients,
            data: Some(end),
        })
    }

    pub async fn reset(&mut self) -> Result<(), ClientError> {
        self.send("RSET\r\n").await?;
        self.expect(250).await.map(|_| ())
    }

    pub async fn quit(mut self) {
        if self.send("QUIT\r\n").await.is_ok() {
            let _ = self.reply().await;
        }
    }

    async fn send(&mut self, text: &str) -> Result<(), ClientError> {
        self.write_all(text.as_bytes()).await
    }

    async fn write_all(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let io = self.io.get_mut();
        within(self.timeout, async {
            io.write_all(data).await?;
            io.flush().await
        })
        .await??;
        Ok(())
    }

    async fn expect(&mut self, code: u16) -> Result<Reply, ClientError> {
        let r = self.reply().await?;
        if r.code != code {
            return Err(ClientError::Rejected(r));
        }
        Ok(r)
    }

    /// Reads one (possibly multi-line) reply.
    async fn reply(&mut self) -> Result<Reply, ClientError> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = within(self.timeout, self.io.read_line(&mut line)).await??;
            if n == 0 {
                return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.len() < 3 || !line.is_char_boundary(3) {
                return Err(ClientError::Malformed(line.to_string()));
            }
            let code: u16 = line[..3]
                .parse()
                .map_err(|_| ClientError::Malformed(line.to_string()))?;
            let (sep, rest) = (line.as_bytes().get(3).copied(), line.get(4..).unwrap_or(""));
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(rest);
            if sep != Some(b'-') {
                return Ok(Reply { code, text });
            }
            if text.len() > 64 * 1024 {
                return Err(ClientError::Malformed("reply too long".into()));
            }
        }
    }
}

fn has(caps: &[String], word: &str) -> bool {
    caps.iter().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    })
}

fn notify_words(bits: u32) -> String {
    if bits & 8 != 0 {
        return "NEVER".into();
    }
    let words: Vec<&str> = [(1, "SUCCESS"), (2, "FAILURE"), (4, "DELAY")]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, w)| *w)
        .collect();
    words.join(",")
}

/// RFC 3461 §4 xtext: "+" and characters outside "!".."~" (and "=") as +XX.
fn xtext(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
                (b as char).to_string()
            } else {
                format!("+{b:02X}")
            }
        })
        .collect()
}

/// Dot-stuffs canonical CRLF content given in parts (one after another) and appends the
/// terminator.
pub fn dot_stuff(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + len / 64 + 5);
    let mut at_line_start = true;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = T>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| ClientError::Timeout)
}

/// What is checked of `target`'s certificate: its TLSA records under DANE, the WebPKI under
/// `verify`, nothing otherwise (encryption only).
fn check(target: &Target) -> Check {
    match (target.tls, &target.tlsa) {
        (TlsMode::Dane, Some(records)) => Check::Dane(records.clone()),
        (TlsMode::Verify, _) => Check::WebPki,
        _ => Check::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_and_parameters() {
        assert_eq!(
            dot_stuff(&[b".a\r\nb\r\n..c\r\n"]),
            b"..a\r\nb\r\n...c\r\n.\r\n".to_vec()
        );
        assert_eq!(dot_stuff(&[b"x"]), b"x\r\n.\r\n".to_vec());
        assert_eq!(
            dot_stuff(&[b"H: 1\r\n", b".body\r\n"]),
            b"H: 1\r\n..body\r\n.\r\n".to_vec(),
            "the line start carries across parts"
        );
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(notify_words(6), "FAILURE,DELAY");
        assert_eq!(notify_words(9), "NEVER");
        let r = Reply {
            code: 550,
            text: "5.1.1 no such user".into(),
        };
        assert_eq!(r.status(), "5.1.1");
        assert_eq!(
            Reply {
                code: 451,
                text: "try later".into()
            }
            .status(),
            "4.0.0"
        );
    }
}

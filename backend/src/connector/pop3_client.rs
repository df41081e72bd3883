//! A POP3 client for the connector (RFC 1939, RFC 2595 STLS, RFC 5034 AUTH PLAIN, RFC 8314
//! implicit TLS). APOP (RFC 1939 §7, MD5) is spoken only when a connector asks for it.
//!
//! Invariants: with STLS, nothing the server sent after "+OK" and before the handshake is
//! accepted (response injection); multi-line answers are un-stuffed and end only at ".".
use crate::tls_client::ClientStream;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest message accepted from a server (twice the default SMTP limit).
const MAX_MESSAGE: usize = 100 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("server unreachable: {0}")]
    Unreachable(io::Error),
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("TLS failure: {0}")]
    Tls(io::Error),
    #[error("timed out")]
    Timeout,
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("the server answered: {0}")]
    Refused(String),
    #[error("the server does not support {0}")]
    Unsupported(&'static str),
    #[error("the server sent data before the TLS handshake (response injection)")]
    Injection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Implicit,
    Stls,
    None,
}

pub struct Pop3Client {
    io: BufReader<ClientStream>,
    timeout: Duration,
    greeting: String,
}

impl Pop3Client {
    pub async fn connect(
        host: &str,
        port: u16,
        security: Security,
        verify: bool,
        timeout: Duration,
    ) -> Result<Pop3Client, Pop3Error> {
        let tcp = within(timeout, TcpStream::connect((host, port)))
            .await?
            .map_err(Pop3Error::Unreachable)?;
        let stream = match security {
            Security::Implicit => ClientStream::Plain(tcp)
                .start_tls(host, &crate::tls_client::Check::webpki_if(verify))
                .await
                .map_err(Pop3Error::Tls)?,
            _ => ClientStream::Plain(tcp),
        };
        let mut c = Pop3Client {
            io: BufReader::new(stream),
            timeout,
            greeting: String::new(),
        };
        c.greeting = c.ok().await?;
        if security == Security::Stls {
            c.command("STLS").await?;
            if !c.io.buffer().is_empty() {
                return Err(Pop3Error::Injection);
            }
            let plain =
                std::mem::replace(&mut c.io, BufReader::new(ClientStream::Closed)).into_inner();
            c.io = BufReader::new(
                plain
                    .start_tls(host, &crate::tls_client::Check::webpki_if(verify))
                    .await
                    .map_err(Pop3Error::Tls)?,
            );
        }
        Ok(c)
    }

    /// Logs in with USER/PASS, AUTH PLAIN or APOP.
    pub async fn login(&mut self, method: &str, user: &str, secret: &str) -> Result<(), Pop3Error> {
        let result = match method {
            "plain" => {
                use base64::Engine;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{secret}"));
                self.command(&format!("AUTH PLAIN {token}"))
                    .await
                    .map(|_| ())
            }
            "apop" => {
                let stamp = self
                    .greeting
                    .find('<')
                    .and_then(|a| {
                        self.greeting[a..]
                            .find('>')
                            .map(|b| &self.greeting[a..=a + b])
                    })
                    .ok_or(Pop3Error::Unsupported("APOP"))?
                    .to_string();
                use md5::{Digest, Md5};
                let digest = Md5::digest(format!("{stamp}{secret}").as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                self.command(&format!("APOP {user} {hex}"))
                    .await
                    .map(|_| ())
            }
            _ => match self.command(&format!("USER {user}")).await {
                Ok(_) => self.command(&format!("PASS {secret}")).await.map(|_| ()),
                Err(e) => Err(e),
            },
        };
        result.map_err(|e| match e {
            Pop3Error::Refused(why) => Pop3Error::Auth(why),
            other => other,
        })
    }

    /// Every message as (number, unique id).
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.command("UIDL").await.map_err(|e| match e {
            Pop3Error::Refused(_) => Pop3Error::Unsupported("UIDL"),
            other => other,
        })?;
        let body = self.multiline(1024 * 1024 * 16).await?;
        let text = String::from_utf8_lossy(&body);
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let n = parts.next()?.parse().ok()?;
                Some((n, parts.next()?.to_string()))
            })
            .collect())
    }

    /// Message `n`, un-stuffed, with CRLF line endings.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>, Pop3Error> {
        self.command(&format!("RETR {n}")).await?;
        self.multiline(MAX_MESSAGE).await
    }

    pub async fn dele(&mut self, n: u32) -> Result<(), Pop3Error> {
        self.command(&format!("DELE {n}")).await.map(|_| ())
    }

    /// Ends the session; the server deletes what was marked only now.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT").await.map(|_| ())
    }

    async fn command(&mut self, line: &str) -> Result<String, Pop3Error> {
        let io = self.io.get_mut();
        within(self.timeout, async {
            io.write_all(line.as_bytes()).await?;
            io.write_all(b"\r\n").await?;
            io.flush().await
        })
        .await??;
        self.ok().await
    }

    /// Reads a status line: the text after "+OK", or `Refused` with the text after "-ERR".
    async fn ok(&mut self) -> Result<String, Pop3Error> {
        let mut line = Vec::new();
        let n = within(
            self.timeout,
            (&mut self.io).take(4096).read_until(b'\n', &mut line),
        )
        .await??;
        if n == 0 {
            return Err(Pop3Error::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        match text.strip_prefix("+OK") {
            Some(rest) => Ok(rest.trim().to_string()),
            None => Err(Pop3Error::Refused(
                text.strip_prefix("-ERR")
                    .unwrap_or(&text)
                    .trim()
                    .to_string(),
            )),
        }
    }

    /// Reads a multi-line body up to the "." line, un-stuffed.
    async fn multiline(&mut self, limit: usize) -> Result<Vec<u8>, Pop3Error> {
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = within(self.timeout, self.io.read_until(b'\n', &mut line)).await??;
            if n == 0 {
                return Err(Pop3Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            let content = line.strip_suffix(b"\n").unwrap_or(&line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content == b"." {
                return Ok(out);
            }
            let content = content.strip_prefix(b".").unwrap_or(content);
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
            if out.len() > limit {
                return Err(Pop3Error::Refused("message too large".into()));
            }
        }
    }
}

async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = T>,
) -> Result<T, Pop3Error> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| Pop3Error::Timeout)
}

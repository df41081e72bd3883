//! A minimal text-protocol client for the benchmarks: plain or TLS (certificates are not
//! checked: benchmarks run against test servers), line replies.
use anyhow::{bail, Context, Result};
use bridgehead_backend::tls_client::{self, ClientStream};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Wire {
    io: BufReader<ClientStream>,
    host: String,
    line: String,
}

impl Wire {
    pub async fn connect(server: &str, implicit_tls: bool) -> Result<Wire> {
        let tcp = TcpStream::connect(server)
            .await
            .with_context(|| format!("connect to {server}"))?;
        let _ = tcp.set_nodelay(true);
        let host = server
            .rsplit_once(':')
            .map_or(server, |(h, _)| h)
            .to_string();
        let stream = if implicit_tls {
            ClientStream::Tls(Box::new(tls_client::connect(tcp, &host, false).await?))
        } else {
            ClientStream::Plain(tcp)
        };
        Ok(Wire {
            io: BufReader::with_capacity(64 * 1024, stream),
            host,
            line: String::new(),
        })
    }

    pub async fn start_tls(&mut self) -> Result<()> {
        let plain =
            std::mem::replace(&mut self.io, BufReader::new(ClientStream::Closed)).into_inner();
        self.io = BufReader::with_capacity(
            64 * 1024,
            plain
                .start_tls(&self.host, &tls_client::Check::Nothing)
                .await?,
        );
        Ok(())
    }

    pub async fn send(&mut self, data: &[u8]) -> Result<()> {
        let io = self.io.get_mut();
        io.write_all(data).await?;
        io.flush().await?;
        Ok(())
    }

    /// One line, without its line ending.
    pub async fn line(&mut self) -> Result<&str> {
        self.line.clear();
        if self.io.read_line(&mut self.line).await? == 0 {
            bail!("connection closed");
        }
        Ok(self.line.trim_end())
    }

    /// An SMTP reply (the last line of a multi-line one): its code and text.
    pub async fn smtp_reply(&mut self) -> Result<(u16, String)> {
        loop {
            let l = self.line().await?;
            let code: u16 = l
                .get(..3)
                .and_then(|c| c.parse().ok())
                .context("malformed SMTP reply")?;
            if l.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, l.to_string()));
            }
        }
    }

    /// A multi-line POP3 body up to ".", returning its size in octets.
    pub async fn pop3_body(&mut self) -> Result<u64> {
        let mut n = 0;
        loop {
            let l = self.line().await?;
            if l == "." {
                return Ok(n);
            }
            n += l.len() as u64 + 2;
        }
    }
}

//! The connection as both protocol drivers use it: reading into the input buffer, replies
//! gathered and written together within a deadline, the TLS upgrade (STARTTLS, STLS) and the
//! security rule that goes with it, and the close.
//!
//! Invariant: after a TLS upgrade, every byte that was read before it — plaintext a client
//! (or an attacker on the path) pipelined behind STARTTLS/STLS — is thrown away unread
//! (RFC 3207 §4.2, RFC 2595; the CVE-2011-0411 class): the driver calls `after_step` after
//! each step of input, and the buffer is cleared once an upgrade happened in that step.
use crate::tls::Conn;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub struct Wire {
    conn: Option<Conn>,
    /// Replies gathered, not yet written.
    pub out: Vec<u8>,
    /// A TLS upgrade happened since the last `after_step`.
    upgraded: bool,
}

impl Wire {
    pub fn new(conn: Conn) -> Wire {
        Wire {
            conn: Some(conn),
            out: Vec::new(),
            upgraded: false,
        }
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("connection present")
    }

    /// Reads what the client sent into `buf` (after making room for `room` more bytes);
    /// 0 at the end of the stream.
    pub async fn read(&mut self, buf: &mut Vec<u8>, room: usize) -> io::Result<usize> {
        buf.reserve(room);
        self.conn().read_buf(buf).await
    }

    /// Writes the gathered replies, giving up after `limit` (a client that does not read).
    pub async fn flush(&mut self, limit: Duration) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.conn().send_within(&out, limit).await?;
        self.out = out;
        self.out.clear();
        Ok(())
    }

    /// Writes what is gathered, then runs the TLS handshake (within `limit`, yielding to
    /// `stop`); the bytes read before it are dropped at the next `after_step`.
    pub async fn start_tls(
        &mut self,
        acceptor: &TlsAcceptor,
        limit: Duration,
        stop: &CancellationToken,
        write_limit: Duration,
    ) -> io::Result<()> {
        self.flush(write_limit).await?;
        let conn = self.conn.take().expect("connection present");
        self.conn = Some(conn.upgrade(acceptor, limit, stop).await?);
        self.upgraded = true;
        Ok(())
    }

    /// After each step of input: drops `buf` if TLS started in that step.
    pub fn after_step(&mut self, buf: &mut Vec<u8>) {
        if std::mem::take(&mut self.upgraded) {
            buf.clear();
        }
    }

    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384" once TLS is on.
    pub fn tls_description(&self) -> Option<String> {
        self.conn.as_ref().and_then(Conn::tls_description)
    }

    /// Writes what is gathered and closes the connection.
    pub async fn close(&mut self, limit: Duration) -> io::Result<()> {
        self.flush(limit).await?;
        let _ = self.conn().shutdown().await;
        Ok(())
    }
}

//! TLS for the listeners: rustls server configuration from PEM files, and a stream type
//! that is either plain TCP or TLS (so STLS/STARTTLS can upgrade a connection in place).
//! Invariant: every handshake, implicit or upgraded, has a deadline and yields to shutdown.
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate {0}: {1}")]
    Cert(String, String),
    #[error("cannot read private key {0}: {1}")]
    Key(String, String),
    #[error("certificate and key do not fit together: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor for the certificate chain and key in the given PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Cert(cert.display().to_string(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Cert(
            cert.display().to_string(),
            "no certificate in file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(key.display().to_string(), e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A client connection, before or after TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// Runs the TLS handshake on a plain connection (implicit TLS, STARTTLS, STLS), giving up
    /// after `limit` or when `stop` is cancelled: a client that stalls mid-handshake holds
    /// neither its connection slot nor a shutdown for longer than that.
    pub async fn upgrade(
        self,
        acceptor: &TlsAcceptor,
        limit: Duration,
        stop: &CancellationToken,
    ) -> io::Result<Conn> {
        let Conn::Plain(tcp) = self else {
            return Ok(self);
        };
        tokio::select! {
            done = tokio::time::timeout(limit, acceptor.accept(tcp)) => match done {
                Ok(tls) => Ok(Conn::Tls(Box::new(tls?))),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no TLS handshake within {limit:?}"),
                )),
            },
            _ = stop.cancelled() => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "shutting down during the TLS handshake",
            )),
        }
    }
}

impl Conn {
    /// Writes and flushes `data`, giving up after `limit`: a client that stops reading cannot
    /// hold a session (or make it buffer) forever.
    pub async fn send_within(&mut self, data: &[u8], limit: std::time::Duration) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let write = async {
            self.write_all(data).await?;
            self.flush().await
        };
        tokio::time::timeout(limit, write)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
    }

    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384" on a TLS connection, for trace headers.
    pub fn tls_description(&self) -> Option<String> {
        let Conn::Tls(s) = self else { return None };
        let (_, session) = s.get_ref();
        let version = session
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let suite = session
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default();
        Some(
            format!("{version} {suite}")
                .replace("TLSv1_3", "TLSv1.3")
                .replace("TLSv1_2", "TLSv1.2"),
        )
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

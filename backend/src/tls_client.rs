//! TLS as a client (outbound SMTP, the POP3 connector), with rustls.
//!
//! Two policies: `verify` checks the server's certificate against the Mozilla roots
//! (webpki-roots), and the extra CAs the operator names (`--extra-ca-file`), and its name, as
//! the POP3 connector does by default and routes with `--tls verify` do; without it the
//! connection is encrypted but the certificate is not checked — the "may"/"encrypt" levels
//! of SMTP between servers, where no CA trust exists without DANE. With DANE, the
//! certificate must match the host's TLSA records instead (`tls_dane`).
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What a client checks of the server's certificate.
#[derive(Debug, Clone)]
pub enum Check {
    /// Nothing (encryption only); the handshake signatures still.
    Nothing,
    /// The WebPKI: a chain to the Mozilla roots or an extra CA, for the host's name.
    WebPki,
    /// A match with one of the host's (DNSSEC-validated) usable TLSA records.
    Dane(Arc<Vec<crate::transport::policy::dane::Tlsa>>),
}

impl Check {
    /// `WebPki` when `verify`, else `Nothing`.
    pub fn webpki_if(verify: bool) -> Check {
        if verify {
            Check::WebPki
        } else {
            Check::Nothing
        }
    }
}

/// Runs the TLS handshake on `tcp` for the server `host`.
pub async fn connect(tcp: TcpStream, host: &str, verify: bool) -> io::Result<TlsStream<TcpStream>> {
    connect_checked(tcp, host, &Check::webpki_if(verify)).await
}

/// Runs the TLS handshake on `tcp` for the server `host`, checking its certificate so.
pub async fn connect_checked(
    tcp: TcpStream,
    host: &str,
    check: &Check,
) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad TLS server name {host}"),
        )
    })?;
    let config = match check {
        Check::Nothing => config(false),
        Check::WebPki => config(true),
        Check::Dane(records) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let signatures = AnyCertificate(provider);
            let verifier = crate::tls_dane::DaneVerifier::new(records.clone(), signatures);
            let config = builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            Arc::new(config)
        }
    };
    TlsConnector::from(config).connect(name, tcp).await
}

/// The verifying configuration: the Mozilla roots and the extra CAs trusted so far.
static VERIFYING: RwLock<Option<Arc<ClientConfig>>> = RwLock::new(None);
static EXTRA_ROOTS: RwLock<Vec<CertificateDer<'static>>> = RwLock::new(Vec::new());

/// Trusts the CA certificates in the PEM file at `path` too, beside the Mozilla roots, for
/// every verified connection from now on (a private PKI's root: routes to internal hosts,
/// policy hosts).
pub fn trust_extra_cas(path: &std::path::Path) -> io::Result<usize> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no certificate in it", path.display()),
        ));
    }
    let n = certs.len();
    EXTRA_ROOTS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .extend(certs);
    *VERIFYING.write().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(n)
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
}

fn verifying() -> Arc<ClientConfig> {
    if let Some(c) = VERIFYING.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return c.clone();
    }
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in EXTRA_ROOTS.read().unwrap_or_else(|e| e.into_inner()).iter() {
        if let Err(e) = roots.add(cert.clone()) {
            tracing::warn!(error = %e, "an extra CA certificate cannot be used");
        }
    }
    let config = Arc::new(
        builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    *VERIFYING.write().unwrap_or_else(|e| e.into_inner()) = Some(config.clone());
    config
}

fn config(verify: bool) -> Arc<ClientConfig> {
    static ENCRYPTING: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    if verify {
        verifying()
    } else {
        ENCRYPTING
            .get_or_init(|| {
                let config = builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                    .with_no_client_auth();
                Arc::new(config)
            })
            .clone()
    }
}

/// Accepts any certificate, but still checks the handshake signatures.
#[derive(Debug)]
pub(crate) struct AnyCertificate(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client connection, plain or TLS; STARTTLS/STLS turn one into the other.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while STARTTLS swaps the stream.
    Closed,
}

impl ClientStream {
    /// The TLS handshake on a plain connection.
    pub async fn start_tls(self, host: &str, check: &Check) -> io::Result<ClientStream> {
        match self {
            ClientStream::Plain(tcp) => Ok(ClientStream::Tls(Box::new(
                connect_checked(tcp, host, check).await?,
            ))),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS on a connection that is not plain",
            )),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientStream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ClientStream::Closed => Poll::Ready(Err(closed())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ClientStream::Closed => Poll::Ready(Err(closed())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientStream::Closed => Poll::Ready(Ok(())),
        }
    }
}

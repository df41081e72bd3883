//! The operator console: HTML pages over the Admin service, served by back-ends on
//! `--console-listen` (off by default).
//!
//! One job: be a thin adapter, the only module that knows axum. Every change an operator
//! makes goes through the same Admin operations the CLI calls (`grpc::local_admin`, in
//! process), so the console can do nothing the CLI cannot, and their checks and errors are
//! the same. Pages are rendered on the server (maud, which escapes every value it is given);
//! no script is served at all. Invariants: every page but the sign-in needs a live session
//! (`session.rs`); every POST carries the session's CSRF token, or is refused before it
//! does anything; a domain administrator's requests are held to their domain
//! (`access.rs`); sessions live in PostgreSQL, so any back-end serves any session. Works
//! under a path prefix (`--console-prefix`) behind a reverse proxy, and with TLS on the
//! listener itself (`--console-cert`/`--console-key`).
mod access;
mod chart;
mod layout;
mod pages;
mod session;

use crate::auth::AuthPolicy;
use crate::store::Store;
use axum::Router;
use bridgehead_proto::v1::admin_server::Admin;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use access::Role;

/// Where and how the console listens.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    pub listen: Option<SocketAddr>,
    /// The path the console is served under ("" or e.g. "/console"), as the reverse proxy
    /// in front passes it on.
    pub prefix: String,
    /// TLS on the listener itself (certificate chain and key, PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The admin token, which also signs in (as an administrator), for the first login.
    pub admin_token: String,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client: its last address
    /// is whom a failed sign-in counts against. Others' is ignored.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("console TLS: {0}")]
    Tls(String),
    #[error("the console prefix {0:?} must start with '/' and not end with one")]
    Prefix(String),
    #[error("{0:?} is not a network (CIDR, e.g. 10.0.0.0/8) for --console-trusted-proxies")]
    Network(String),
}

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct Console {
    admin: Arc<dyn Admin>,
    store: Store,
    auth: AuthPolicy,
    prefix: Arc<str>,
    admin_token: Arc<str>,
    tls: bool,
    proxies: Arc<[access::Network]>,
}

impl Console {
    /// A path under the console's prefix.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

/// Binds the listener and serves until `shutdown`; the bound address and the task.
pub async fn serve(
    config: ConsoleConfig,
    admin: Arc<dyn Admin>,
    store: Store,
    auth: AuthPolicy,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), ConsoleError> {
    let prefix = config.prefix.trim().to_string();
    if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/')) {
        return Err(ConsoleError::Prefix(prefix));
    }
    let addr = config
        .listen
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let tls = match &config.tls {
        Some((cert, key)) => Some(acceptor(cert, key)?),
        None => None,
    };
    let proxies = config
        .trusted_proxies
        .iter()
        .map(|n| access::Network::parse(n).ok_or_else(|| ConsoleError::Network(n.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let console = Console {
        proxies: proxies.into(),
        admin,
        store,
        auth,
        prefix: Arc::from(prefix.as_str()),
        admin_token: Arc::from(config.admin_token.as_str()),
        tls: tls.is_some(),
    };
    let routes = pages::routes(console);
    let app = match prefix.as_str() {
        "" => routes,
        // Nested, the overview answers at "/ops"; "/ops/" (where links to it point) sends there.
        p => {
            let home = p.to_string();
            let to_home = move || async move { axum::response::Redirect::to(&home) };
            Router::new()
                .route(&format!("{p}/"), axum::routing::get(to_home))
                .nest(p, routes)
        }
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ConsoleError::Listen(addr, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ConsoleError::Listen(addr, e))?;
    let task = tokio::spawn(accept(listener, app, tls, shutdown));
    Ok((bound, task))
}

fn acceptor(cert: &PathBuf, key: &PathBuf) -> Result<tokio_rustls::TlsAcceptor, ConsoleError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, p: &PathBuf, e: &dyn std::fmt::Display| {
        ConsoleError::Tls(format!("{what} {}: {e}", p.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("reading", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("reading", cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("reading", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConsoleError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConsoleError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections until `shutdown`; each is served (HTTP/1.1, keep-alive) on its
/// own task and told to finish when `shutdown` comes.
async fn accept(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
        };
        let app = app.clone().layer(axum::Extension(Peer(peer)));
        let (tls, shutdown) = (tls.clone(), shutdown.clone());
        tokio::spawn(async move {
            match tls {
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(std::time::Duration::from_secs(10), tls.accept(tcp));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_connection(stream, app, shutdown).await;
                    }
                }
                None => serve_connection(tcp, app, shutdown).await,
            }
        });
    }
}

/// The client's address, as the connection shows it (for login penalties).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

async fn serve_connection<S>(stream: S, app: Router, shutdown: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let io = hyper_util::rt::TokioIo::new(stream);
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(std::time::Duration::from_secs(30))
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        }
    }
}

//! The front-end role: listeners, the connection limit, graceful shutdown.
//!
//! Each accepted connection runs in its own task, tracked so that `stop` can wait for all
//! of them; a connection past the limit is told so (`-ERR [SYS/TEMP]`) and closed at once
//! rather than left waiting. The front-end keeps nothing that must survive it.
use crate::backend_client::{BackendError, Backends};
use crate::pop3::{self, Pop3Context, Pop3Settings};
use crate::tls::{self, Conn, TlsError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone)]
pub struct FrontendConfig {
    pub pop3_listen: Option<SocketAddr>,
    pub pop3s_listen: Option<SocketAddr>,
    /// Back-end gRPC addresses (`host:port` or URLs).
    pub backends: Vec<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_plaintext_auth: bool,
    pub idle_timeout: Duration,
    pub lease_seconds: u32,
    pub max_connections: usize,
    pub max_bad_commands: u32,
    pub backend_timeout: Duration,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            pop3_listen: None,
            pop3s_listen: None,
            backends: Vec::new(),
            tls_cert: None,
            tls_key: None,
            allow_plaintext_auth: false,
            idle_timeout: Duration::from_secs(600),
            lease_seconds: 120,
            max_connections: 10_000,
            max_bad_commands: 10,
            backend_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("{0} needs a TLS certificate and key (--tls-cert, --tls-key)")]
    NeedsTls(&'static str),
    #[error("back-ends: {0}")]
    Backends(#[from] BackendError),
}

/// A running front-end.
pub struct FrontendHandle {
    pub pop3: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl FrontendHandle {
    pub async fn start(config: FrontendConfig) -> Result<FrontendHandle, FrontendError> {
        let acceptor = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(tls::acceptor(c, k)?),
            _ => None,
        };
        if config.pop3s_listen.is_some() && acceptor.is_none() {
            return Err(FrontendError::NeedsTls("POP3S"));
        }
        let backends = Arc::new(Backends::new(&config.backends, config.backend_timeout)?);
        let ctx = Arc::new(Pop3Context {
            backends,
            tls: acceptor,
            settings: Pop3Settings {
                allow_plaintext_auth: config.allow_plaintext_auth,
                idle_timeout: config.idle_timeout,
                lease_seconds: config.lease_seconds,
                max_bad_commands: config.max_bad_commands,
            },
        });
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limit = Arc::new(Semaphore::new(config.max_connections));
        let mut handle = FrontendHandle {
            pop3: None,
            pop3s: None,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        };
        for (addr, implicit_tls) in [(config.pop3_listen, false), (config.pop3s_listen, true)] {
            let Some(addr) = addr else { continue };
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| FrontendError::Listen(addr, e))?;
            let bound = listener
                .local_addr()
                .map_err(|e| FrontendError::Listen(addr, e))?;
            if implicit_tls {
                handle.pop3s = Some(bound);
            } else {
                handle.pop3 = Some(bound);
            }
            tracing::info!(addr = %bound, tls = implicit_tls, "POP3 listening");
            let accept = Acceptor {
                listener,
                implicit_tls,
                ctx: ctx.clone(),
                limit: limit.clone(),
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
            };
            tracker.spawn(accept.run());
        }
        Ok(handle)
    }

    /// Stops accepting, lets sessions say goodbye, and waits for every task.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

struct Acceptor {
    listener: TcpListener,
    implicit_tls: bool,
    ctx: Arc<Pop3Context>,
    limit: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Acceptor {
    async fn run(self) {
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                a = self.listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let permit = self.limit.clone().try_acquire_owned();
            let ctx = self.ctx.clone();
            let shutdown = self.shutdown.clone();
            let implicit_tls = self.implicit_tls;
            self.tracker.spawn(async move {
                let Ok(_permit) = permit else {
                    return refuse_busy(tcp, implicit_tls, &ctx).await;
                };
                let Some(conn) = open(tcp, implicit_tls, &ctx).await else {
                    return;
                };
                pop3::serve(conn, peer, implicit_tls, ctx, shutdown).await;
            });
        }
    }
}

/// Wraps the connection in TLS when the listener is implicit-TLS.
async fn open(tcp: TcpStream, implicit_tls: bool, ctx: &Pop3Context) -> Option<Conn> {
    let plain = Conn::Plain(tcp);
    if !implicit_tls {
        return Some(plain);
    }
    let acceptor = ctx.tls.as_ref()?;
    match tokio::time::timeout(Duration::from_secs(30), plain.upgrade(acceptor)).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

async fn refuse_busy(tcp: TcpStream, implicit_tls: bool, ctx: &Pop3Context) {
    if let Some(mut conn) = open(tcp, implicit_tls, ctx).await {
        let _ = conn
            .write_all(b"-ERR [SYS/TEMP] Too many connections, try again later\r\n")
            .await;
        let _ = conn.shutdown().await;
    }
}

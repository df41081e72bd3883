//! The front-end role: listeners, connection limits, graceful shutdown.
//!
//! Each accepted connection runs in its own task, tracked so that `stop` can wait for all
//! of them. A connection past the total limit or the per-address limit is told so in its
//! protocol (`-ERR [SYS/TEMP]`, `421 4.7.0`) and closed at once rather than left waiting.
//! The front-end keeps nothing that must survive it.
use crate::backend_client::{Backends, CallError, ClientTlsFiles};
use crate::limits::AddressLimiter;
use crate::metrics::{Metrics, OpenConnection, Protocol};
use crate::pop3::{self, Pop3Context, Pop3Settings};
use crate::proxy::{self, Networks};
use crate::smtp::connection::SmtpSettings;
use crate::smtp::recipients::RecipientCache;
use crate::smtp::session::Listener;
use crate::smtp::{self, SmtpContext};
use crate::tls::{self, Conn, TlsError};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone)]
pub struct FrontendConfig {
    pub pop3_listen: Option<SocketAddr>,
    pub pop3s_listen: Option<SocketAddr>,
    pub smtp_listen: Option<SocketAddr>,
    pub submission_listen: Option<SocketAddr>,
    pub submissions_listen: Option<SocketAddr>,
    /// Back-end gRPC addresses (`host:port` or URLs).
    pub backends: Vec<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The name in greetings and Received headers.
    pub hostname: String,
    pub allow_plaintext_auth: bool,
    pub idle_timeout: Duration,
    pub lease_seconds: u32,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_bad_commands: u32,
    pub backend_timeout: Duration,
    /// How often back-end names are resolved again.
    pub backend_refresh: Duration,
    /// How long an accepted mailbox recipient is remembered (RCPT without a back-end call);
    /// zero: always ask. The end of DATA checks every recipient again regardless.
    pub recipient_cache_ttl: Duration,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub smtp_command_timeout: Duration,
    pub smtp_data_timeout: Duration,
    /// Networks whose connections start with a PROXY protocol header (v1 or v2), e.g. the
    /// load balancers. Connections from them must send one; others must not.
    pub proxy_protocol_from: Vec<String>,
    /// Mutual TLS with the back-ends; `None`: plaintext gRPC (a trusted network only).
    pub backend_tls: Option<ClientTlsFiles>,
    /// On shutdown, how long sessions busy with a command (say, DATA) may take to finish.
    pub drain_timeout: Duration,
    /// The longest a TLS handshake may take (implicit TLS, STARTTLS, STLS).
    pub tls_handshake_timeout: Duration,
    /// Milters for SMTP messages, in order.
    pub milters: Vec<crate::filter::FilterSpec>,
    /// Milters for submission (587, 465) instead of `milters`, when given.
    pub submission_milters: Option<Vec<crate::filter::FilterSpec>>,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            pop3_listen: None,
            pop3s_listen: None,
            smtp_listen: None,
            submission_listen: None,
            submissions_listen: None,
            backends: Vec::new(),
            tls_cert: None,
            tls_key: None,
            hostname: "localhost".to_string(),
            allow_plaintext_auth: false,
            idle_timeout: Duration::from_secs(600),
            lease_seconds: 120,
            max_connections: 10_000,
            max_connections_per_ip: 100,
            max_bad_commands: 10,
            backend_timeout: Duration::from_secs(30),
            backend_refresh: Duration::from_secs(10),
            recipient_cache_ttl: Duration::from_secs(5),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            smtp_command_timeout: Duration::from_secs(300),
            smtp_data_timeout: Duration::from_secs(180),
            proxy_protocol_from: Vec::new(),
            backend_tls: None,
            drain_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(30),
            milters: Vec::new(),
            submission_milters: None,
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
    Backends(#[from] CallError),
    #[error("--proxy-protocol-from: {0}")]
    Networks(String),
}

/// The protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Pop3,
    Pop3s,
    Smtp(Listener),
}

impl Service {
    fn implicit_tls(self) -> bool {
        matches!(self, Service::Pop3s | Service::Smtp(Listener::Submissions))
    }

    fn name(self) -> &'static str {
        match self {
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Smtp(Listener::Mx) => "smtp",
            Service::Smtp(Listener::Submission) => "submission",
            Service::Smtp(Listener::Submissions) => "submissions",
        }
    }

    fn busy_reply(self) -> &'static [u8] {
        match self {
            Service::Pop3 | Service::Pop3s => {
                b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
            }
            Service::Smtp(_) => b"421 4.7.0 Too many connections, try again later\r\n",
        }
    }
}

/// How often a front-end tells the back-ends it is alive (for the operators' overview).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A running front-end.
pub struct FrontendHandle {
    pub pop3: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub submissions: Option<SocketAddr>,
    /// The front-end's metrics, for the `/metrics` endpoint.
    pub registry: Arc<Registry>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    drain: Duration,
}

struct Shared {
    pop3: Arc<Pop3Context>,
    smtp: Arc<SmtpContext>,
    tls: Option<TlsAcceptor>,
    tls_handshake_timeout: Duration,
    limiter: Arc<AddressLimiter>,
    proxied: Networks,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl FrontendHandle {
    pub async fn start(config: FrontendConfig) -> Result<FrontendHandle, FrontendError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(tls::acceptor(c, k)?),
            _ => None,
        };
        if tls.is_none() && config.pop3s_listen.is_some() {
            return Err(FrontendError::NeedsTls("POP3S"));
        }
        if tls.is_none() && config.submissions_listen.is_some() {
            return Err(FrontendError::NeedsTls("SMTP submissions (implicit TLS)"));
        }
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::new(&mut registry));
        let shared = Arc::new(Shared::new(&config, tls, metrics)?);
        let mut handle = FrontendHandle {
            pop3: None,
            pop3s: None,
            smtp: None,
            submission: None,
            submissions: None,
            registry: Arc::new(registry),
            drain: config.drain_timeout,
            shutdown: shared.shutdown.clone(),
            tracker: shared.tracker.clone(),
        };
        let listeners = [
            (config.pop3_listen, Service::Pop3, &mut handle.pop3),
            (config.pop3s_listen, Service::Pop3s, &mut handle.pop3s),
            (
                config.smtp_listen,
                Service::Smtp(Listener::Mx),
                &mut handle.smtp,
            ),
            (
                config.submission_listen,
                Service::Smtp(Listener::Submission),
                &mut handle.submission,
            ),
            (
                config.submissions_listen,
                Service::Smtp(Listener::Submissions),
                &mut handle.submissions,
            ),
        ];
        let mut bound = Vec::new();
        for (addr, service, slot) in listeners {
            let Some(addr) = addr else { continue };
            let at = listen(addr, service, &shared).await?;
            bound.push(format!("{service:?} {at}"));
            *slot = Some(at);
        }
        let first = bound
            .first()
            .map_or("", |b| b.rsplit(' ').next().unwrap_or(""));
        let name = format!("{}/{first}", config.hostname);
        shared.pop3.backends.report_alive(
            name,
            bound.join(", "),
            HEARTBEAT_EVERY,
            shared.shutdown.clone(),
        );
        Ok(handle)
    }

    /// Ready while not shutting down (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        !self.shutdown.is_cancelled()
    }

    /// A token that is cancelled when the front-end starts to shut down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets sessions say goodbye, and waits for every task.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.drain, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(drain = ?self.drain, "sessions still open after the drain deadline; leaving them");
        }
    }
}

impl Shared {
    /// What every connection shares: the back-ends (their names resolved now and then), each
    /// protocol's settings, the limits.
    fn new(
        config: &FrontendConfig,
        tls: Option<TlsAcceptor>,
        metrics: Arc<Metrics>,
    ) -> Result<Shared, FrontendError> {
        let backends = Arc::new(Backends::new(
            &config.backends,
            config.backend_timeout,
            metrics.clone(),
            config.backend_tls.as_ref(),
        )?);
        let shutdown = CancellationToken::new();
        backends.discover(config.backend_refresh, shutdown.clone());
        backends.watch_health(Duration::from_secs(2), shutdown.clone());
        let pop3 = Pop3Settings {
            allow_plaintext_auth: config.allow_plaintext_auth,
            idle_timeout: config.idle_timeout,
            lease_seconds: config.lease_seconds,
            max_bad_commands: config.max_bad_commands,
            tls_handshake_timeout: config.tls_handshake_timeout,
        };
        let smtp = SmtpSettings {
            hostname: config.hostname.clone(),
            max_message_size: config.max_message_size,
            max_recipients: config.max_recipients,
            allow_plaintext_auth: config.allow_plaintext_auth,
            max_bad_commands: config.max_bad_commands.max(20),
            command_timeout: config.smtp_command_timeout,
            data_timeout: config.smtp_data_timeout,
            tls_handshake_timeout: config.tls_handshake_timeout,
        };
        Ok(Shared {
            pop3: Arc::new(Pop3Context {
                backends: backends.clone(),
                tls: tls.clone(),
                settings: pop3,
            }),
            smtp: Arc::new(SmtpContext {
                backends,
                recipients: RecipientCache::new(config.recipient_cache_ttl),
                harvest: Default::default(),
                tls: tls.clone(),
                settings: smtp,
                milters: crate::smtp::connection::Milters {
                    mx: config.milters.clone(),
                    submission: config.submission_milters.clone(),
                },
            }),
            tls,
            tls_handshake_timeout: config.tls_handshake_timeout,
            limiter: Arc::new(AddressLimiter::new(
                config.max_connections,
                config.max_connections_per_ip,
            )),
            metrics,
            proxied: Networks::parse(&config.proxy_protocol_from)
                .map_err(FrontendError::Networks)?,
            shutdown,
            tracker: TaskTracker::new(),
        })
    }
}

/// Binds `addr` and serves `service` there; the address actually bound.
async fn listen(
    addr: SocketAddr,
    service: Service,
    shared: &Arc<Shared>,
) -> Result<SocketAddr, FrontendError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| FrontendError::Listen(addr, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| FrontendError::Listen(addr, e))?;
    tracing::info!(addr = %bound, ?service, "listening");
    shared
        .tracker
        .spawn(accept_loop(listener, service, shared.clone()));
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, service: Service, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
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
        let s = shared.clone();
        shared
            .tracker
            .spawn(async move { connection(tcp, peer, service, s).await });
    }
}

async fn connection(
    mut tcp: TcpStream,
    mut peer: SocketAddr,
    service: Service,
    shared: Arc<Shared>,
) {
    if shared.proxied.contains(peer.ip()) {
        match read_proxy_header(&mut tcp).await {
            Ok(Some(source)) => peer = source,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, error = %e, "connection from a PROXY network without a valid header");
                return;
            }
        }
    }
    let _open = OpenConnection::new(&shared.metrics, service.name());
    // The place is taken before any TLS handshake, so handshakes in progress count against
    // the limits. Past a limit, an implicit-TLS client is not given a handshake to be told
    // so: it is closed at once.
    let Some(_slot) = shared.limiter.acquire(peer.ip()) else {
        shared
            .metrics
            .refused
            .get_or_create(&Protocol {
                protocol: service.name(),
            })
            .inc();
        if !service.implicit_tls() {
            refuse_busy(Conn::Plain(tcp), service).await;
        }
        return;
    };
    let Some(conn) = open(tcp, service, &shared).await else {
        return;
    };
    let shutdown = shared.shutdown.clone();
    match service {
        Service::Pop3 | Service::Pop3s => {
            pop3::serve(
                conn,
                peer,
                service.implicit_tls(),
                shared.pop3.clone(),
                shutdown,
            )
            .await
        }
        Service::Smtp(kind) => smtp::serve(conn, peer, kind, shared.smtp.clone(), shutdown).await,
    }
}

/// Reads the PROXY protocol header a load balancer sends first (without reading past it):
/// the real client's address, or `None` for the balancer's own checks.
async fn read_proxy_header(tcp: &mut TcpStream) -> Result<Option<SocketAddr>, String> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .map_err(|_| "no PROXY header within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the PROXY header".into());
        }
        match proxy::parse(&buf[..n]) {
            Ok(Some(h)) => {
                tcp.read_exact(&mut buf[..h.len])
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(h.source);
            }
            Ok(None) if n == buf.len() => return Err("PROXY header too long".into()),
            Ok(None) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Wraps the connection in TLS when the listener is implicit-TLS.
async fn open(tcp: TcpStream, service: Service, shared: &Shared) -> Option<Conn> {
    let plain = Conn::Plain(tcp);
    if !service.implicit_tls() {
        return Some(plain);
    }
    let acceptor = shared.tls.as_ref()?;
    let limit = shared.tls_handshake_timeout;
    match plain.upgrade(acceptor, limit, &shared.shutdown).await {
        Ok(conn) => Some(conn),
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

async fn refuse_busy(mut conn: Conn, service: Service) {
    let _ = conn.write_all(service.busy_reply()).await;
    let _ = conn.shutdown().await;
}

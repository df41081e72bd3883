//! The back-end role: open the store, serve gRPC, stop cleanly.
use crate::auth::AuthPolicy;
use crate::grpc::{self, ServiceSettings};
use crate::mailauth::inbound::Checker;
use crate::mailauth::signer::Signer;
use crate::mailauth::srs::Srs;
use crate::store::Store;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub max_db_connections: u32,
    pub admin_token: String,
    pub max_message_size: u64,
    pub auth: AuthPolicy,
    pub harvest: crate::harvest::HarvestPolicy,
    pub transport: crate::transport::TransportConfig,
    pub connector: crate::connector::ConnectorConfig,
    /// Mutual TLS with front-ends (and TLS for the admin API).
    pub tls: Option<crate::grpc::TlsFiles>,
    /// Seals secrets at rest (connector passwords, route AUTH secrets).
    pub secrets: crate::secrets::Secrets,
    /// Check unauthenticated mail (SPF, DKIM, DMARC) and write Authentication-Results,
    /// asking `transport.dns_server` or the system's resolvers.
    pub check_mail_auth: bool,
    /// ARC sealers whose valid seal overrides a DMARC failure (mailing lists, forwarders).
    pub trusted_arc_sealers: Vec<String>,
    /// Message tracking: whether events are recorded, and for how long they are kept.
    pub tracking: crate::tracking::TrackingConfig,
    /// The operator console's listener; `None`: no console on this back-end.
    pub console: Option<crate::console::ConsoleConfig>,
}

impl BackendConfig {
    /// The gRPC listener when none is given.
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7000);
    /// PostgreSQL connections per back-end when not given.
    pub const DEFAULT_DB_CONNECTIONS: u32 = 20;
}

/// A running back-end.
pub struct BackendHandle {
    pub addr: SocketAddr,
    /// Where the operator console listens, when it does.
    pub console_addr: Option<SocketAddr>,
    /// The back-end's metrics, for the `/metrics` endpoint.
    pub registry: std::sync::Arc<prometheus_client::registry::Registry>,
    pub store: Store,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    workers: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("store: {0}")]
    Store(#[from] crate::StoreError),
    #[error(transparent)]
    MailAuth(#[from] crate::mailauth::inbound::InboundError),
    #[error("the system's random source failed (needed for the SRS key)")]
    NoRandomness,
    #[error("console: {0}")]
    Console(#[from] crate::console::ConsoleError),
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("gRPC server task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl BackendHandle {
    /// Opens the store (applying migrations), binds the gRPC port and starts serving.
    pub async fn start(mut config: BackendConfig) -> Result<BackendHandle, ServeError> {
        let store = Store::open(&config.database_url, config.max_db_connections).await?;
        config.transport.secrets = config.secrets.clone();
        config.connector.secrets = config.secrets.clone();
        seal_clear_secrets(&store, &config.secrets).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServeError::Listen(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Listen(config.listen, e))?;
        let shutdown = CancellationToken::new();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(&mut registry));
        let mail_auth = match config.check_mail_auth {
            true => Some(std::sync::Arc::new(Checker::new(
                config.transport.dns_server,
                &config.transport.hostname,
                &config.trusted_arc_sealers,
            )?)),
            false => None,
        };
        let node = format!("{}:{}", config.transport.hostname, addr.port());
        let mut workers = Vec::new();
        let events = match config.tracking.enabled {
            true => {
                let dropped = metrics.tracking_events_dropped.clone();
                let (events, task) =
                    crate::tracking::spawn(store.clone(), &node, dropped, shutdown.clone());
                workers.push(task);
                events
            }
            false => crate::tracking::Events::off(),
        };
        config.transport.events = events.clone();
        config.connector.events = events.clone();
        let srs = Srs::new(&store.cluster_key("srs", &random_key()?).await?);
        let signer = std::sync::Arc::new(Signer::new(
            store.clone(),
            config.secrets.clone(),
            config.transport.dkim_keys_kept,
        ));
        let settings = ServiceSettings {
            admin_token: config.admin_token,
            tls: config.tls.clone(),
            transport: config.transport.clone(),
            metrics: metrics.clone(),
            max_message_size: config.max_message_size,
            auth: config.auth.clone(),
            harvest: config.harvest.clone(),
            mail_auth,
            srs,
            signer: signer.clone(),
            events,
        };
        let settings = std::sync::Arc::new(settings);
        let console_addr = match &config.console {
            Some(c) => {
                let admin = grpc::local_admin(store.clone(), settings.clone());
                let (bound, task) = crate::console::serve(
                    c.clone(),
                    admin,
                    store.clone(),
                    config.auth.clone(),
                    shutdown.clone(),
                )
                .await?;
                workers.push(task);
                tracing::info!(addr = %bound, "operator console");
                Some(bound)
            }
            None => None,
        };
        let task = tokio::spawn(grpc::serve(
            listener,
            store.clone(),
            settings,
            shutdown.clone(),
        ));
        workers.extend(crate::transport::spawn(
            store.clone(),
            config.transport,
            metrics.clone(),
            signer,
            shutdown.clone(),
        ));
        workers.extend(crate::connector::spawn(
            store.clone(),
            config.connector,
            metrics.clone(),
            shutdown.clone(),
        ));
        let chores = crate::chores::Chores {
            auth_window_secs: config.auth.window_secs(),
            harvest_window_secs: config.harvest.window_secs(),
            event_retention_days: config.tracking.retention_days,
            node: crate::store::NodeRow {
                name: node,
                role: "backend".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                started_at: chrono::Utc::now(),
                seen_at: chrono::Utc::now(),
                detail: format!(
                    "gRPC {addr}{}",
                    console_addr
                        .map(|c| format!(", console {c}"))
                        .unwrap_or_default()
                ),
            },
        };
        // Seen at once, not only after the chores' first round.
        store.heartbeat(&chores.node).await?;
        workers.push(crate::chores::spawn(
            store.clone(),
            chores,
            metrics.clone(),
            shutdown.clone(),
        ));
        tracing::info!(%addr, "back-end serving gRPC");
        Ok(BackendHandle {
            addr,
            console_addr,
            registry: std::sync::Arc::new(registry),
            store,
            shutdown,
            task,
            workers,
        })
    }

    /// Stops accepting, finishes calls in flight, closes the database pool.
    pub async fn stop(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        for w in self.workers {
            let _ = w.await;
        }
        let served = self.task.await;
        self.store.close().await;
        served??;
        Ok(())
    }
}

/// Seals secrets stored in the clear before sealing existed, once a key is given (every
/// back-end may do it at start: each value is replaced only if unchanged).
async fn seal_clear_secrets(
    store: &Store,
    secrets: &crate::secrets::Secrets,
) -> Result<(), ServeError> {
    if !secrets.has_key() {
        return Ok(());
    }
    let (connectors, routes) = store.clear_secrets().await?;
    let sealed = connectors.len() + routes.len();
    for (id, old) in connectors {
        if let Ok(new) = secrets.seal("connector", &old) {
            store.reseal_connector_secret(id, &old, &new).await?;
        }
    }
    for (domain, old) in routes {
        if let Ok(new) = secrets.seal("route", &old) {
            store.reseal_route_secret(&domain, &old, &new).await?;
        }
    }
    if sealed > 0 {
        tracing::info!(sealed, "secrets stored in the clear are sealed now");
    }
    Ok(())
}

/// 32 random bytes: the cluster's SRS key, if this back-end is the first to need one.
fn random_key() -> Result<[u8; 32], ServeError> {
    use ring::rand::SecureRandom;
    let mut key = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| ServeError::NoRandomness)?;
    Ok(key)
}

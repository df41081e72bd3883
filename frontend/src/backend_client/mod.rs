//! The front-end's gRPC adapter to the back-ends: the only front-end module that knows tonic.
//!
//! One job: call a back-end and hand back domain values. Calls go round-robin over every
//! configured back-end; an idempotent call that finds a back-end down (UNAVAILABLE) is tried
//! on the next one, so a dead back-end costs a session nothing. Every call carries all of its
//! state, so no back-end is tied to a session. Each call is a client span whose trace
//! context travels in the request metadata (W3C `traceparent`), so the back-end's span for it
//! joins the same trace.
mod smtp;

pub use smtp::Origin;

use crate::discovery::{self, BackendEntry, Target};
use crate::metrics::Metrics;
use bridgehead_proto::v1 as pb;
use bridgehead_proto::v1::maildrop_client::MaildropClient;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use tracing::Instrument;

/// A channel whose requests carry the caller's trace context.
type Traced =
    InterceptedService<Channel, fn(tonic::Request<()>) -> Result<tonic::Request<()>, Status>>;

/// Writes the current span's trace context into the request's gRPC metadata.
fn inject_trace(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Metadata<'a>(&'a mut tonic::metadata::MetadataMap);
    impl opentelemetry::propagation::Injector for Metadata<'_> {
        fn set(&mut self, key: &str, value: String) {
            let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes());
            if let (Ok(k), Ok(v)) = (key, value.parse()) {
                self.0.insert(k, v);
            }
        }
    }
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut Metadata(req.metadata_mut()))
    });
    Ok(req)
}

/// Certificates for mutual TLS with the back-ends.
#[derive(Debug, Clone)]
pub struct ClientTlsFiles {
    /// The CA that signed the back-ends' certificates.
    pub ca: PathBuf,
    /// This front-end's client certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn client_tls(f: &ClientTlsFiles) -> Result<ClientTlsConfig, CallError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| CallError::BadAddress(p.display().to_string(), e.to_string()))
    };
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&f.ca)?))
        .identity(Identity::from_pem(read(&f.cert)?, read(&f.key)?)))
}

/// One message of a maildrop listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedMessage {
    pub uid: i64,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened {
        account_id: i64,
        messages: Vec<ListedMessage>,
    },
    AuthFailed {
        delay: Duration,
    },
    InUse,
}

/// A maildrop lease held by one POP3 session.
#[derive(Debug, Clone)]
pub struct Lease {
    pub account_id: i64,
    pub token: String,
    pub seconds: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no back-end is reachable: {0}")]
    Unavailable(String),
    #[error("the maildrop lease was lost")]
    LeaseLost,
    /// What was checked before no longer holds (a recipient refused at the end of DATA).
    #[error("{0}")]
    RecipientRefused(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("the mailbox is over quota")]
    Quota,
    #[error("the message is too large")]
    TooLarge,
    #[error("back-end refused: {0}")]
    Refused(String),
    #[error("bad back-end address {0:?}: {1}")]
    BadAddress(String, String),
}

impl From<Status> for CallError {
    fn from(s: Status) -> Self {
        match s.code() {
            Code::Aborted => CallError::LeaseLost,
            Code::FailedPrecondition => CallError::RecipientRefused(s.message().to_string()),
            Code::ResourceExhausted => CallError::Quota,
            Code::OutOfRange => CallError::TooLarge,
            Code::NotFound => CallError::NotFound(s.message().to_string()),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                CallError::Unavailable(s.message().to_string())
            }
            _ => CallError::Refused(s.message().to_string()),
        }
    }
}

/// The back-ends a front-end talks to.
#[derive(Debug)]
pub struct Backends {
    entries: Vec<BackendEntry>,
    pool: RwLock<Arc<Pool>>,
    next: AtomicUsize,
    metrics: Arc<Metrics>,
    tls: Option<ClientTlsConfig>,
    call_timeout: Duration,
}

/// The current call targets and a lazily connecting channel to each.
#[derive(Debug, Default)]
struct Pool {
    targets: Vec<Target>,
    channels: Vec<Channel>,
}

/// A message arriving from a back-end, chunk by chunk.
pub struct MessageChunks(tonic::Streaming<pb::Chunk>);

impl MessageChunks {
    /// The next chunk, or `None` at the end of the message.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        Ok(self.0.message().await?.map(|c| c.data))
    }
}

impl Backends {
    /// Prepares connections to `urls` (`host:port`, optionally `http(s)://`); they connect
    /// on first use and reconnect by themselves. Names are dialled as they are until
    /// `discover` resolves them.
    pub fn new(
        urls: &[String],
        call_timeout: Duration,
        metrics: Arc<Metrics>,
        tls: Option<&ClientTlsFiles>,
    ) -> Result<Backends, CallError> {
        if urls.is_empty() {
            return Err(CallError::BadAddress(
                String::new(),
                "no back-end configured".into(),
            ));
        }
        let entries = urls
            .iter()
            .map(|u| BackendEntry::parse(u).map_err(|e| CallError::BadAddress(u.clone(), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let backends = Backends {
            pool: RwLock::new(Arc::default()),
            next: AtomicUsize::new(0),
            metrics,
            tls: tls.map(client_tls).transpose()?,
            call_timeout,
            entries,
        };
        backends.install(discovery::initial(&backends.entries))?;
        Ok(backends)
    }

    /// A channel for one target: by address when resolved, checking the certificate
    /// against the configured name.
    fn channel(&self, t: &Target) -> Result<Channel, CallError> {
        let e = &t.entry;
        let default_scheme = if self.tls.is_some() { "https" } else { "http" };
        let scheme = e.scheme.as_deref().unwrap_or(default_scheme);
        let authority = match (t.addr, e.literal()) {
            (Some(a), _) | (None, Some(a)) => a.to_string(),
            (None, None) => format!("{}:{}", e.host, e.port),
        };
        let url = format!("{scheme}://{authority}");
        let bad =
            |err: tonic::transport::Error| CallError::BadAddress(url.clone(), err.to_string());
        let mut endpoint = Endpoint::from_shared(url.clone()).map_err(bad)?;
        if let Some(c) = &self.tls {
            endpoint = endpoint
                .tls_config(c.clone().domain_name(e.host.clone()))
                .map_err(bad)?;
        }
        Ok(endpoint
            .connect_timeout(Duration::from_secs(2))
            .timeout(self.call_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect_lazy())
    }

    /// Makes `targets` the call targets, keeping the channels of those already known.
    fn install(&self, targets: Vec<Target>) -> Result<(), CallError> {
        let old = self.pool();
        let mut channels = Vec::with_capacity(targets.len());
        for t in &targets {
            match old.targets.iter().position(|o| o == t) {
                Some(i) => channels.push(old.channels[i].clone()),
                None => channels.push(self.channel(t)?),
            }
        }
        *self.pool.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(Pool { targets, channels });
        Ok(())
    }

    fn pool(&self) -> Arc<Pool> {
        self.pool.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The addresses calls go to now (`host:port` for a name not resolved yet).
    pub fn targets(&self) -> Vec<String> {
        let pool = self.pool();
        let show = |t: &Target| match t.addr {
            Some(a) => a.to_string(),
            None => format!("{}:{}", t.entry.host, t.entry.port),
        };
        pool.targets.iter().map(show).collect()
    }

    /// Resolves the back-end names now and then every `every` until `shutdown`, so a
    /// headless Service's pods all get calls. Does nothing when every entry is an address.
    pub fn discover(self: &Arc<Self>, every: Duration, shutdown: CancellationToken) {
        if !discovery::has_names(&self.entries) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.refresh().await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    async fn refresh(&self) {
        let lookup = |host: String, port: u16| async move {
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .map(|a| a.collect())
        };
        let old = self.pool();
        let targets = discovery::refresh(&self.entries, &old.targets, lookup).await;
        if targets != old.targets {
            match self.install(targets) {
                Ok(()) => tracing::info!(targets = ?self.targets(), "back-end addresses changed"),
                Err(e) => tracing::warn!(error = %e, "cannot use the new back-end addresses"),
            }
        }
    }

    /// The front-end's metrics (shared with the protocol drivers).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs an idempotent call, moving to the next back-end while one is unreachable.
    async fn idempotent<T, F, Fut>(&self, method: &'static str, call: F) -> Result<T, CallError>
    where
        F: Fn(Traced) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let began = Instant::now();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = Status::unavailable("no back-end configured");
        let span = tracing::info_span!("rpc", otel.name = method, otel.kind = "client");
        let pool = self.pool();
        for i in 0..pool.channels.len() {
            let channel = pool.channels[(start + i) % pool.channels.len()].clone();
            let traced = InterceptedService::new(channel, inject_trace as _);
            match call(traced).instrument(span.clone()).await {
                Err(s) if s.code() == Code::Unavailable => last = s,
                other => {
                    self.metrics.call(method, other.is_ok(), began.elapsed());
                    return other.map_err(CallError::from);
                }
            }
        }
        self.metrics.call(method, false, began.elapsed());
        Err(last.into())
    }

    /// Authenticates, takes the maildrop lease and lists the messages.
    pub async fn open(
        &self,
        user: &str,
        password: &str,
        client: &str,
        lease: &Lease,
    ) -> Result<OpenOutcome, CallError> {
        use pb::open_reply::Outcome;
        let req = pb::OpenRequest {
            credentials: Some(credentials(user, password, client)),
            session_token: lease.token.clone(),
            lease_seconds: lease.seconds,
        };
        let reply = self.idempotent("open", |ch| {
            let req = req.clone();
            async move { MaildropClient::new(ch).open(req).await }
        });
        match reply.await?.into_inner().outcome {
            Some(Outcome::Opened(m)) => Ok(OpenOutcome::Opened {
                account_id: m.account.map(|a| a.account_id).unwrap_or_default(),
                messages: m
                    .messages
                    .iter()
                    .map(|e| ListedMessage {
                        uid: e.uid,
                        size: e.size,
                    })
                    .collect(),
            }),
            Some(Outcome::AuthFailed(f)) => Ok(OpenOutcome::AuthFailed {
                delay: Duration::from_millis(u64::from(f.delay_ms)),
            }),
            Some(Outcome::InUse(_)) => Ok(OpenOutcome::InUse),
            None => Err(CallError::Refused("empty reply to Open".into())),
        }
    }

    pub async fn renew(&self, lease: &Lease) -> Result<(), CallError> {
        let req = lease_ref(lease);
        self.idempotent("renew", |ch| {
            let req = req.clone();
            async move { MaildropClient::new(ch).renew(req).await }
        })
        .await
        .map(|_| ())
    }

    pub async fn fetch(
        &self,
        lease: &Lease,
        uid: i64,
        top: Option<u32>,
    ) -> Result<MessageChunks, CallError> {
        let req = pb::FetchRequest {
            lease: Some(lease_ref(lease)),
            uid,
            top_lines: top,
        };
        let stream = self
            .idempotent("fetch", |ch| {
                let req = req.clone();
                async move { MaildropClient::new(ch).fetch(req).await }
            })
            .await?;
        Ok(MessageChunks(stream.into_inner()))
    }

    /// Whole small messages among `uids`, in the order asked; those left out (too big, gone,
    /// lease lost) are to be fetched one by one with `fetch`, which says why.
    pub async fn fetch_many(
        &self,
        lease: &Lease,
        uids: Vec<i64>,
    ) -> Result<Vec<(i64, Vec<u8>)>, CallError> {
        let req = pb::FetchManyRequest {
            lease: Some(lease_ref(lease)),
            uids,
        };
        let reply = self
            .idempotent("fetch_many", |ch| {
                let req = req.clone();
                async move { MaildropClient::new(ch).fetch_many(req).await }
            })
            .await?;
        let messages = reply.into_inner().messages;
        Ok(messages.into_iter().map(|m| (m.uid, m.data)).collect())
    }

    /// Deletes `uids` and ends the lease; returns how many were deleted.
    pub async fn commit(&self, lease: &Lease, uids: Vec<i64>) -> Result<u32, CallError> {
        let req = pb::CommitRequest {
            lease: Some(lease_ref(lease)),
            deleted_uids: uids,
        };
        let reply = self
            .idempotent("commit", |ch| {
                let req = req.clone();
                async move { MaildropClient::new(ch).commit(req).await }
            })
            .await?;
        Ok(reply.into_inner().deleted)
    }

    pub async fn release(&self, lease: &Lease) -> Result<(), CallError> {
        let req = lease_ref(lease);
        self.idempotent("release", |ch| {
            let req = req.clone();
            async move { MaildropClient::new(ch).release(req).await }
        })
        .await
        .map(|_| ())
    }
}

fn credentials(user: &str, password: &str, client: &str) -> pb::Credentials {
    pb::Credentials {
        username: user.to_string(),
        password: password.to_string(),
        client_address: client.to_string(),
    }
}

fn lease_ref(l: &Lease) -> pb::LeaseRef {
    pb::LeaseRef {
        account_id: l.account_id,
        session_token: l.token.clone(),
        lease_seconds: l.seconds,
    }
}

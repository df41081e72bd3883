//! The front-end's gRPC adapter to the back-ends: the only front-end module that knows tonic.
//!
//! One job: call a back-end and hand back domain values. Calls go round-robin over every
//! configured back-end, those that say they serve first (`health`); an idempotent call that finds a back-end down (UNAVAILABLE) is tried
//! on the next one, so a dead back-end costs a session nothing. Every call carries all of its
//! state, so no back-end is tied to a session. Each call is a client span whose trace
//! context travels in the request metadata (W3C `traceparent`), so the back-end's span for it
//! joins the same trace.
//!
//! Parts: this file (the back-ends, the call with its retries, the one error mapping),
//! `channels` (channels, TLS, discovery, trace context), `health` (which back-ends serve),
//! `pop3` and `smtp` (each protocol's calls, speaking domain types).
mod channels;
mod health;
mod pop3;
mod smtp;

pub use channels::ClientTlsFiles;
pub use pop3::{Lease, ListedMessage, MessageChunks, OpenOutcome};
pub use smtp::Origin;

use crate::discovery::{self, BackendEntry, Target};
use crate::metrics::Metrics;
use bridgehead_proto::v1 as pb;
use channels::{client_tls, inject_trace, Traced};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use std::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic::{Code, Status};
use tracing::Instrument;

/// The current call targets and a lazily connecting channel to each.
#[derive(Debug, Default)]
pub(super) struct Pool {
    pub(super) targets: Vec<Target>,
    pub(super) channels: Vec<Channel>,
    /// Whether each back-end said it serves when last asked (`health.rs`).
    pub(super) serving: Vec<Arc<std::sync::atomic::AtomicBool>>,
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
    /// The message breaks its sender's published policy (DMARC p=reject).
    #[error("refused by policy: {0}")]
    PolicyRejected(String),
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
            Code::PermissionDenied => CallError::PolicyRejected(s.message().to_string()),
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
        let serving = health::snapshot(&pool.serving);
        for i in health::order(serving, pool.channels.len(), start) {
            let channel = pool.channels[i].clone();
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
}

/// A login's credentials as the back-ends take them (POP3 and SMTP alike).
fn credentials(user: &str, password: &str, client: &str) -> pb::Credentials {
    pb::Credentials {
        username: user.to_string(),
        password: password.to_string(),
        client_address: client.to_string(),
    }
}

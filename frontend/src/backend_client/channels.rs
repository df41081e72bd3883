//! Which channels calls go over: one lazily connecting channel per back-end address (kept
//! across refreshes of the names), mutual TLS with the back-ends, and the trace context that
//! every request carries (W3C `traceparent` in the metadata).
use super::{Backends, CallError, Pool};
use crate::discovery::{self, Target};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Status;

/// A channel whose requests carry the caller's trace context.
pub(super) type Traced =
    InterceptedService<Channel, fn(tonic::Request<()>) -> Result<tonic::Request<()>, Status>>;

/// Writes the current span's trace context into the request's gRPC metadata.
pub(super) fn inject_trace(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
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

pub(super) fn client_tls(f: &ClientTlsFiles) -> Result<ClientTlsConfig, CallError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| CallError::BadAddress(p.display().to_string(), e.to_string()))
    };
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&f.ca)?))
        .identity(Identity::from_pem(read(&f.cert)?, read(&f.key)?)))
}

impl Backends {
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
    pub(super) fn install(&self, targets: Vec<Target>) -> Result<(), CallError> {
        let old = self.pool();
        let mut channels = Vec::with_capacity(targets.len());
        let mut serving = Vec::with_capacity(targets.len());
        for t in &targets {
            match old.targets.iter().position(|o| o == t) {
                Some(i) => {
                    channels.push(old.channels[i].clone());
                    serving.push(old.serving[i].clone());
                }
                None => {
                    channels.push(self.channel(t)?);
                    serving.push(Arc::new(AtomicBool::new(true)));
                }
            }
        }
        let pool = Pool {
            targets,
            channels,
            serving,
        };
        *self.pool.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pool);
        Ok(())
    }

    pub(super) fn pool(&self) -> Arc<Pool> {
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
}

//! The outbound transport: every back-end runs workers that claim due queue entries, send
//! them to the next hop (a configured route, the smart host, or the domain's MX hosts),
//! record per-recipient results, retry with backoff, and report failures, delays and (when
//! asked) successes to the sender as RFC 3464 DSNs.
//!
//! Parts: `route` (where mail for a domain goes, under which TLS policy: `sts` MTA-STS,
//! `dane` TLSA lookups, `policy` their pure parts), `client` (the SMTP client), `fit` (what
//! may go to a hop, by its extensions), `worker` (one attempt and its settlement), `report`
//! (who gets a DSN and how it is stored).
pub mod client;
mod dane;
mod fit;
pub mod policy;
mod report;
pub mod route;
mod sts;
pub mod tlsrpt;
mod worker;

use crate::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a connection to a next hop is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Opportunistic,
    /// STARTTLS or no delivery; the certificate is not checked.
    Required,
    /// STARTTLS or no delivery, and the certificate must verify for the host's name (the
    /// Mozilla roots, and the extra CAs the operator names).
    Verify,
    /// STARTTLS or no delivery, and the certificate must match the host's DNSSEC-validated
    /// TLSA records (`Target::tlsa`; a route with none is not used).
    Dane,
    Implicit,
}

impl TlsMode {
    /// Whether the server's certificate is checked (WebPKI or DANE): what REQUIRETLS needs.
    pub fn authenticated(self) -> bool {
        matches!(self, TlsMode::Verify | TlsMode::Dane)
    }

    /// Whether mail may only go over TLS (no STARTTLS: not sent).
    pub fn mandatory(self) -> bool {
        matches!(self, TlsMode::Required | TlsMode::Verify | TlsMode::Dane)
    }

    pub fn parse(s: &str) -> Option<TlsMode> {
        Some(match s {
            "none" => TlsMode::None,
            "opportunistic" => TlsMode::Opportunistic,
            "required" => TlsMode::Required,
            "verify" => TlsMode::Verify,
            "dane" => TlsMode::Dane,
            "implicit" => TlsMode::Implicit,
            _ => return None,
        })
    }
}

/// One server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host's name (for TLS and diagnostics; dialled when `ip` is not known).
    pub host: String,
    /// The address to dial, when the host's name was resolved already (MX hosts).
    pub ip: Option<std::net::IpAddr>,
    pub port: u16,
    pub tls: TlsMode,
    /// The host's usable DANE TLSA records, under `TlsMode::Dane`.
    pub tlsa: Option<std::sync::Arc<Vec<policy::dane::Tlsa>>>,
    /// The policy its sessions are counted under for TLS-RPT (MX hosts; not routes).
    pub report: Option<std::sync::Arc<tlsrpt::report::ReportPolicy>>,
    pub auth: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Workers per back-end; 0 turns the transport off.
    pub workers: usize,
    /// Name in EHLO, in Reporting-MTA and in MAILER-DAEMON@.
    pub hostname: String,
    pub poll_interval: Duration,
    /// How long a claim lasts; renewed every third of it while an attempt runs.
    pub claim: Duration,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// After this, pending recipients fail.
    pub lifetime: Duration,
    /// After this, a delay notice goes out once (0: never).
    pub delay_warning: Duration,
    pub command_timeout: Duration,
    /// Where reports about bounces go (never back out); default postmaster@<first domain>.
    pub postmaster: Option<String>,
    /// Originals larger than this are returned as headers only.
    pub max_returned: usize,
    /// Opens the routes' stored AUTH secrets.
    pub secrets: crate::secrets::Secrets,
    /// The DNS server to ask (MX and address records) instead of the system's resolvers: a
    /// local validating resolver, or a test's own server.
    pub dns_server: Option<std::net::SocketAddr>,
    /// The port of MX hosts (25; another only for test setups).
    pub mx_port: u16,
    /// The DNSSEC-validating resolver TLSA records are asked of (DANE); none: no DANE.
    pub dane_resolver: Option<std::net::SocketAddr>,
    /// The port of MTA-STS policy hosts (443, as RFC 8461 says; another only for tests).
    pub mta_sts_port: u16,
    /// The MTA-STS policy this cluster publishes for its own domains, if any.
    pub publish_sts: Option<policy::mta_sts::Policy>,
    /// TLS-RPT reporting period (a day; shorter only for tests).
    pub tls_report_period: Duration,
    /// How long a domain's DKIM keys are kept after reading them (a rotation reaches every
    /// back-end within it).
    pub dkim_keys_kept: Duration,
    /// Message tracking's recorder (each attempt's results, reports made).
    pub events: crate::tracking::Events,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            workers: 4,
            hostname: "localhost".into(),
            poll_interval: Duration::from_secs(1),
            claim: Duration::from_secs(600),
            first_retry: Duration::from_secs(300),
            max_retry: Duration::from_secs(3600),
            lifetime: Duration::from_secs(5 * 24 * 3600),
            delay_warning: Duration::from_secs(4 * 3600),
            command_timeout: Duration::from_secs(300),
            postmaster: None,
            max_returned: 1024 * 1024,
            secrets: Default::default(),
            dns_server: None,
            mx_port: 25,
            dane_resolver: None,
            mta_sts_port: 443,
            publish_sts: None,
            dkim_keys_kept: Duration::from_secs(60),
            events: Default::default(),
            tls_report_period: Duration::from_secs(86400),
        }
    }
}

impl TransportConfig {
    /// Backoff after `attempts` attempts: first_retry doubling, at most max_retry.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).clamp(0, 16);
        self.first_retry.saturating_mul(factor).min(self.max_retry)
    }
}

/// Fails the pending recipients of a queued message at the administrator's request and
/// tells the sender (`admin queue delete --bounce`). `Ok(false)` while a worker holds it.
pub async fn bounce(
    store: &Store,
    config: &TransportConfig,
    queue_id: &str,
) -> Result<bool, crate::StoreError> {
    let Some(m) = store.claim_one(queue_id, "admin", 60).await? else {
        return Ok(false);
    };
    let content = store.content(m.content_id).await?;
    let results = m
        .recipients
        .iter()
        .filter(|r| r.status == crate::store::DeliveryStatus::Pending)
        .map(|r| crate::store::RecipientResult {
            address: r.address.clone(),
            status: crate::store::DeliveryStatus::Failed,
            dsn_status: "5.0.0".into(),
            diagnostic: "removed from the queue by the administrator".into(),
            remote_mta: String::new(),
            notify_passed_on: false,
        })
        .collect();
    report::settle(
        store,
        config,
        "admin",
        &m,
        results,
        &content,
        chrono::Utc::now(),
    )
    .await?;
    Ok(true)
}

/// Starts the workers, signing with `signer`; they stop when `shutdown` is cancelled, after
/// their current attempt.
pub fn spawn(
    store: Store,
    config: TransportConfig,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    signer: std::sync::Arc<crate::mailauth::signer::Signer>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    if config.workers == 0 {
        return Vec::new();
    }
    let recorder = std::sync::Arc::new(tlsrpt::Recorder::new(config.tls_report_period));
    let router = std::sync::Arc::new(route::Router::new(&config, recorder.clone()));
    let config = std::sync::Arc::new(config);
    let mut tasks: Vec<_> = (0..config.workers)
        .map(|n| {
            let name = format!("{}/{}/{}", config.hostname, std::process::id(), n);
            let w = worker::Worker::new(
                name,
                store.clone(),
                router.clone(),
                config.clone(),
                metrics.clone(),
                signer.clone(),
                recorder.clone(),
            );
            tokio::spawn(w.run(shutdown.clone()))
        })
        .collect();
    let reports = tlsrpt::send::Chores {
        store,
        recorder,
        router,
        config,
    };
    tasks.push(tokio::spawn(reports.run(shutdown)));
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_maximum() {
        let c = TransportConfig::default();
        assert_eq!(c.backoff(1), Duration::from_secs(300));
        assert_eq!(c.backoff(2), Duration::from_secs(600));
        assert_eq!(c.backoff(3), Duration::from_secs(1200));
        assert_eq!(c.backoff(5), Duration::from_secs(3600));
        assert_eq!(c.backoff(50), Duration::from_secs(3600));
    }
}

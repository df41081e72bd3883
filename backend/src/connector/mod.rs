//! The POP3 connector: brings mail from outside POP3 mailboxes into local mailboxes, per user
//! or as a global mailbox routed by its To and Cc headers (the seed's "Connector for POP3
//! Mailboxes"). Every back-end runs a worker; a connector is polled by one at a time.
//!
//! Parts: `pop3_client` (the protocol), `route` (who gets a message, pure), `poll` (one poll:
//! exactly-once delivery with the UIDL recorded in the delivering transaction).
mod poll;
pub mod pop3_client;
pub mod route;

use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Workers per back-end; 0 turns polling off here.
    pub workers: usize,
    pub hostname: String,
    /// How often idle workers look for a due connector.
    pub poll_interval: Duration,
    /// How long a claim lasts (a poll must finish within it).
    pub claim: Duration,
    pub timeout: Duration,
    /// Default undeliverable mailbox (else postmaster@<first domain>).
    pub postmaster: Option<String>,
    /// Opens the connectors' stored passwords.
    pub secrets: crate::secrets::Secrets,
    /// Message tracking's recorder (messages fetched).
    pub events: crate::tracking::Events,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        ConnectorConfig {
            workers: 1,
            hostname: "localhost".into(),
            poll_interval: Duration::from_secs(1),
            claim: Duration::from_secs(1800),
            timeout: Duration::from_secs(120),
            secrets: Default::default(),
            postmaster: None,
            events: Default::default(),
        }
    }
}

/// Starts the workers; they stop when `shutdown` is cancelled, after their current poll.
pub fn spawn(
    store: Store,
    config: ConnectorConfig,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let config = Arc::new(config);
    (0..config.workers)
        .map(|n| {
            let name = format!("{}/{}/pop3-{}", config.hostname, std::process::id(), n);
            tokio::spawn(run(
                name,
                store.clone(),
                config.clone(),
                metrics.clone(),
                shutdown.clone(),
            ))
        })
        .collect()
}

async fn run(
    name: String,
    store: Store,
    config: Arc<ConnectorConfig>,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: CancellationToken,
) {
    let claim = config.claim.as_secs().clamp(1, u64::from(u32::MAX)) as u32;
    while !shutdown.is_cancelled() {
        match store.claim_connector(&name, claim).await {
            Ok(Some(c)) => poll::poll(&store, &config, &metrics, &name, &c).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(worker = %name, error = %e, "cannot claim a POP3 connector"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
}

//! The store's small periodic chores, run by every back-end every few seconds: queue
//! metrics, this back-end's heartbeat (`nodes`), pruning of expired console sessions and of
//! message events past their retention, pruning of the bookkeeping tables (submission tokens older than a day, expired
//! login-failure and unknown-recipient counts, addresses an account has not logged in from
//! for a month), so floods of messages, guessed names or probed recipients leave no lasting
//! rows, and a sweep of content nobody references (a race of two deleting transactions can
//! leave one), a bounded batch per round, walking the table by id. Each chore is one
//! statement, idempotent, safe on any number of back-ends.
use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(5);
/// Contents looked at per round by the sweep (a million in under two hours).
const SWEEP_BATCH: i64 = 1000;
/// Only content at least this old is swept: anything younger may still be on its way to
/// being referenced.
const SWEEP_MIN_AGE_SECS: u32 = 3600;

/// What the chores need to know.
#[derive(Debug, Clone)]
pub struct Chores {
    /// The login-failure window, in seconds.
    pub auth_window_secs: u32,
    /// The unknown-recipient window, in seconds.
    pub harvest_window_secs: u32,
    /// Message-tracking events older than this are pruned.
    pub event_retention_days: u32,
    /// This back-end, as its heartbeat reports it.
    pub node: crate::store::NodeRow,
}

/// Runs the chores until `shutdown` is cancelled.
pub fn spawn(
    store: Store,
    chores: Chores,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut swept_to = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            if run_once(&store, &chores, &metrics).await {
                swept_to = sweep(&store, swept_to).await;
            }
        }
    })
}

/// One round of the chores; false when PostgreSQL is away.
async fn run_once(store: &Store, chores: &Chores, metrics: &Metrics) -> bool {
    match store.queue_stats().await {
        Ok((depth, oldest)) => {
            metrics.queue_depth.set(depth);
            metrics.queue_oldest_seconds.set(oldest);
        }
        // PostgreSQL is away: the health check says so; nothing else to do now.
        Err(_) => return false,
    }
    if let Err(e) = store.heartbeat(&chores.node).await {
        tracing::warn!(error = %e, "recording this back-end's heartbeat failed");
    }
    if let Err(e) = store.prune_console().await {
        tracing::warn!(error = %e, "pruning expired console sessions failed");
    }
    if let Err(e) = store.prune_events(chores.event_retention_days).await {
        tracing::warn!(error = %e, "pruning old message events failed");
    }
    if let Err(e) = store.prune_submissions().await {
        tracing::warn!(error = %e, "pruning old submission tokens failed");
    }
    let (auth, harvest) = (chores.auth_window_secs, chores.harvest_window_secs);
    if let Err(e) = store.prune_penalties(auth, harvest).await {
        tracing::warn!(error = %e, "pruning expired penalty counts failed");
    }
    true
}

/// One batch of the content sweep after id `from`; returns where the next starts.
async fn sweep(store: &Store, from: i64) -> i64 {
    match store
        .sweep_contents(from, SWEEP_BATCH, SWEEP_MIN_AGE_SECS)
        .await
    {
        Ok((swept, next)) => {
            if swept > 0 {
                tracing::info!(swept, "unreferenced content swept");
            }
            next.unwrap_or(0)
        }
        Err(e) => {
            tracing::warn!(error = %e, "sweeping unreferenced content failed");
            from
        }
    }
}

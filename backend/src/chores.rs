//! The store's small periodic chores, run by every back-end every few seconds: queue
//! metrics, and pruning of the bookkeeping tables (submission tokens older than a day,
//! expired login-failure and unknown-recipient counts, addresses an account has not logged
//! in from for a month), so floods of messages, guessed names or probed recipients leave no
//! lasting rows. Each chore is one statement, idempotent, safe on any number of back-ends.
use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(5);

/// What the chores need to know.
#[derive(Debug, Clone)]
pub struct Chores {
    /// The login-failure window, in seconds.
    pub auth_window_secs: u32,
    /// The unknown-recipient window, in seconds.
    pub harvest_window_secs: u32,
}

/// Runs the chores until `shutdown` is cancelled.
pub fn spawn(
    store: Store,
    chores: Chores,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            run_once(&store, &chores, &metrics).await;
        }
    })
}

async fn run_once(store: &Store, chores: &Chores, metrics: &Metrics) {
    match store.queue_stats().await {
        Ok((depth, oldest)) => {
            metrics.queue_depth.set(depth);
            metrics.queue_oldest_seconds.set(oldest);
        }
        // PostgreSQL is away: the health check says so; nothing else to do now.
        Err(_) => return,
    }
    if let Err(e) = store.prune_submissions().await {
        tracing::warn!(error = %e, "pruning old submission tokens failed");
    }
    let (auth, harvest) = (chores.auth_window_secs, chores.harvest_window_secs);
    if let Err(e) = store.prune_penalties(auth, harvest).await {
        tracing::warn!(error = %e, "pruning expired penalty counts failed");
    }
}

//! Message tracking: what happened to each message, recorded as events in PostgreSQL
//! (`message_events`, with the per-minute `traffic_minutes` the overview charts).
//!
//! One job: take events from the hot paths without making them wait. `Events::record` puts
//! an event on a bounded channel and returns (never blocks, never fails the caller); one
//! writer task per back-end writes whatever has gathered as one statement, at most every
//! `FLUSH_EVERY` or every `BATCH` events. Invariants: an event is recorded only after what
//! it tells of is committed; a full channel (PostgreSQL away for long) drops events and
//! counts them (`tracking_events_dropped_total`) rather than hold mail up; on shutdown the
//! writer drains what is queued before it stops. Pruned by the chores after the retention.
use crate::store::{EventRow, Store};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events gathered before a write at most.
const BATCH: usize = 2048;
/// The longest an event waits to be written.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Events waiting at most (then new ones are dropped and counted).
const CAPACITY: usize = 65_536;

/// Whether events are recorded, and how long they are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackingConfig {
    pub enabled: bool,
    pub retention_days: u32,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            enabled: true,
            retention_days: 14,
        }
    }
}

/// What a message went through; the text is what the store and the console show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Taken in from SMTP (or released from quarantine) and committed.
    Accepted,
    Delivered,
    Deferred,
    /// Failed for good (a recipient; a DSN may follow).
    Bounced,
    /// A delivery status notification was made.
    Dsn,
    Quarantined,
    /// Brought in by a POP3 connector.
    Fetched,
    /// An operator's action (hold, release, retry, delete, bounce).
    Operator,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Accepted => "accepted",
            Kind::Delivered => "delivered",
            Kind::Deferred => "deferred",
            Kind::Bounced => "bounced",
            Kind::Dsn => "dsn",
            Kind::Quarantined => "quarantined",
            Kind::Fetched => "fetched",
            Kind::Operator => "operator",
        }
    }
}

/// One event, as its recorder knows it.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub queue_id: String,
    pub message_id: String,
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub detail: String,
}

/// The recorder's handle: cheap to clone, shared by every path that records.
#[derive(Clone)]
pub struct Events {
    tx: Option<mpsc::Sender<EventRow>>,
    node: Arc<str>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("node", &self.node).finish()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::off()
    }
}

impl Events {
    /// A recorder that records nothing (tracking off, or a tool that needs none).
    pub fn off() -> Events {
        Events {
            tx: None,
            node: Arc::from(""),
            dropped: Default::default(),
        }
    }

    /// Records `e` as `kind`, now, on this node.
    pub fn record(&self, kind: Kind, e: Event) {
        let Some(tx) = &self.tx else { return };
        let row = EventRow {
            at: Utc::now(),
            queue_id: e.queue_id,
            message_id: e.message_id,
            kind: kind.as_str().to_string(),
            node: self.node.to_string(),
            // Searched for in lower case (tracking is by address, not by its spelling).
            mail_from: e.mail_from.to_lowercase(),
            recipients: e.recipients.iter().map(|r| r.to_lowercase()).collect(),
            detail: e.detail,
        };
        if tx.try_send(row).is_err() {
            self.dropped.inc();
        }
    }
}

/// Starts the writer; returns the handle to record with and the task (it ends after
/// `shutdown`, once what was queued is written).
pub fn spawn(
    store: Store,
    node: &str,
    dropped: prometheus_client::metrics::counter::Counter,
    shutdown: CancellationToken,
) -> (Events, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CAPACITY);
    let events = Events {
        tx: Some(tx),
        node: Arc::from(node),
        dropped,
    };
    (events, tokio::spawn(write(store, rx, shutdown)))
}

async fn write(store: Store, mut rx: mpsc::Receiver<EventRow>, shutdown: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let stopping = tokio::select! {
            _ = shutdown.cancelled() => true,
            n = rx.recv_many(&mut batch, BATCH) => n == 0,
        };
        if !stopping && batch.len() < BATCH {
            // Let more gather for a moment: one statement for many events.
            let deadline = tokio::time::sleep(FLUSH_EVERY);
            tokio::pin!(deadline);
            while batch.len() < BATCH {
                let room = BATCH - batch.len();
                tokio::select! {
                    _ = &mut deadline => break,
                    n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                }
            }
        }
        if stopping {
            while let Ok(e) = rx.try_recv() {
                batch.push(e);
            }
        }
        for part in batch.chunks(BATCH) {
            if let Err(e) = store.record_events(part).await {
                tracing::warn!(error = %e, events = part.len(), "message events not recorded");
            }
        }
        batch.clear();
        if stopping {
            return;
        }
    }
}

/// Records a committed submission: one `accepted` event naming where it went (the common
/// case is one row per message), or `quarantined`.
pub fn record_accepted(events: &Events, mut e: Event, trail: crate::submit::Trail) {
    e.message_id = trail.message_id;
    if let Some(reason) = trail.quarantined {
        e.recipients = trail.local;
        e.detail = format!("{}; held in quarantine: {reason}", e.detail);
        events.record(Kind::Quarantined, e);
        return;
    }
    let mut went = Vec::new();
    if !trail.local.is_empty() {
        went.push(format!("stored in {}", trail.local.join(", ")));
    }
    if !trail.outside.is_empty() {
        went.push(format!("queued for {}", trail.outside.join(", ")));
    }
    e.detail = format!("{}; {}", e.detail, went.join("; "));
    e.recipients = trail.local;
    e.recipients.extend(trail.outside);
    events.record(Kind::Accepted, e);
}

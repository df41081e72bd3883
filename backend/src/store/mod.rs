//! The PostgreSQL mailbox store: the only module that knows sqlx.
//!
//! Invariants kept here:
//! * a message row is written in the same transaction as every other recipient's row, after
//!   its content; callers hear "stored" only after COMMIT;
//! * deletions happen only in `maildrop::commit`, in one transaction, under the caller's lease;
//! * content rows are removed only when no message, queue entry or quarantined message
//!   points at them any more.
//!
//! Migrations are embedded and applied at start; sqlx takes a PostgreSQL advisory lock
//! while migrating, so several back-ends may start at once.
mod accounts;
mod connectors;
mod console;
mod delivery;
mod directory;
mod dkim;
mod error;
mod maildrop;
mod mta_sts;
mod penalties;
mod quarantine;
mod queue;
mod queue_filter;
mod secrets;
mod tls_reports;
mod tracking;

pub use accounts::{AliasInfo, DomainInfo, UserInfo};
pub use connectors::{Connector, ConnectorStatus};
pub use console::{NodeRow, Operator, SessionLife, SessionRow};
pub use delivery::{ContentWriter, Delivered, Held, Outbound};
pub use directory::{DomainSettings, GroupInfo};
pub use dkim::DkimKey;
pub use maildrop::{MessageEntry, MessageStream};

/// The POP3 hot path's statements by name, for the test that holds their plans to key
/// probes whatever the statistics say (`tests/tests/store_plans.rs`).
pub const HOT_QUERIES: [(&str, &str); 4] = [
    ("listing page", maildrop::LISTING_PAGE_SQL),
    ("fetch", maildrop::FETCH_SQL),
    ("fetch small", maildrop::FETCH_SMALL_SQL),
    ("commit delete", maildrop::COMMIT_DELETE_SQL),
];
pub use mta_sts::CachedPolicy;
pub use penalties::{AuthKeys, LoginCheck, LoginGate, PenaltyCurve};
pub use quarantine::HeldEntry;
pub use queue::{
    DeliveryStatus, QueuedMessage, QueuedRecipient, RecipientResult, Route, Settlement,
};
pub use queue_filter::QueueFilter;
pub use tls_reports::{Count as TlsCount, Counted as TlsCounted};
pub use tracking::{EventRow, TrackQuery, TrafficMinute};

pub use error::{Result, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pooled connection idle this long is pinged before it is used again.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);
/// After a statement failed on a lost connection, how long every connection is pinged first.
const SUSPECT_FOR: Duration = Duration::from_secs(5);

/// Until when (milliseconds since the UNIX epoch) pooled connections are suspect: a statement
/// failed because its connection was gone (PostgreSQL restarted, say), so the others are
/// likely gone too and are pinged, and replaced, rather than each failing a request.
static SUSPECT_UNTIL: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since.as_millis() as u64
}

/// Notes a failed statement; a lost connection makes the pool's connections suspect.
pub(crate) fn note_error(e: &sqlx::Error) {
    let lost = match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        // Class 08: connection exception; 57P: the server is shutting down or restarting.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    };
    if lost {
        SUSPECT_UNTIL.store(now_ms() + SUSPECT_FOR.as_millis() as u64, Ordering::Relaxed);
    }
}

fn suspect() -> bool {
    now_ms() < SUSPECT_UNTIL.load(Ordering::Relaxed)
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects a pool of at most `max_connections` to `url` and applies the migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store> {
        let options = PgConnectOptions::from_str(url)?.application_name("bridgehead-backend");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // A connection in steady use goes straight back to work: pinging it before every
            // query was a round trip per statement. One idle for a while may have been cut
            // (PostgreSQL restarted, a proxy's idle timeout): it is pinged first, and
            // replaced if dead; so is every one for a while after a statement found its
            // connection gone.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= CHECK_AFTER_IDLE || suspect() {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    /// True when PostgreSQL answers (used by the health service).
    /// Whether PostgreSQL answers within two seconds (a cut network never answers at all:
    /// without a bound, the question would hang as long as TCP retransmits).
    pub async fn ping(&self) -> bool {
        let query = sqlx::query("SELECT 1").execute(&self.pool);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), query).await,
            Ok(Ok(_))
        )
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates database `name` on the server at `maintenance_url` (a URL of an existing
/// database, e.g. `postgres`) unless it exists. `name` must be `[a-z0-9_]+`.
pub async fn ensure_database(maintenance_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::InvalidDatabaseName(name.to_string()));
    }
    let mut conn = sqlx::PgConnection::connect(maintenance_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE {name}"); // name checked above
        let created = sqlx::query(&sql).execute(&mut conn).await;
        match created {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {} // raced: exists
            other => {
                other?;
            }
        }
    }
    conn.close().await?;
    Ok(())
}

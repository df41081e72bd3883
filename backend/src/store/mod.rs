//! The PostgreSQL mailbox store: the only module that knows sqlx.
//!
//! Invariants kept here:
//! * a message row is written in the same transaction as every other recipient's row, after
//!   its content; callers hear "stored" only after COMMIT;
//! * deletions happen only in `maildrop::commit`, in one transaction, under the caller's lease;
//! * content rows are removed only when no message points at them any more.
//!
//! Migrations are embedded and applied at start; sqlx takes a PostgreSQL advisory lock
//! while migrating, so several back-ends may start at once.
mod accounts;
mod delivery;
mod maildrop;

pub use accounts::{AliasInfo, DomainInfo, LoginCheck, UserInfo};
pub use delivery::{ContentWriter, Delivered};
pub use maildrop::{MessageEntry, MessageStream};

use crate::error::Result;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    /// True when PostgreSQL answers (used by the health service).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

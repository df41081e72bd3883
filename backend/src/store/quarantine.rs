//! Quarantined messages (a filter's quarantine verdict): listed, read and removed. They are
//! written by `ContentWriter::hold`; a release delivers the content anew (`grpc/quarantine.rs`)
//! and then removes the entry here.
use super::Store;
use crate::store::Result;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One quarantined message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEntry {
    pub id: i64,
    pub queue_id: String,
    pub content_id: i64,
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub reason: String,
    pub client_address: String,
    pub auth_user: String,
    pub created_at: DateTime<Utc>,
    pub size: i64,
}

const COLUMNS: &str = "h.id, h.queue_id, h.content_id, h.mail_from, h.recipients, h.reason,
    h.client_address, h.auth_user, h.created_at,
    COALESCE((SELECT size FROM contents c WHERE c.id = h.content_id), 0) AS size";

impl Store {
    /// The newest `limit` quarantined messages, newest first.
    pub async fn list_held(&self, limit: i64) -> Result<Vec<HeldEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM quarantine h ORDER BY h.id DESC LIMIT $1");
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// One quarantined message by its id or queue id.
    pub async fn held(&self, key: &str) -> Result<Option<HeldEntry>> {
        let id: i64 = key.parse().unwrap_or(-1);
        let sql = format!("SELECT {COLUMNS} FROM quarantine h WHERE h.id = $1 OR h.queue_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(entry))
    }

    /// Removes a quarantined message (and its content when nothing else refers to it);
    /// false when it was not there (already released or removed).
    pub async fn remove_held(&self, id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let content: Option<i64> =
            sqlx::query_scalar("DELETE FROM quarantine WHERE id = $1 RETURNING content_id")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(content) = content {
            super::maildrop::drop_orphan_contents(&mut tx, &[content]).await?;
        }
        tx.commit().await?;
        Ok(content.is_some())
    }
}

fn entry(r: &sqlx::postgres::PgRow) -> HeldEntry {
    HeldEntry {
        id: r.get("id"),
        queue_id: r.get("queue_id"),
        content_id: r.get("content_id"),
        mail_from: r.get("mail_from"),
        recipients: r.get("recipients"),
        reason: r.get("reason"),
        client_address: r.get("client_address"),
        auth_user: r.get("auth_user"),
        created_at: r.get("created_at"),
        size: r.get("size"),
    }
}

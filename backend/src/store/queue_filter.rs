//! The outbound queue a page at a time, filtered as an operator asks (`admin queue list`,
//! the console's queue page, and the actions on everything a filter matches).
//!
//! Invariant: a page is a range scan of the primary key after the last entry of the page
//! before, the filter applied on the way, so page 1,000 costs what page 1 does.
use super::queue::ENTRY_COLUMNS;
use super::{QueuedMessage, Store};
use crate::store::Result;

/// Which entries: every field empty or zero matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// The sender's or a recipient's domain.
    pub domain: String,
    /// Text in the envelope sender.
    pub sender: String,
    /// Text in a recipient's address.
    pub recipient: String,
    /// `held`, `deferred` (tried and failed before), `waiting` (never tried), or "".
    pub status: String,
    /// Only entries at least this old.
    pub min_age_secs: u64,
}

impl QueueFilter {
    pub const STATUSES: [&'static str; 3] = ["held", "deferred", "waiting"];
}

impl Store {
    /// Up to `limit` entries matching `f` after entry `after` (0: from the start), oldest
    /// first.
    pub async fn queue_page(
        &self,
        f: &QueueFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<QueuedMessage>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM outbound_queue q
             WHERE id > $1
               AND ($3 = '' OR lower(q.mail_from) LIKE '%@' || $3
                    OR EXISTS (SELECT 1 FROM outbound_recipients r
                               WHERE r.queue_entry = q.id AND r.address LIKE '%@' || $3))
               AND ($4 = '' OR lower(q.mail_from) LIKE $4)
               AND ($5 = '' OR EXISTS (SELECT 1 FROM outbound_recipients r
                                       WHERE r.queue_entry = q.id AND r.address LIKE $5))
               AND ($6 = '' OR ($6 = 'held' AND q.held)
                    OR ($6 = 'deferred' AND NOT q.held AND q.attempts > 0)
                    OR ($6 = 'waiting' AND NOT q.held AND q.attempts = 0))
               AND q.created_at <= now() - make_interval(secs => $7)
             ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .bind(super::console::like_escape(&f.domain.to_lowercase()))
            .bind(contains(&f.sender))
            .bind(contains(&f.recipient))
            .bind(&f.status)
            .bind(f.min_age_secs.min(100 * 365 * 86_400) as f64)
            .fetch_all(&self.pool)
            .await?;
        self.with_recipients(rows).await
    }

    /// The header block of a queued message's content, for an operator to read.
    pub async fn queue_headers(&self, content_id: i64) -> Result<String> {
        let content = self.content(content_id).await?;
        let end = memchr::memmem::find(&content, b"\r\n\r\n").map_or(content.len(), |e| e + 2);
        Ok(String::from_utf8_lossy(&content[..end.min(64 * 1024)]).into_owned())
    }
}

/// A LIKE pattern for "contains `text`" ("" stays "": no condition).
fn contains(text: &str) -> String {
    match text.trim() {
        "" => String::new(),
        t => format!("%{}%", super::console::like_escape(&t.to_lowercase())),
    }
}

//! The POP3 maildrop: leases (the RFC 1939 lock), listings, message streams, and the
//! deletions of QUIT (RFC 1939 §6, UPDATE state).
//!
//! Invariants: a lease belongs to one session token; messages are deleted only by `commit`,
//! in one transaction, and only while the session's token still holds the lease (or, on a
//! repeated commit, when everything asked for is gone already — commit is idempotent).
use super::Store;
use crate::content::TopCutter;
use crate::store::{Result, StoreError};
use futures::stream::{self, Stream};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::pin::Pin;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageEntry {
    pub uid: i64,
    pub size: i64,
}

/// A message's octets, in order, ending when the message (or its TOP part) ends.
pub type MessageStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>>> + Send>>;

/// A page of a listing: one range scan of the primary key ($1 account, $2 after, $3 through,
/// $4 limit).
pub const LISTING_PAGE_SQL: &str =
    "SELECT uid, size FROM messages WHERE account_id = $1 AND uid > $2 AND uid <= $3
     ORDER BY uid LIMIT $4";

/// One message and its first chunk, while the lease is held ($1 account, $2 uid, $3 token).
pub const FETCH_SQL: &str = "SELECT m.prefix, m.content_id, c.chunks, ch.data
             FROM messages m
             JOIN contents c ON c.id = m.content_id
             JOIN content_chunks ch ON ch.content_id = m.content_id AND ch.seq = 0
             WHERE m.account_id = $1 AND m.uid = $2
               AND EXISTS (SELECT 1 FROM maildrop_leases l
                           WHERE l.account_id = $1 AND l.session_token = $3)";

/// Small whole messages, in the order asked ($1 account, $2 uids, $3 token). Each asked UID
/// is probed by the full key, then its content by its key (the OFFSET keeps the planner from
/// flattening the lateral probe into a join), whatever the planner believes the tables hold:
/// on stale statistics `uid = ANY` scanned the whole mailbox, and a flattened join all of
/// content_chunks.
pub const FETCH_SMALL_SQL: &str = "SELECT w.uid, m.prefix, m.data
             FROM unnest($2::bigint[]) WITH ORDINALITY AS w(uid, ord)
             CROSS JOIN LATERAL (
               SELECT msg.prefix, ch.data FROM messages msg
               JOIN contents c ON c.id = msg.content_id AND c.chunks = 1
               JOIN content_chunks ch ON ch.content_id = msg.content_id AND ch.seq = 0
               WHERE msg.account_id = $1 AND msg.uid = w.uid OFFSET 0) m
             WHERE EXISTS (SELECT 1 FROM maildrop_leases l
                           WHERE l.account_id = $1 AND l.session_token = $3)
             ORDER BY w.ord";

/// QUIT's deletions ($1 account, $2 uids): each UID probed by the full key, as in
/// `FETCH_SMALL_SQL`; message rows are never updated, so their row addresses hold for the
/// statement.
pub const COMMIT_DELETE_SQL: &str = "DELETE FROM messages WHERE ctid = ANY(ARRAY(
               SELECT m.ctid FROM unnest($2::bigint[]) AS d(uid)
               CROSS JOIN LATERAL (SELECT ctid FROM messages
                                   WHERE account_id = $1 AND uid = d.uid OFFSET 0) m))
             RETURNING content_id, size";

impl Store {
    /// Takes the lease for `token`; false when another live session holds it.
    pub async fn acquire_lease(&self, account: i64, token: &str, secs: u32) -> Result<bool> {
        let row = sqlx::query(
            "INSERT INTO maildrop_leases (account_id, session_token, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (account_id) DO UPDATE
               SET session_token = EXCLUDED.session_token, expires_at = EXCLUDED.expires_at
               WHERE maildrop_leases.expires_at < now()
                  OR maildrop_leases.session_token = EXCLUDED.session_token
             RETURNING account_id",
        )
        .bind(account)
        .bind(token)
        .bind(f64::from(secs))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Extends the lease; `LeaseLost` when the token no longer holds it.
    pub async fn renew_lease(&self, account: i64, token: &str, secs: u32) -> Result<()> {
        let done = sqlx::query(
            "UPDATE maildrop_leases SET expires_at = now() + make_interval(secs => $3)
             WHERE account_id = $1 AND session_token = $2",
        )
        .bind(account)
        .bind(token)
        .bind(f64::from(secs))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    pub async fn release_lease(&self, account: i64, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM maildrop_leases WHERE account_id = $1 AND session_token = $2")
            .bind(account)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every message of the mailbox, oldest first (for tools and tests: a POP3 session lists
    /// in pages, `listing_page`).
    pub async fn listing(&self, account: i64) -> Result<Vec<MessageEntry>> {
        self.listing_page(account, 0, i64::MAX, i64::MAX).await
    }

    /// Up to `limit` messages with `after < uid <= through`, oldest first: one range scan of
    /// the primary key, however big the mailbox.
    pub async fn listing_page(
        &self,
        account: i64,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Vec<MessageEntry>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(LISTING_PAGE_SQL)
            .bind(account)
            .bind(after)
            .bind(through)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(uid, size)| MessageEntry { uid, size })
            .collect())
    }

    /// The highest UID in the mailbox now (0 when empty), where a paged listing ends, and the
    /// account's message count (to size a listing for): two key lookups.
    pub async fn listing_end(&self, account: i64) -> Result<(i64, i64)> {
        let (last, count): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT max(uid) FROM messages WHERE account_id = $1),
                    (SELECT message_count FROM accounts WHERE id = $1)",
        )
        .bind(account)
        .fetch_one(&self.pool)
        .await?;
        Ok((last.unwrap_or(0), count.unwrap_or(0)))
    }

    /// Fails with `LeaseLost` unless `token` holds the lease of `account`.
    pub async fn check_lease(&self, account: i64, token: &str) -> Result<()> {
        match self.why_not_found(account, token).await? {
            StoreError::LeaseLost => Err(StoreError::LeaseLost),
            _ => Ok(()),
        }
    }

    /// Streams message `uid` (all of it, or for TOP only the header and `top` body lines),
    /// while `token` holds the lease. The first chunk comes with the lookup: one round trip
    /// for a message of up to one chunk.
    pub async fn fetch(
        &self,
        account: i64,
        token: &str,
        uid: i64,
        top: Option<u32>,
    ) -> Result<MessageStream> {
        let row = sqlx::query(FETCH_SQL)
            .bind(account)
            .bind(uid)
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Err(self.why_not_found(account, token).await?);
        };
        // The per-recipient prefix (Return-Path, Delivered-To) rides in the first chunk: one
        // message on the wire instead of two.
        let head = with_prefix(&row);
        let first = if head.is_empty() {
            Vec::new()
        } else {
            vec![head]
        };
        let state = Fetch {
            pool: self.pool.clone(),
            content_id: row.get("content_id"),
            next_seq: 1,
            chunks: row.get("chunks"),
            ready: first.into_iter().rev().collect(),
            cutter: top.map(TopCutter::new),
        };
        Ok(Box::pin(stream::unfold(state, Fetch::step)))
    }

    /// Whole messages among `uids` that are stored in one chunk, in the order asked, while
    /// `token` holds the lease, up to `max_bytes` of content (the first always comes). Others
    /// are left out: the caller fetches those one by one.
    pub async fn fetch_small(
        &self,
        account: i64,
        token: &str,
        uids: &[i64],
        max_bytes: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(FETCH_SMALL_SQL)
            .bind(account)
            .bind(uids)
            .bind(token)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut total = 0;
        for row in rows {
            let data = with_prefix(&row);
            total += data.len();
            if total > max_bytes && !out.is_empty() {
                break;
            }
            out.push((row.get("uid"), data));
        }
        Ok(out)
    }

    async fn why_not_found(&self, account: i64, token: &str) -> Result<StoreError> {
        let held: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM maildrop_leases WHERE account_id = $1 AND session_token = $2)",
        )
        .bind(account)
        .bind(token)
        .fetch_one(&self.pool)
        .await?;
        Ok(if held {
            StoreError::NoSuchMessage
        } else {
            StoreError::LeaseLost
        })
    }

    /// Deletes `uids` and ends the lease, in one transaction. Returns how many were deleted.
    pub async fn commit(&self, account: i64, token: &str, uids: &[i64]) -> Result<u32> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(
            "SELECT 1 FROM maildrop_leases WHERE account_id = $1 AND session_token = $2 FOR UPDATE",
        )
        .bind(account)
        .bind(token)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !held {
            // A repeated commit (the first reply was lost) finds everything gone: success.
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM messages WHERE account_id = $1 AND uid = ANY($2)",
            )
            .bind(account)
            .bind(uids)
            .fetch_one(&mut *tx)
            .await?;
            return if left == 0 {
                Ok(0)
            } else {
                Err(StoreError::LeaseLost)
            };
        }
        let deleted: Vec<(i64, i64)> = sqlx::query_as(COMMIT_DELETE_SQL)
            .bind(account)
            .bind(uids)
            .fetch_all(&mut *tx)
            .await?;
        let bytes: i64 = deleted.iter().map(|d| d.1).sum();
        sqlx::query(
            "UPDATE accounts SET used_bytes = used_bytes - $2, message_count = message_count - $3
             WHERE id = $1",
        )
        .bind(account)
        .bind(bytes)
        .bind(deleted.len() as i64)
        .execute(&mut *tx)
        .await?;
        let mut contents: Vec<i64> = deleted.iter().map(|d| d.0).collect();
        contents.sort_unstable();
        contents.dedup();
        drop_orphan_contents(&mut tx, &contents).await?;
        sqlx::query("DELETE FROM maildrop_leases WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.len() as u32)
    }
}

/// Removes the given contents that no message refers to any more. Two transactions removing
/// the last two references at once may each leave the content behind: a leak, never a loss.
pub(super) async fn drop_orphan_contents(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[i64],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM contents c WHERE c.id = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.content_id = c.id)
           AND NOT EXISTS (SELECT 1 FROM outbound_queue q WHERE q.content_id = c.id)
           AND NOT EXISTS (SELECT 1 FROM quarantine h WHERE h.content_id = c.id)",
    )
    .bind(ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// State of one message stream: chunks ready to send, then the rest read one by one.
struct Fetch {
    pool: PgPool,
    content_id: i64,
    next_seq: i32,
    chunks: i32,
    ready: Vec<Vec<u8>>, // a stack: the next chunk is last
    cutter: Option<TopCutter>,
}

impl Fetch {
    async fn step(mut self) -> Option<(Result<Vec<u8>>, Fetch)> {
        loop {
            if self.cutter.as_ref().is_some_and(TopCutter::is_done) {
                return None;
            }
            let mut chunk = match self.ready.pop() {
                Some(c) => c,
                None if self.next_seq < self.chunks => match self.read_next().await {
                    Ok(c) => c,
                    Err(e) => {
                        self.chunks = 0; // end the stream after reporting the error
                        return Some((Err(e), self));
                    }
                },
                None => return None,
            };
            if let Some(cutter) = self.cutter.as_mut() {
                let keep = cutter.take(&chunk);
                chunk.truncate(keep);
            }
            if !chunk.is_empty() {
                return Some((Ok(chunk), self));
            }
        }
    }

    async fn read_next(&mut self) -> Result<Vec<u8>> {
        let data = sqlx::query_scalar(
            "SELECT data FROM content_chunks WHERE content_id = $1 AND seq = $2",
        )
        .bind(self.content_id)
        .bind(self.next_seq)
        .fetch_one(&self.pool)
        .await?;
        self.next_seq += 1;
        Ok(data)
    }
}

/// A row's `prefix` (the recipient's Return-Path and Delivered-To) followed by its `data`
/// (the first or only chunk), copied once.
fn with_prefix(row: &sqlx::postgres::PgRow) -> Vec<u8> {
    let (prefix, data): (&[u8], &[u8]) = (row.get("prefix"), row.get("data"));
    [prefix, data].concat()
}

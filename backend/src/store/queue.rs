//! The outbound queue as the transport and the admin API see it: claims, results, routes.
//!
//! Invariants: an entry is worked by one back-end at a time — it is claimed with
//! `FOR UPDATE SKIP LOCKED` and a claim that lasts `claim_until`, after which (its back-end
//! died) another may take it; results are recorded only by the claim's holder; an entry
//! leaves the queue in the same transaction that stores its report (see `ContentWriter::
//! settle_queue_entry`), so a report is never lost or made twice.
use super::Store;
use crate::store::{Result, StoreError};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

/// Where an outbound recipient stands; kept in `outbound_recipients.status` as text (a
/// CHECK constraint admits these three), mapped here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The column's text; anything else (impossible under the constraint) reads as pending,
    /// so it is tried again rather than dropped.
    fn from_db(text: &str) -> DeliveryStatus {
        match text {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub address: String,
    pub notify: u32,
    pub orcpt: String,
    pub status: DeliveryStatus,
    pub dsn_status: String,
    pub diagnostic: String,
    pub remote_mta: String,
}

#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: i64,
    pub queue_id: String,
    pub content_id: i64,
    pub mail_from: String,
    pub ret: String,
    pub envid: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub held: bool,
    pub delay_warned: bool,
    pub size: i64,
    pub recipients: Vec<QueuedRecipient>,
    /// RFC 6152 BODY= as received ("" when not given).
    pub body: String,
    /// RFC 6531 SMTPUTF8 as received.
    pub smtputf8: bool,
    /// RFC 8689 REQUIRETLS as received.
    pub requiretls: bool,
    /// The envelope sender sent, when not `mail_from` (SRS for forwarded mail).
    pub envelope_from: Option<String>,
    /// Headers sent above the content (the ARC set of a forwarded message).
    pub head: Option<Vec<u8>>,
}

/// What became of one recipient in an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientResult {
    pub address: String,
    pub status: DeliveryStatus,
    pub dsn_status: String,
    pub diagnostic: String,
    pub remote_mta: String,
    /// The next hop offered DSN and was given this recipient's NOTIFY: delivered, it reports
    /// success itself (RFC 3461 §5.2.1), so we do not.
    pub notify_passed_on: bool,
}

/// How an attempt leaves the entry.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub results: Vec<RecipientResult>,
    /// When to try the pending recipients again; `None` when none is left.
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_error: String,
    pub delay_warned: bool,
}

/// A configured next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub domain: String,
    pub host: String,
    pub port: u16,
    pub tls: String,
    pub auth_user: Option<String>,
    pub auth_secret: Option<String>,
}

pub(super) const ENTRY_COLUMNS: &str =
    "id, queue_id, content_id, mail_from, ret, envid, created_at, next_attempt_at,
     attempts, last_error, held, delay_warned, body, smtputf8, envelope_from, head, requiretls,
     (SELECT size FROM contents c WHERE c.id = content_id) AS size";

impl Store {
    /// Claims up to `limit` due entries for `worker` for `claim_secs`, counting an attempt.
    pub async fn claim_due(
        &self,
        worker: &str,
        claim_secs: u32,
        limit: i64,
    ) -> Result<Vec<QueuedMessage>> {
        let sql = format!(
            "UPDATE outbound_queue SET claimed_by = $1, claim_until = now() + make_interval(secs => $2),
                    attempts = attempts + 1
             WHERE id IN (SELECT id FROM outbound_queue
                          WHERE NOT held AND next_attempt_at <= now()
                            AND (claim_until IS NULL OR claim_until < now())
                          ORDER BY next_attempt_at LIMIT $3
                          FOR UPDATE SKIP LOCKED)
             RETURNING {ENTRY_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(worker)
            .bind(f64::from(claim_secs))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        self.with_recipients(rows).await
    }

    /// Extends `worker`'s claim on entry `id` to `claim_secs` from now, while it still holds
    /// it; false when the claim has ended or is another's (then `worker` must stop at once).
    pub async fn renew_claim(&self, worker: &str, id: i64, claim_secs: u32) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbound_queue SET claim_until = now() + make_interval(secs => $3)
             WHERE id = $1 AND claimed_by = $2 AND claim_until > now()",
        )
        .bind(id)
        .bind(worker)
        .bind(f64::from(claim_secs))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back claims of `worker` on entries it did not attempt (it is stopping), so
    /// another back-end takes them now rather than when the claim would have run out.
    pub async fn release_claims(&self, worker: &str, ids: &[i64]) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE outbound_queue SET claimed_by = NULL, claim_until = NULL,
                    attempts = greatest(attempts - 1, 0)
             WHERE id = ANY($1) AND claimed_by = $2",
        )
        .bind(ids)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn with_recipients(
        &self,
        rows: Vec<sqlx::postgres::PgRow>,
    ) -> Result<Vec<QueuedMessage>> {
        let mut out: Vec<QueuedMessage> = rows.iter().map(entry).collect();
        if out.is_empty() {
            return Ok(out);
        }
        let ids: Vec<i64> = out.iter().map(|m| m.id).collect();
        let rcpts = sqlx::query(
            "SELECT queue_entry, address, notify, orcpt, status, dsn_status, diagnostic, remote_mta
             FROM outbound_recipients WHERE queue_entry = ANY($1) ORDER BY address",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        for r in rcpts {
            let id: i64 = r.get("queue_entry");
            if let Some(m) = out.iter_mut().find(|m| m.id == id) {
                m.recipients.push(QueuedRecipient {
                    address: r.get("address"),
                    notify: r.get::<i32, _>("notify") as u32,
                    orcpt: r.get("orcpt"),
                    status: DeliveryStatus::from_db(r.get("status")),
                    dsn_status: r.get("dsn_status"),
                    diagnostic: r.get("diagnostic"),
                    remote_mta: r.get("remote_mta"),
                });
            }
        }
        Ok(out)
    }

    /// Claims one entry by queue id (for the admin's bounce); `None` while a worker holds it.
    pub async fn claim_one(
        &self,
        queue_id: &str,
        worker: &str,
        claim_secs: u32,
    ) -> Result<Option<QueuedMessage>> {
        self.queue_get(queue_id).await?;
        let sql = format!(
            "UPDATE outbound_queue SET claimed_by = $2, claim_until = now() + make_interval(secs => $3)
             WHERE queue_id = $1 AND (claim_until IS NULL OR claim_until < now())
             RETURNING {ENTRY_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(queue_id)
            .bind(worker)
            .bind(f64::from(claim_secs))
            .fetch_all(&self.pool)
            .await?;
        Ok(self.with_recipients(rows).await?.pop())
    }

    /// The whole content of a message, as stored.
    pub async fn content(&self, content_id: i64) -> Result<Vec<u8>> {
        let chunks: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT data FROM content_chunks WHERE content_id = $1 ORDER BY seq",
        )
        .bind(content_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(chunks.concat())
    }

    /// Records an attempt that produced no report.
    pub async fn settle_queue_entry(&self, id: i64, worker: &str, s: &Settlement) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        settle(&mut tx, id, worker, s).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every entry, oldest first (for tools and tests; `admin queue list` pages).
    pub async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        self.queue_page(&super::QueueFilter::default(), 0, i64::MAX)
            .await
    }

    pub async fn queue_get(&self, queue_id: &str) -> Result<QueuedMessage> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM outbound_queue WHERE queue_id = $1");
        let rows = sqlx::query(&sql)
            .bind(queue_id)
            .fetch_all(&self.pool)
            .await?;
        self.with_recipients(rows)
            .await?
            .pop()
            .ok_or_else(|| StoreError::UnknownQueueId(queue_id.to_string()))
    }

    /// Makes entries due now: one (`Some`) or all. Returns how many.
    pub async fn queue_retry(&self, queue_id: Option<&str>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE outbound_queue SET next_attempt_at = now() WHERE ($1::text IS NULL OR queue_id = $1)",
        )
        .bind(queue_id)
        .execute(&self.pool)
        .await?;
        require_some(done.rows_affected(), queue_id)
    }

    pub async fn queue_hold(&self, queue_id: &str, held: bool) -> Result<()> {
        let done = sqlx::query("UPDATE outbound_queue SET held = $2 WHERE queue_id = $1")
            .bind(queue_id)
            .bind(held)
            .execute(&self.pool)
            .await?;
        require_some(done.rows_affected(), Some(queue_id)).map(|_| ())
    }

    /// Removes an entry without a report.
    pub async fn queue_delete(&self, queue_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let content: Option<i64> = sqlx::query_scalar(
            "DELETE FROM outbound_queue WHERE queue_id = $1 RETURNING content_id",
        )
        .bind(queue_id)
        .fetch_optional(&mut *tx)
        .await?;
        let content = content.ok_or_else(|| StoreError::UnknownQueueId(queue_id.to_string()))?;
        super::maildrop::drop_orphan_contents(&mut tx, &[content]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_route(&self, r: &Route) -> Result<()> {
        sqlx::query(
            "INSERT INTO routes (domain, host, port, tls, auth_user, auth_secret) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (domain) DO UPDATE SET host = $2, port = $3, tls = $4, auth_user = $5, auth_secret = $6",
        )
        .bind(&r.domain)
        .bind(&r.host)
        .bind(i32::from(r.port))
        .bind(&r.tls)
        .bind(&r.auth_user)
        .bind(&r.auth_secret)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_routes(&self) -> Result<Vec<Route>> {
        let rows = sqlx::query(
            "SELECT domain, host, port, tls, auth_user, auth_secret FROM routes ORDER BY domain",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(route).collect())
    }

    pub async fn remove_route(&self, domain: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM routes WHERE domain = $1")
            .bind(domain)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownRoute(domain.to_string()));
        }
        Ok(())
    }

    /// The route for `domain`: its own, else the smart host ('*'), else none (use MX).
    pub async fn route_for(&self, domain: &str) -> Result<Option<Route>> {
        let row = sqlx::query(
            "SELECT domain, host, port, tls, auth_user, auth_secret FROM routes
             WHERE domain = $1 OR domain = '*' ORDER BY domain = '*' LIMIT 1",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(route))
    }

    /// The first domain served here (for postmaster@ and the like).
    pub async fn primary_domain(&self) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM domains ORDER BY id LIMIT 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// Records results; removes the entry when nobody is pending. Fails with `QueueClaimLost` when
/// the claim is no longer `worker`'s (it expired and another back-end took the entry).
pub(super) async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    worker: &str,
    s: &Settlement,
) -> Result<()> {
    let mine =
        sqlx::query("SELECT 1 FROM outbound_queue WHERE id = $1 AND claimed_by = $2 FOR UPDATE")
            .bind(id)
            .bind(worker)
            .fetch_optional(&mut **tx)
            .await?;
    if mine.is_none() {
        return Err(StoreError::QueueClaimLost);
    }
    for r in &s.results {
        sqlx::query(
            "UPDATE outbound_recipients SET status = $3, dsn_status = $4, diagnostic = $5, remote_mta = $6,
                    last_attempt = now()
             WHERE queue_entry = $1 AND address = $2",
        )
        .bind(id)
        .bind(&r.address)
        .bind(r.status.as_str())
        .bind(&r.dsn_status)
        .bind(&r.diagnostic)
        .bind(&r.remote_mta)
        .execute(&mut **tx)
        .await?;
    }
    match s.next_attempt {
        Some(next) => {
            sqlx::query(
                "UPDATE outbound_queue SET next_attempt_at = $2, last_error = $3, delay_warned = $4,
                        claimed_by = NULL, claim_until = NULL
                 WHERE id = $1",
            )
            .bind(id)
            .bind(next)
            .bind(&s.last_error)
            .bind(s.delay_warned)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            let content: i64 =
                sqlx::query_scalar("DELETE FROM outbound_queue WHERE id = $1 RETURNING content_id")
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?;
            super::maildrop::drop_orphan_contents(tx, &[content]).await?;
        }
    }
    Ok(())
}

fn entry(r: &sqlx::postgres::PgRow) -> QueuedMessage {
    QueuedMessage {
        id: r.get("id"),
        queue_id: r.get("queue_id"),
        content_id: r.get("content_id"),
        mail_from: r.get("mail_from"),
        ret: r.get("ret"),
        envid: r.get("envid"),
        created_at: r.get("created_at"),
        next_attempt_at: r.get("next_attempt_at"),
        attempts: r.get("attempts"),
        last_error: r.get("last_error"),
        held: r.get("held"),
        delay_warned: r.get("delay_warned"),
        size: r.get::<Option<i64>, _>("size").unwrap_or(0),
        recipients: Vec::new(),
        body: r.get("body"),
        smtputf8: r.get("smtputf8"),
        requiretls: r.get("requiretls"),
        envelope_from: r.get("envelope_from"),
        head: r.get("head"),
    }
}

fn route(r: &sqlx::postgres::PgRow) -> Route {
    Route {
        domain: r.get("domain"),
        host: r.get("host"),
        port: r.get::<i32, _>("port") as u16,
        tls: r.get("tls"),
        auth_user: r.get("auth_user"),
        auth_secret: r.get("auth_secret"),
    }
}

fn require_some(rows: u64, queue_id: Option<&str>) -> Result<u64> {
    match (rows, queue_id) {
        (0, Some(q)) => Err(StoreError::UnknownQueueId(q.to_string())),
        (n, _) => Ok(n),
    }
}

impl Store {
    /// Messages in the queue and the age in seconds of the oldest (for metrics). Exact up
    /// to `EXACT_DEPTH`, beyond that PostgreSQL's estimate: never a scan of a long queue.
    pub async fn queue_stats(&self) -> Result<(i64, i64)> {
        let (n, estimate, age): (i64, f32, Option<f64>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbound_queue LIMIT $1) q),
                    (SELECT reltuples FROM pg_class WHERE oid = 'outbound_queue'::regclass),
                    (SELECT extract(epoch FROM now() - created_at)::float8
                     FROM outbound_queue ORDER BY id LIMIT 1)",
        )
        .bind(EXACT_DEPTH + 1)
        .fetch_one(&self.pool)
        .await?;
        let depth = if n > EXACT_DEPTH {
            (estimate as i64).max(n)
        } else {
            n
        };
        Ok((depth, age.unwrap_or(0.0) as i64))
    }
}

/// Queue depths up to this are counted exactly for the metrics.
const EXACT_DEPTH: i64 = 10_000;

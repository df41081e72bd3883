//! Writing a message into mailboxes: content once, then one row per recipient mailbox,
//! all in one transaction.
//!
//! Invariants: the content is stored in canonical CRLF form (`content::Canonicalizer`) in
//! chunks of `CHUNK_SIZE`; nothing is visible to anyone before `deliver` commits; a writer
//! dropped before `deliver` rolls everything back. Mailboxes are updated in account-id order,
//! so concurrent deliveries to overlapping recipients cannot deadlock.
use super::Store;
use crate::content::Canonicalizer;
use crate::envelope::Recipient;
use crate::store::{Result, StoreError};
use bridgehead_proto::CHUNK_SIZE;
use sqlx::{Postgres, Transaction};

/// One mailbox a message landed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub account_id: i64,
    pub address: String,
    pub uid: i64,
    pub size: u64,
}

/// Outside recipients of a message, for the outbound queue.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    pub queue_id: String,
    pub mail_from: String,
    pub ret: String,
    pub envid: String,
    pub auth_user: String,
    pub recipients: Vec<Recipient>,
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

/// A message stored held by a filter's quarantine verdict.
#[derive(Debug, Clone, Default)]
pub struct Held {
    pub queue_id: String,
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub reason: String,
    pub client_address: String,
    pub auth_user: String,
}

/// An open delivery: content is streamed in with `write`, then `deliver` commits it.
pub struct ContentWriter {
    pool: sqlx::PgPool,
    /// Begun on the first statement that needs it; a message of one chunk for at most one
    /// mailbox never needs one (`store_message` is a single statement).
    tx: Option<Transaction<'static, Postgres>>,
    /// Set once the content row exists: at the first full chunk, or in `deliver` for a
    /// message of one chunk (then content row and chunk are one statement).
    content_id: i64,
    canon: Canonicalizer,
    buf: Vec<u8>,
    seq: i32,
    max_size: u64,
    /// Submission token and queue id, claimed in the committing statements.
    claim: Option<(String, String)>,
}

impl Store {
    /// Starts a delivery of a message of at most `max_size` octets.
    pub async fn begin_content(&self, max_size: u64) -> Result<ContentWriter> {
        Ok(ContentWriter {
            pool: self.pool.clone(),
            tx: None,
            content_id: 0,
            canon: Canonicalizer::new(),
            buf: Vec::with_capacity(CHUNK_SIZE.min(64 * 1024)),
            seq: 0,
            max_size,
            claim: None,
        })
    }
}

impl ContentWriter {
    /// Has `deliver` record submission `token` for `queue_id`. When the token was recorded
    /// before, `deliver` rolls back and fails with `DuplicateSubmission` and the earlier queue
    /// id; a concurrent holder of the token makes it wait until that one commits or aborts.
    pub fn claim_on_commit(&mut self, token: &str, queue_id: &str) {
        self.claim = Some((token.to_string(), queue_id.to_string()));
    }

    /// The open transaction, begun now if need be.
    async fn tx(&mut self) -> Result<&mut Transaction<'static, Postgres>> {
        if self.tx.is_none() {
            self.tx = Some(self.pool.begin().await?);
        }
        Ok(self.tx.as_mut().expect("transaction begun"))
    }

    /// The multi-chunk path's separate claim (see `claim_on_commit`).
    async fn claim(&mut self) -> Result<()> {
        let Some((token, queue_id)) = self.claim.clone() else {
            return Ok(());
        };
        let claimed = sqlx::query(
            "INSERT INTO submissions (token, queue_id) VALUES ($1, $2) ON CONFLICT (token) DO NOTHING",
        )
        .bind(&token)
        .bind(queue_id)
        .execute(&mut **self.tx().await?)
        .await?;
        if claimed.rows_affected() == 1 {
            return Ok(());
        }
        let earlier = sqlx::query_scalar("SELECT queue_id FROM submissions WHERE token = $1")
            .bind(token)
            .fetch_one(&mut **self.tx().await?)
            .await?;
        Err(StoreError::DuplicateSubmission(earlier))
    }

    /// Settles an outbound queue entry in this transaction (the one that stores its report).
    pub async fn settle_queue_entry(
        &mut self,
        id: i64,
        worker: &str,
        s: &super::Settlement,
    ) -> Result<()> {
        super::queue::settle(self.tx().await?, id, worker, s).await
    }

    /// Records, in this transaction, that a POP3 connector has brought this UIDL in.
    pub async fn mark_seen(&mut self, connector_id: i64, uidl: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO connector_seen (connector_id, uidl) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(connector_id)
        .bind(uidl)
        .execute(&mut **self.tx().await?)
        .await?;
        Ok(())
    }

    /// Adds octets of the message (any line endings; they are made CRLF).
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.canon.push(data, &mut self.buf);
        if self.canon.total() > self.max_size {
            return Err(StoreError::TooLarge(self.max_size));
        }
        while self.buf.len() >= CHUNK_SIZE {
            let rest = self.buf.split_off(CHUNK_SIZE);
            let full = std::mem::replace(&mut self.buf, rest);
            self.store_chunk(full).await?;
        }
        Ok(())
    }

    /// Finishes the content and delivers it to `recipients` (account id, address), each
    /// with its own `prefix` (per-recipient trace headers), and queues it for `outbound`
    /// recipients. Commits; returns where it landed.
    pub async fn deliver(
        mut self,
        recipients: &[(i64, String, Vec<u8>)],
        outbound: Option<&Outbound>,
    ) -> Result<Vec<Delivered>> {
        let delivered = self.deliver_uncommitted(recipients, outbound).await?;
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(delivered)
    }

    /// `deliver` without its COMMIT.
    async fn deliver_uncommitted(
        &mut self,
        recipients: &[(i64, String, Vec<u8>)],
        outbound: Option<&Outbound>,
    ) -> Result<Vec<Delivered>> {
        self.canon.finish(&mut self.buf);
        if self.canon.total() > self.max_size {
            return Err(StoreError::TooLarge(self.max_size));
        }
        let last = std::mem::take(&mut self.buf);
        let size = self.canon.total() as i64;
        let mut sorted: Vec<&(i64, String, Vec<u8>)> = recipients.iter().collect();
        sorted.sort_by_key(|r| r.0);
        sorted.dedup_by_key(|r| r.0);
        let mut delivered = Vec::with_capacity(sorted.len());
        let mut rest = &sorted[..];
        if self.seq == 0 {
            // One statement: claim, content, chunk and the first mailbox (lowest account id).
            let first = sorted.first().copied();
            let no_outbound = outbound.is_none_or(|o| o.recipients.is_empty());
            let alone = self.tx.is_none() && sorted.len() <= 1 && no_outbound;
            let uid = self.store_whole(last, size, first, alone).await?;
            if let (Some((account, address, prefix)), Some(uid)) = (first, uid) {
                delivered.push(Delivered {
                    account_id: *account,
                    address: address.clone(),
                    uid,
                    size: (size + prefix.len() as i64) as u64,
                });
                rest = &sorted[1..];
            }
        } else {
            if !last.is_empty() {
                self.store_chunk(last).await?;
            }
            self.claim().await?;
            sqlx::query("UPDATE contents SET size = $2, chunks = $3 WHERE id = $1")
                .bind(self.content_id)
                .bind(size)
                .bind(self.seq)
                .execute(&mut **self.tx().await?)
                .await?;
        }
        for (account, address, prefix) in rest {
            let total = size + prefix.len() as i64;
            let uid = self.add_to_mailbox(*account, prefix, total).await?;
            let uid = uid.ok_or_else(|| StoreError::QuotaExceeded(address.clone()))?;
            delivered.push(Delivered {
                account_id: *account,
                address: address.clone(),
                uid,
                size: total as u64,
            });
        }
        if let Some(out) = outbound.filter(|o| !o.recipients.is_empty()) {
            self.queue(out).await?;
        }
        Ok(delivered)
    }

    /// Finishes the content and stores it held (quarantined): delivered to nobody until
    /// released. Commits.
    pub async fn hold(mut self, held: &Held) -> Result<()> {
        // A transaction from the start: the content and its quarantine row commit together.
        self.tx().await?;
        self.deliver_uncommitted(&[], None).await?;
        sqlx::query(
            "INSERT INTO quarantine
               (queue_id, content_id, mail_from, recipients, reason, client_address, auth_user)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&held.queue_id)
        .bind(self.content_id)
        .bind(&held.mail_from)
        .bind(&held.recipients)
        .bind(&held.reason)
        .bind(&held.client_address)
        .bind(&held.auth_user)
        .execute(&mut **self.tx().await?)
        .await?;
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }

    async fn queue(&mut self, out: &Outbound) -> Result<()> {
        let entry: i64 = sqlx::query_scalar(
            "INSERT INTO outbound_queue
               (queue_id, content_id, mail_from, ret, envid, auth_user, body, smtputf8,
                envelope_from, head, requiretls)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&out.queue_id)
        .bind(self.content_id)
        .bind(&out.mail_from)
        .bind(&out.ret)
        .bind(&out.envid)
        .bind(&out.auth_user)
        .bind(&out.body)
        .bind(out.smtputf8)
        .bind(&out.envelope_from)
        .bind(&out.head)
        .bind(out.requiretls)
        .fetch_one(&mut **self.tx().await?)
        .await?;
        let (addrs, rest): (Vec<&str>, Vec<(i32, &str)>) = out
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), (r.notify as i32, r.orcpt.as_str())))
            .unzip();
        let (notify, orcpt): (Vec<i32>, Vec<&str>) = rest.into_iter().unzip();
        sqlx::query(
            "INSERT INTO outbound_recipients (queue_entry, address, notify, orcpt)
             SELECT $1, a, n, o FROM unnest($2::text[], $3::int[], $4::text[]) AS r(a, n, o)
             ON CONFLICT DO NOTHING",
        )
        .bind(entry)
        .bind(&addrs)
        .bind(&notify)
        .bind(&orcpt)
        .execute(&mut **self.tx().await?)
        .await?;
        Ok(())
    }

    /// Appends the message to one mailbox; `None` when that would pass the account's quota.
    async fn add_to_mailbox(
        &mut self,
        account: i64,
        prefix: &[u8],
        size: i64,
    ) -> Result<Option<i64>> {
        let uid = sqlx::query_scalar(
            "WITH a AS (
               UPDATE accounts
                  SET used_bytes = used_bytes + $2, message_count = message_count + 1,
                      next_uid = next_uid + 1
                WHERE id = $1 AND (quota_bytes IS NULL OR used_bytes + $2 <= quota_bytes)
                RETURNING id, next_uid - 1 AS uid)
             INSERT INTO messages (account_id, uid, content_id, prefix, size)
             SELECT id, uid, $3, $4, $2 FROM a
             RETURNING uid",
        )
        .bind(account)
        .bind(size)
        .bind(self.content_id)
        .bind(prefix)
        .fetch_optional(&mut **self.tx().await?)
        .await?;
        Ok(uid)
    }

    /// A message of one chunk, in one round trip (`store_message`, migration 0007): the
    /// submission claim, the content row, its chunk and, when `first` is given, that
    /// mailbox's row and counters (with the quota check). Runs outside any transaction when
    /// it is all there is to do (`alone`). Returns the UID in `first`'s mailbox.
    async fn store_whole(
        &mut self,
        data: Vec<u8>,
        size: i64,
        first: Option<&(i64, String, Vec<u8>)>,
        alone: bool,
    ) -> Result<Option<i64>> {
        let (token, queue_id) = self.claim.clone().unwrap_or_default();
        let (account, prefix) = first.map_or((0, &[][..]), |f| (f.0, &f.2[..]));
        let query = sqlx::query_as("SELECT * FROM store_message($1, $2, $3, $4, $5, $6, $7)")
            .bind(&token)
            .bind(&queue_id)
            .bind(size)
            .bind(data)
            .bind(account)
            .bind(size + prefix.len() as i64)
            .bind(prefix);
        let row: Result<(Option<i64>, Option<i64>, Option<String>), _> = if alone {
            query.fetch_one(&self.pool).await
        } else {
            query.fetch_one(&mut **self.tx().await?).await
        };
        let (content_id, uid, earlier) = match row {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("BHQ01") => {
                let address = first.map(|f| f.1.clone()).unwrap_or_default();
                return Err(StoreError::QuotaExceeded(address));
            }
            other => other?,
        };
        match (content_id, earlier) {
            (Some(id), _) => {
                self.content_id = id;
                self.seq = 1;
                Ok(uid)
            }
            (None, earlier) => Err(StoreError::DuplicateSubmission(earlier.unwrap_or_default())),
        }
    }

    async fn store_chunk(&mut self, data: Vec<u8>) -> Result<()> {
        if self.seq == 0 {
            self.content_id = sqlx::query_scalar(
                "INSERT INTO contents (size, chunks) VALUES (0, 0) RETURNING id",
            )
            .fetch_one(&mut **self.tx().await?)
            .await?;
        }
        sqlx::query("INSERT INTO content_chunks (content_id, seq, data) VALUES ($1, $2, $3)")
            .bind(self.content_id)
            .bind(self.seq)
            .bind(data)
            .execute(&mut **self.tx().await?)
            .await?;
        self.seq += 1;
        Ok(())
    }
}

impl Store {
    /// Forgets submission tokens older than a day (a lost reply is repeated within seconds).
    /// Sweeps content nobody references (left when two transactions dropped the last
    /// references at once): the next `limit` contents after id `after`, those older than
    /// `min_age_secs` and unreferenced are deleted. Returns how many went, and the last id
    /// looked at (`None`: past the end — start again from 0).
    pub async fn sweep_contents(
        &self,
        after: i64,
        limit: i64,
        min_age_secs: u32,
    ) -> Result<(u64, Option<i64>)> {
        let (swept, last): (i64, Option<i64>) = sqlx::query_as(
            "WITH batch AS (SELECT id FROM contents WHERE id > $1 ORDER BY id LIMIT $2),
             gone AS (
               DELETE FROM contents c USING batch b
                WHERE c.id = b.id AND c.created_at < now() - make_interval(secs => $3)
                  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.content_id = c.id)
                  AND NOT EXISTS (SELECT 1 FROM outbound_queue q WHERE q.content_id = c.id)
                  AND NOT EXISTS (SELECT 1 FROM quarantine h WHERE h.content_id = c.id)
               RETURNING 1)
             SELECT (SELECT count(*) FROM gone), (SELECT max(id) FROM batch)",
        )
        .bind(after)
        .bind(limit)
        .bind(f64::from(min_age_secs))
        .fetch_one(&self.pool)
        .await?;
        Ok((swept.max(0) as u64, last))
    }

    pub async fn prune_submissions(&self) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM submissions WHERE created_at < now() - interval '1 day'")
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Outbound queue entries with their recipients: (queue id, sender, recipients).
    pub async fn queue_entries(&self) -> Result<Vec<(String, String, Vec<String>)>> {
        let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
            "SELECT q.queue_id, q.mail_from,
                    coalesce(array_agg(r.address ORDER BY r.address) FILTER (WHERE r.address IS NOT NULL), '{}')
             FROM outbound_queue q LEFT JOIN outbound_recipients r ON r.queue_entry = q.id
             GROUP BY q.id ORDER BY q.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

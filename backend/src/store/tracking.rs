//! The message-tracking record: events written in batches, the per-minute traffic counts
//! beside them, and the searches the console and `admin track` make.
//!
//! Invariants: a batch of events and its traffic counts are one statement (both or
//! neither); events older than the retention period are pruned by the chores; a search is
//! always bounded by a time range and a number of messages.
use super::Store;
use crate::store::Result;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One thing that happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub at: DateTime<Utc>,
    pub queue_id: String,
    /// Without angle brackets; "" when unknown.
    pub message_id: String,
    pub kind: String,
    /// The node it happened on.
    pub node: String,
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub detail: String,
}

/// What to look for: `text` is a queue id, a Message-ID, a sender or a recipient ("" for
/// any); `domain`, when given, keeps only messages from or to that domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackQuery {
    pub text: String,
    pub domain: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub limit: i64,
}

/// Messages accepted, delivered, deferred and bounced in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficMinute {
    pub minute: i64,
    pub accepted: i64,
    pub delivered: i64,
    pub deferred: i64,
    pub bounced: i64,
}

impl Store {
    /// Writes a batch of events and adds them to the per-minute counts.
    pub async fn record_events(&self, events: &[EventRow]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let col = |f: fn(&EventRow) -> String| events.iter().map(f).collect::<Vec<_>>();
        let at: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
        let (minutes, kinds, counts) = traffic(events);
        sqlx::query(
            "WITH ins AS (
                INSERT INTO message_events
                       (at, queue_id, message_id, kind, node, mail_from, recipients, detail)
                SELECT t.at, t.q, t.m, t.k, t.n, t.f,
                       CASE WHEN t.r = '' THEN '{}'::text[] ELSE string_to_array(t.r, E'\\n') END,
                       t.d
                FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[]) AS t(at, q, m, k, n, f, r, d))
             INSERT INTO traffic_minutes (minute, kind, count)
             SELECT * FROM UNNEST($9::timestamptz[], $10::text[], $11::bigint[])
             ON CONFLICT (minute, kind) DO UPDATE SET count = traffic_minutes.count + EXCLUDED.count",
        )
        .bind(at)
        .bind(col(|e| e.queue_id.clone()))
        .bind(col(|e| e.message_id.clone()))
        .bind(col(|e| e.kind.clone()))
        .bind(col(|e| e.node.clone()))
        .bind(col(|e| e.mail_from.clone()))
        .bind(col(|e| e.recipients.join("\n")))
        .bind(col(|e| e.detail.clone()))
        .bind(minutes)
        .bind(kinds)
        .bind(counts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The messages matching `q`, newest first, each with all its events in order. With a
    /// text, the matching events are found through their indexes (queue id, Message-ID,
    /// sender, recipient: one bitmap each); without, the newest events of the range are
    /// walked back by time (at most `RECENT_EVENTS` of them).
    pub async fn track(&self, q: &TrackQuery) -> Result<Vec<Vec<EventRow>>> {
        let text = q.text.trim().trim_matches(|c| c == '<' || c == '>');
        let domain = super::console::like_escape(&q.domain.as_deref().unwrap_or("").to_lowercase());
        let sql = if text.is_empty() {
            TRACK_RECENT_SQL
        } else {
            TRACK_TEXT_SQL
        };
        let mut search = sqlx::query_scalar(sql)
            .bind(text)
            .bind(q.since)
            .bind(q.until)
            .bind(domain)
            .bind(q.limit);
        if text.is_empty() {
            search = search.bind(RECENT_EVENTS);
        }
        let ids: Vec<String> = search.fetch_all(&self.pool).await?;
        let rows = sqlx::query(
            "SELECT at, queue_id, message_id, kind, node, mail_from, recipients, detail
             FROM message_events WHERE queue_id = ANY($1) ORDER BY at, id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Vec<EventRow>> = ids.iter().map(|_| Vec::new()).collect();
        for r in rows {
            let e = EventRow {
                at: r.get("at"),
                queue_id: r.get("queue_id"),
                message_id: r.get("message_id"),
                kind: r.get("kind"),
                node: r.get("node"),
                mail_from: r.get("mail_from"),
                recipients: r.get("recipients"),
                detail: r.get("detail"),
            };
            if let Some(i) = ids.iter().position(|id| *id == e.queue_id) {
                out[i].push(e);
            }
        }
        Ok(out)
    }

    /// Per-minute counts since `since`, oldest first (minutes without mail left out).
    pub async fn traffic_since(&self, since: DateTime<Utc>) -> Result<Vec<TrafficMinute>> {
        let rows = sqlx::query(
            "SELECT extract(epoch FROM minute)::bigint AS m, kind, count FROM traffic_minutes
             WHERE minute >= $1 ORDER BY minute",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<TrafficMinute> = Vec::new();
        for r in rows {
            let minute: i64 = r.get("m");
            if out.last().is_none_or(|t| t.minute != minute) {
                out.push(TrafficMinute {
                    minute,
                    ..Default::default()
                });
            }
            let t = out.last_mut().expect("pushed above");
            let n: i64 = r.get("count");
            match r.get::<&str, _>("kind") {
                "accepted" => t.accepted += n,
                "delivered" => t.delivered += n,
                "deferred" => t.deferred += n,
                "bounced" => t.bounced += n,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Forgets events and counts older than `days` days.
    pub async fn prune_events(&self, days: u32) -> Result<u64> {
        let done = sqlx::query(
            "WITH t AS (DELETE FROM traffic_minutes
                        WHERE minute < now() - make_interval(days => $1))
             DELETE FROM message_events WHERE at < now() - make_interval(days => $1)",
        )
        .bind(days as i32)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Messages held in quarantine, and connectors whose last poll failed (the overview).
    pub async fn trouble_counts(&self) -> Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT (SELECT count(*) FROM quarantine),
                    (SELECT count(*) FROM connectors WHERE COALESCE(last_error, '') <> '')",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// Events walked back at most when no text is given.
const RECENT_EVENTS: i64 = 20_000;

/// Messages with an event matching the text (each arm an index: queue id as given or in
/// capitals, Message-ID, sender, recipient — addresses are stored in lower case).
const TRACK_TEXT_SQL: &str = "SELECT queue_id FROM message_events e
     WHERE (queue_id = $1 OR queue_id = upper($1) OR message_id = $1 OR mail_from = lower($1)
            OR recipients @> ARRAY[lower($1)])
       AND at >= $2 AND at <= $3
       AND ($4 = '' OR mail_from LIKE '%@' || $4
            OR EXISTS (SELECT 1 FROM unnest(recipients) r WHERE r LIKE '%@' || $4))
     GROUP BY queue_id ORDER BY max(at) DESC LIMIT $5";

/// The newest messages of the range: its newest events, by the time index.
const TRACK_RECENT_SQL: &str = "SELECT queue_id FROM (
        SELECT queue_id, at FROM message_events e
        WHERE at >= $2 AND at <= $3 AND $1 = ''
          AND ($4 = '' OR mail_from LIKE '%@' || $4
               OR EXISTS (SELECT 1 FROM unnest(recipients) r WHERE r LIKE '%@' || $4))
        ORDER BY at DESC LIMIT $6) recent
     GROUP BY queue_id ORDER BY max(at) DESC LIMIT $5";

/// The batch's counts per minute and kind, for the kinds the charts show.
fn traffic(events: &[EventRow]) -> (Vec<DateTime<Utc>>, Vec<String>, Vec<i64>) {
    let mut counts: std::collections::BTreeMap<(i64, &str), i64> = Default::default();
    for e in events {
        if matches!(
            e.kind.as_str(),
            "accepted" | "delivered" | "deferred" | "bounced"
        ) {
            *counts
                .entry((e.at.timestamp() / 60 * 60, e.kind.as_str()))
                .or_default() += 1;
        }
    }
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for ((minute, kind), n) in counts {
        out.0
            .push(DateTime::from_timestamp(minute, 0).unwrap_or_default());
        out.1.push(kind.to_string());
        out.2.push(n);
    }
    out
}

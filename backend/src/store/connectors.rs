//! POP3 connectors as stored: settings, routing rules, claims and the UIDLs already brought in.
//!
//! Invariants: one back-end polls a connector at a time (claim with `FOR UPDATE SKIP
//! LOCKED` and a deadline); a UIDL is recorded as seen in the transaction that delivers the
//! message (`ContentWriter::mark_seen`), never apart from it; the secret is never read back
//! by the admin API.
use super::Store;
use crate::store::{Result, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connector {
    pub id: i64,
    pub name: String,
    /// "user" or "global"
    pub mode: String,
    pub server: String,
    pub port: u16,
    /// "implicit", "stls" or "none"
    pub tls: String,
    pub verify_cert: bool,
    /// "user", "plain" or "apop"
    pub auth: String,
    pub username: String,
    pub secret: String,
    /// user mode: the local address; global mode: the domain its mail is for
    pub target: String,
    pub undeliverable: Option<String>,
    pub leave_on_server: bool,
    pub delete_after_days: Option<i32>,
    pub interval_secs: i32,
    pub enabled: bool,
    pub log_level: String,
    pub rules: Vec<(String, String)>,
    pub status: ConnectorStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectorStatus {
    pub last_poll_at: Option<DateTime<Utc>>,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_fetched: i32,
    pub fetched_total: i64,
}

const COLUMNS: &str =
    "id, name, mode, server, port, tls, verify_cert, auth, username, secret, target,
    undeliverable, leave_on_server, delete_after_days, interval_secs, enabled, log_level,
    last_poll_at, next_poll_at, last_error, last_fetched, fetched_total";

impl Store {
    pub async fn add_connector(&self, c: &Connector) -> Result<()> {
        let sql = "INSERT INTO connectors (name, mode, server, port, tls, verify_cert, auth, username, secret,
                                           target, undeliverable, leave_on_server, delete_after_days,
                                           interval_secs, enabled, log_level)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                   ON CONFLICT (name) DO NOTHING";
        if self.write_connector(sql, c).await? == 0 {
            return Err(StoreError::ConnectorExists(c.name.clone()));
        }
        Ok(())
    }

    /// Replaces a connector's settings (its secret only when `c.secret` is not empty).
    pub async fn update_connector(&self, c: &Connector) -> Result<()> {
        let sql = "UPDATE connectors SET mode = $2, server = $3, port = $4, tls = $5, verify_cert = $6,
                          auth = $7, username = $8, secret = CASE WHEN $9 = '' THEN secret ELSE $9 END,
                          target = $10, undeliverable = $11, leave_on_server = $12, delete_after_days = $13,
                          interval_secs = $14, enabled = $15, log_level = $16, next_poll_at = now()
                   WHERE name = $1";
        if self.write_connector(sql, c).await? == 0 {
            return Err(StoreError::UnknownConnector(c.name.clone()));
        }
        Ok(())
    }

    /// Runs `sql` with the connector's settings as $1..$16; returns the rows it touched.
    async fn write_connector(&self, sql: &'static str, c: &Connector) -> Result<u64> {
        let done = sqlx::query(sql)
            .bind(&c.name)
            .bind(&c.mode)
            .bind(&c.server)
            .bind(i32::from(c.port))
            .bind(&c.tls)
            .bind(c.verify_cert)
            .bind(&c.auth)
            .bind(&c.username)
            .bind(&c.secret)
            .bind(&c.target)
            .bind(&c.undeliverable)
            .bind(c.leave_on_server)
            .bind(c.delete_after_days)
            .bind(c.interval_secs)
            .bind(c.enabled)
            .bind(&c.log_level)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn remove_connector(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM connectors WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownConnector(name.to_string()));
        }
        Ok(())
    }

    pub async fn list_connectors(&self) -> Result<Vec<Connector>> {
        let sql = format!("SELECT {COLUMNS} FROM connectors ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        self.with_rules(rows.iter().map(connector).collect()).await
    }

    pub async fn get_connector(&self, name: &str) -> Result<Connector> {
        let sql = format!("SELECT {COLUMNS} FROM connectors WHERE name = $1");
        let rows = sqlx::query(&sql).bind(name).fetch_all(&self.pool).await?;
        self.with_rules(rows.iter().map(connector).collect())
            .await?
            .pop()
            .ok_or_else(|| StoreError::UnknownConnector(name.to_string()))
    }

    async fn with_rules(&self, mut list: Vec<Connector>) -> Result<Vec<Connector>> {
        let ids: Vec<i64> = list.iter().map(|c| c.id).collect();
        let rows = sqlx::query(
            "SELECT connector_id, match_text, target FROM connector_rules WHERE connector_id = ANY($1)
             ORDER BY match_text",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let id: i64 = r.get("connector_id");
            if let Some(c) = list.iter_mut().find(|c| c.id == id) {
                c.rules.push((r.get("match_text"), r.get("target")));
            }
        }
        Ok(list)
    }

    pub async fn set_connector_rule(
        &self,
        name: &str,
        match_text: &str,
        target: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO connector_rules (connector_id, match_text, target)
             SELECT id, $2, $3 FROM connectors WHERE name = $1
             ON CONFLICT (connector_id, match_text) DO UPDATE SET target = $3",
        )
        .bind(name)
        .bind(match_text)
        .bind(target)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownConnector(name.to_string()));
        }
        Ok(())
    }

    pub async fn remove_connector_rule(&self, name: &str, match_text: &str) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM connector_rules r USING connectors c
             WHERE r.connector_id = c.id AND c.name = $1 AND r.match_text = $2",
        )
        .bind(name)
        .bind(match_text)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownConnector(format!(
                "{name} (rule {match_text:?})"
            )));
        }
        Ok(())
    }

    /// Makes one connector (or all) due now; returns how many.
    pub async fn retrieve_now(&self, name: Option<&str>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE connectors SET next_poll_at = now() WHERE $1::text IS NULL OR name = $1",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            if let Some(n) = name {
                return Err(StoreError::UnknownConnector(n.to_string()));
            }
        }
        Ok(done.rows_affected())
    }

    /// Claims one enabled, due connector for `worker`.
    pub async fn claim_connector(
        &self,
        worker: &str,
        claim_secs: u32,
    ) -> Result<Option<Connector>> {
        let sql = format!(
            "UPDATE connectors SET claimed_by = $1, claim_until = now() + make_interval(secs => $2)
             WHERE id = (SELECT id FROM connectors
                         WHERE enabled AND next_poll_at <= now() AND (claim_until IS NULL OR claim_until < now())
                         ORDER BY next_poll_at LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(worker)
            .bind(f64::from(claim_secs))
            .fetch_all(&self.pool)
            .await?;
        Ok(self
            .with_rules(rows.iter().map(connector).collect())
            .await?
            .pop())
    }

    /// The UIDLs already brought in, with when they were first seen.
    pub async fn seen_uidls(&self, connector_id: i64) -> Result<HashMap<String, DateTime<Utc>>> {
        let rows: Vec<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT uidl, first_seen FROM connector_seen WHERE connector_id = $1")
                .bind(connector_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Records a poll's outcome and schedules the next. With `listing` (the poll read the
    /// whole maildrop), UIDLs no longer on the server are forgotten.
    pub async fn finish_poll(
        &self,
        c: &Connector,
        worker: &str,
        fetched: i32,
        error: Option<&str>,
        listing: Option<&[String]>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE connectors SET last_poll_at = now(), last_error = $3, last_fetched = $4,
                    fetched_total = fetched_total + $4,
                    next_poll_at = now() + make_interval(secs => interval_secs),
                    claimed_by = NULL, claim_until = NULL
             WHERE id = $1 AND claimed_by = $2",
        )
        .bind(c.id)
        .bind(worker)
        .bind(error)
        .bind(fetched)
        .execute(&mut *tx)
        .await?;
        if let Some(uidls) = listing {
            sqlx::query(
                "DELETE FROM connector_seen WHERE connector_id = $1 AND NOT (uidl = ANY($2))",
            )
            .bind(c.id)
            .bind(uidls)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn connector(r: &sqlx::postgres::PgRow) -> Connector {
    Connector {
        id: r.get("id"),
        name: r.get("name"),
        mode: r.get("mode"),
        server: r.get("server"),
        port: r.get::<i32, _>("port") as u16,
        tls: r.get("tls"),
        verify_cert: r.get("verify_cert"),
        auth: r.get("auth"),
        username: r.get("username"),
        secret: r.get("secret"),
        target: r.get("target"),
        undeliverable: r.get("undeliverable"),
        leave_on_server: r.get("leave_on_server"),
        delete_after_days: r.get("delete_after_days"),
        interval_secs: r.get("interval_secs"),
        enabled: r.get("enabled"),
        log_level: r.get("log_level"),
        rules: Vec::new(),
        status: ConnectorStatus {
            last_poll_at: r.get("last_poll_at"),
            next_poll_at: r.get("next_poll_at"),
            last_error: r.get("last_error"),
            last_fetched: r.get("last_fetched"),
            fetched_total: r.get("fetched_total"),
        },
    }
}

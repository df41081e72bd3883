//! What the operator console keeps: operators, their sign-in sessions, the nodes' heartbeats,
//! and the paged, searched user listing a console (or `admin user list`) asks for.
//!
//! Invariants: a session is found only by the SHA-256 of its token and only while unexpired;
//! finding it slides its expiry (idle timeout) but never past its absolute end. Operator
//! roles are checked by the table's constraint as well as by `console::access`.
use super::Store;
use crate::store::{Result, StoreError, UserInfo};
use chrono::{DateTime, Utc};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A signed-in session as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub operator: String,
    pub role: String,
    pub csrf: String,
}

/// How long a session lives: `idle_secs` after its last use, `absolute_secs` at most.
#[derive(Debug, Clone, Copy)]
pub struct SessionLife {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

/// A node of the cluster as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    pub role: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    pub detail: String,
}

impl Store {
    pub async fn add_operator(&self, name: &str, hash: &str, role: &str) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO operators (name, password_hash, role) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(hash)
        .bind(role)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::OperatorExists(name.to_string()));
        }
        Ok(())
    }

    /// Changes an operator's password and/or role (`None`: unchanged); their sessions end.
    pub async fn edit_operator(
        &self,
        name: &str,
        hash: Option<&str>,
        role: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE operators SET password_hash = COALESCE($2, password_hash),
                    role = COALESCE($3, role) WHERE name = $1",
        )
        .bind(name)
        .bind(hash)
        .bind(role)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownOperator(name.to_string()));
        }
        sqlx::query("DELETE FROM console_sessions WHERE operator = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_operators(&self) -> Result<Vec<Operator>> {
        let rows = sqlx::query("SELECT name, role, created_at FROM operators ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Operator {
                name: r.get("name"),
                role: r.get("role"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    /// Removes an operator and ends their sessions.
    pub async fn remove_operator(&self, name: &str) -> Result<()> {
        let done = sqlx::query(
            "WITH gone AS (DELETE FROM console_sessions WHERE operator = $1)
             DELETE FROM operators WHERE name = $1",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownOperator(name.to_string()));
        }
        Ok(())
    }

    /// The operator's password hash and role, for a sign-in.
    pub async fn operator_login(&self, name: &str) -> Result<Option<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT password_hash, role FROM operators WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn create_session(
        &self,
        token_hash: &[u8],
        s: &SessionRow,
        life: SessionLife,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, operator, role, csrf, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        )
        .bind(token_hash)
        .bind(&s.operator)
        .bind(&s.role)
        .bind(&s.csrf)
        .bind(life.idle_secs.min(life.absolute_secs) as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session with this token hash, its expiry slid forward; `None` when there
    /// is none (never was, signed out, or expired).
    pub async fn session(
        &self,
        token_hash: &[u8],
        life: SessionLife,
    ) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "UPDATE console_sessions SET seen_at = now(),
                    expires_at = least(created_at + make_interval(secs => $3),
                                       now() + make_interval(secs => $2))
             WHERE token_hash = $1 AND expires_at > now()
             RETURNING operator, role, csrf",
        )
        .bind(token_hash)
        .bind(life.idle_secs as f64)
        .bind(life.absolute_secs as f64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| SessionRow {
            operator: r.get("operator"),
            role: r.get("role"),
            csrf: r.get("csrf"),
        }))
    }

    pub async fn end_session(&self, token_hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that a node is alive (its own report).
    pub async fn heartbeat(&self, n: &NodeRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (name, role, version, started_at, seen_at, detail)
             VALUES ($1, $2, $3, $4, now(), $5)
             ON CONFLICT (name) DO UPDATE SET role = $2, version = $3, started_at = $4,
                    seen_at = now(), detail = $5",
        )
        .bind(&n.name)
        .bind(&n.role)
        .bind(&n.version)
        .bind(n.started_at)
        .bind(&n.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_nodes(&self) -> Result<Vec<NodeRow>> {
        let rows = sqlx::query(
            "SELECT name, role, version, started_at, seen_at, detail FROM nodes ORDER BY role, name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| NodeRow {
                name: r.get("name"),
                role: r.get("role"),
                version: r.get("version"),
                started_at: r.get("started_at"),
                seen_at: r.get("seen_at"),
                detail: r.get("detail"),
            })
            .collect())
    }

    /// Forgets expired sessions and nodes not seen for a day.
    pub async fn prune_console(&self) -> Result<u64> {
        let done = sqlx::query(
            "WITH s AS (DELETE FROM console_sessions WHERE expires_at < now() RETURNING 1)
             DELETE FROM nodes WHERE seen_at < now() - interval '1 day'",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Up to `limit` users after the address `after`, in address order, in one domain or
    /// all, whose address contains `search` (`list_users` is this without bounds): a walk of the address index that stops at the
    /// page's end, as cheap on the last page of 100,000 users as on the first.
    pub async fn users_page(
        &self,
        domain: Option<&str>,
        search: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<UserInfo>> {
        if let Some(d) = domain {
            self.require_domain(d).await?;
        }
        let pattern = format!("%{}%", like_escape(&search.to_lowercase()));
        let rows = sqlx::query(
            "SELECT a.address, a.quota_bytes, a.used_bytes, a.message_count
             FROM accounts a
             WHERE a.address > $2 AND a.address LIKE $3
               AND ($1::text IS NULL OR a.domain_id = (SELECT id FROM domains WHERE name = $1))
             ORDER BY a.address LIMIT $4",
        )
        .bind(domain)
        .bind(after)
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| UserInfo {
                address: r.get("address"),
                quota_bytes: r.get::<Option<i64>, _>("quota_bytes").map(|q| q as u64),
                used_bytes: r.get::<i64, _>("used_bytes") as u64,
                messages: r.get::<i64, _>("message_count") as u64,
            })
            .collect())
    }
}

/// `text` as a LIKE pattern matching itself (`%`, `_` and `\` escaped).
pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

//! DKIM keys per domain: added, listed, rotated (next → active → retired), removed; the
//! active ones for signing. Keys arrive sealed; the store never sees a private key in clear.
use super::accounts::domain_id;
use super::Store;
use crate::store::{Result, StoreError};
use sqlx::Row;

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    /// "rsa" or "ed25519".
    pub algorithm: String,
    /// Sealed (`secrets`, purpose "dkim").
    pub private_key: String,
    /// Base64, as published in the TXT record.
    pub public_key: String,
    /// "next", "active" or "retired".
    pub state: String,
}

const COLUMNS: &str =
    "d.name AS domain, k.selector, k.algorithm, k.private_key, k.public_key, k.state";

fn key(r: &sqlx::postgres::PgRow) -> DkimKey {
    DkimKey {
        domain: r.get("domain"),
        selector: r.get("selector"),
        algorithm: r.get("algorithm"),
        private_key: r.get("private_key"),
        public_key: r.get("public_key"),
        state: r.get("state"),
    }
}

impl Store {
    /// Stores a new key for `k.domain` in state `k.state`.
    pub async fn add_dkim_key(&self, k: &DkimKey) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let domain = domain_id(&mut conn, &k.domain).await?;
        let done = sqlx::query(
            "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key, state)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(domain)
        .bind(&k.selector)
        .bind(&k.algorithm)
        .bind(&k.private_key)
        .bind(&k.public_key)
        .bind(&k.state)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::DkimSelectorTaken(
                k.domain.clone(),
                k.selector.clone(),
            ));
        }
        Ok(())
    }

    /// Keys of `domain` (all domains when `None`), by domain and age.
    pub async fn list_dkim_keys(&self, domain: Option<&str>) -> Result<Vec<DkimKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
              WHERE $1::text IS NULL OR d.name = $1 ORDER BY d.name, k.created_at, k.selector"
        );
        let rows = sqlx::query(&sql).bind(domain).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(key).collect())
    }

    /// The keys that sign mail from `domain` now.
    pub async fn signing_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
              WHERE d.name = $1 AND k.state = 'active' ORDER BY k.algorithm DESC"
        );
        let rows = sqlx::query(&sql).bind(domain).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(key).collect())
    }

    /// Ends a rotation: `domain`'s next keys sign from now on, its active ones retire (kept
    /// until removed). Returns how many keys became active.
    pub async fn activate_dkim_keys(&self, domain: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let id = domain_id(&mut tx, domain).await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dkim_keys WHERE domain_id = $1 AND state = 'next'",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if next == 0 {
            return Err(StoreError::NoNextDkimKey(domain.to_string()));
        }
        sqlx::query(
            "UPDATE dkim_keys SET state = CASE state WHEN 'next' THEN 'active' ELSE 'retired' END
              WHERE domain_id = $1 AND state IN ('next', 'active')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(next as u64)
    }

    pub async fn remove_dkim_key(&self, domain: &str, selector: &str) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM dkim_keys k USING domains d
              WHERE d.id = k.domain_id AND d.name = $1 AND k.selector = $2",
        )
        .bind(domain)
        .bind(selector)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownDkimKey(
                domain.to_string(),
                selector.to_string(),
            ));
        }
        Ok(())
    }
}

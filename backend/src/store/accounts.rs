//! Domains, accounts and aliases.
//!
//! Addresses arrive here already canonical (`address::Address`). A name is either an
//! account's address or an alias, never both (checked under a per-address advisory lock).
use super::Store;
use crate::address::Address;
use crate::store::{Result, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    pub users: u64,
    pub kind: String,
    pub catch_all: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub address: String,
    pub quota_bytes: Option<u64>,
    pub used_bytes: u64,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasInfo {
    pub alias: String,
    pub target: String,
}

impl Store {
    pub async fn add_domain(&self, name: &str) -> Result<()> {
        let done =
            sqlx::query("INSERT INTO domains (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::DomainExists(name.to_string()));
        }
        Ok(())
    }

    pub async fn list_domains(&self) -> Result<Vec<DomainInfo>> {
        let rows = sqlx::query(
            "SELECT d.name, d.kind, d.catch_all,
                    (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id) AS users
             FROM domains d ORDER BY d.name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DomainInfo {
                name: r.get("name"),
                users: r.get::<i64, _>("users") as u64,
                kind: r.get("kind"),
                catch_all: r.get("catch_all"),
            })
            .collect())
    }

    /// Removes an empty domain; one with users or aliases is refused.
    pub async fn remove_domain(&self, name: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let id = domain_id(&mut tx, name).await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM accounts WHERE domain_id = $1)
                  + (SELECT count(*) FROM aliases WHERE domain_id = $1)
                  + (SELECT count(*) FROM groups WHERE domain_id = $1)
                  + (SELECT count(*) FROM contacts WHERE domain_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if used > 0 {
            return Err(StoreError::DomainNotEmpty(name.to_string(), used));
        }
        sqlx::query("DELETE FROM domains WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_user(&self, addr: &Address, hash: &str, quota: Option<u64>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let domain = domain_id(&mut tx, addr.domain()).await?;
        claim_name(&mut tx, addr).await?;
        sqlx::query("INSERT INTO accounts (domain_id, address, password_hash, quota_bytes) VALUES ($1, $2, $3, $4)")
            .bind(domain)
            .bind(addr.to_string())
            .bind(hash)
            .bind(quota.map(|q| q as i64))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every user of one domain (or all), in address order.
    pub async fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserInfo>> {
        self.users_page(domain, "", "", i64::MAX).await
    }

    /// Removes an account with its mailbox and aliases.
    pub async fn remove_user(&self, addr: &Address) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE address = $1 FOR UPDATE")
            .bind(addr.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::UnknownUser(addr.to_string()))?;
        let content_ids: Vec<i64> =
            sqlx::query_scalar("SELECT DISTINCT content_id FROM messages WHERE account_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        super::maildrop::drop_orphan_contents(&mut tx, &content_ids).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_password(&self, addr: &Address, hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE accounts SET password_hash = $2 WHERE address = $1")
            .bind(addr.to_string())
            .bind(hash)
            .execute(&self.pool)
            .await?;
        require_one(done.rows_affected(), || {
            StoreError::UnknownUser(addr.to_string())
        })
    }

    pub async fn set_quota(&self, addr: &Address, quota: Option<u64>) -> Result<()> {
        let done = sqlx::query("UPDATE accounts SET quota_bytes = $2 WHERE address = $1")
            .bind(addr.to_string())
            .bind(quota.map(|q| q as i64))
            .execute(&self.pool)
            .await?;
        require_one(done.rows_affected(), || {
            StoreError::UnknownUser(addr.to_string())
        })
    }

    pub async fn add_alias(&self, alias: &Address, target: &Address) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let domain = domain_id(&mut tx, alias.domain()).await?;
        claim_name(&mut tx, alias).await?;
        let done = sqlx::query(
            "INSERT INTO aliases (account_id, address, domain_id)
             SELECT id, $2, $3 FROM accounts WHERE address = $1",
        )
        .bind(target.to_string())
        .bind(alias.to_string())
        .bind(domain)
        .execute(&mut *tx)
        .await?;
        require_one(done.rows_affected(), || {
            StoreError::UnknownUser(target.to_string())
        })?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_aliases(&self, domain: Option<&str>) -> Result<Vec<AliasInfo>> {
        if let Some(d) = domain {
            self.require_domain(d).await?;
        }
        let rows = sqlx::query(
            "SELECT al.address AS alias, a.address AS target
             FROM aliases al JOIN accounts a ON a.id = al.account_id
             JOIN domains d ON d.id = al.domain_id
             WHERE $1::text IS NULL OR d.name = $1 ORDER BY al.address",
        )
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AliasInfo {
                alias: r.get("alias"),
                target: r.get("target"),
            })
            .collect())
    }

    pub async fn remove_alias(&self, alias: &Address) -> Result<()> {
        let done = sqlx::query("DELETE FROM aliases WHERE address = $1")
            .bind(alias.to_string())
            .execute(&self.pool)
            .await?;
        require_one(done.rows_affected(), || {
            StoreError::UnknownAlias(alias.to_string())
        })
    }

    /// The account (id, address) that mail for `addr` goes to: the user itself or an alias's target.
    pub async fn resolve_recipient(&self, addr: &Address) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT id, address FROM accounts WHERE address = $1
             UNION ALL
             SELECT a.id, a.address FROM aliases al JOIN accounts a ON a.id = al.account_id
             WHERE al.address = $1
             LIMIT 1",
        )
        .bind(addr.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get("id"), r.get("address"))))
    }

    pub(super) async fn require_domain(&self, name: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        domain_id(&mut conn, name).await.map(|_| ())
    }
}

pub(super) async fn domain_id(conn: &mut sqlx::PgConnection, name: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM domains WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::UnknownDomain(name.to_string()))
}

/// Makes sure no account or alias has this name, holding a transaction-scoped advisory lock
/// on it so that a concurrent claim of the same name waits for this transaction.
pub(super) async fn claim_name(conn: &mut sqlx::PgConnection, addr: &Address) -> Result<()> {
    let name = addr.to_string();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('name:' || $1))")
        .bind(&name)
        .execute(&mut *conn)
        .await?;
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE address = $1)
             OR EXISTS (SELECT 1 FROM aliases WHERE address = $1)
             OR EXISTS (SELECT 1 FROM groups WHERE address = $1)
             OR EXISTS (SELECT 1 FROM contacts WHERE address = $1)",
    )
    .bind(&name)
    .fetch_one(conn)
    .await?;
    if taken {
        return Err(StoreError::AddressTaken(name));
    }
    Ok(())
}

fn require_one(rows: u64, err: impl FnOnce() -> StoreError) -> Result<()> {
    if rows == 0 {
        Err(err())
    } else {
        Ok(())
    }
}

impl Store {
    /// The addresses an account may send as: its own first, then its aliases.
    pub async fn owned_addresses(&self, account: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT address FROM (
               SELECT address, 0 AS o FROM accounts WHERE id = $1
               UNION ALL
               SELECT address, 1 FROM aliases WHERE account_id = $1) x
             ORDER BY o, address",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?)
    }
}

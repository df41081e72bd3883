//! Directory objects beyond users and aliases: distribution groups, contacts, domain kinds
//! and catch-alls, and the one lookup that says what an address is.
//!
//! Invariant: an address names at most one thing — an account, an alias, a group or a
//! contact (`accounts::claim_name` checks all four under an advisory lock).
use super::Store;
use crate::address::Address;
use crate::mailauth::policy::{DmarcMode, DomainAuth};
use crate::names::Entry;
use crate::store::{Result, StoreError};
use sqlx::Row;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSettings {
    pub kind: String,
    pub catch_all: Option<String>,
    /// What the domain asks of the checks of unauthenticated mail.
    pub auth: DomainAuth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub address: String,
    pub policy: String,
    pub members: Vec<String>,
}

impl Store {
    /// The kind and catch-all of a local domain; `None` when the domain is not ours.
    pub async fn domain_settings(&self, name: &str) -> Result<Option<DomainSettings>> {
        let row = sqlx::query(
            "SELECT kind, catch_all, auth_checks, dmarc_policy FROM domains WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| settings(&r)))
    }

    pub async fn set_domain_kind(
        &self,
        name: &str,
        kind: &str,
        catch_all: Option<&str>,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE domains SET kind = $2, catch_all = $3 WHERE name = $1")
            .bind(name)
            .bind(kind)
            .bind(catch_all)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownDomain(name.to_string()));
        }
        Ok(())
    }

    /// Changes what the checks of unauthenticated mail do for a domain (`None`: unchanged)
    /// and returns the settings as they are now.
    pub async fn set_domain_auth(
        &self,
        name: &str,
        checks: Option<bool>,
        dmarc: Option<DmarcMode>,
    ) -> Result<DomainAuth> {
        let row = sqlx::query(
            "UPDATE domains SET auth_checks = COALESCE($2, auth_checks),
                                dmarc_policy = COALESCE($3, dmarc_policy)
              WHERE name = $1 RETURNING auth_checks, dmarc_policy",
        )
        .bind(name)
        .bind(checks)
        .bind(dmarc.map(DmarcMode::as_str))
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::UnknownDomain(name.to_string()))?;
        let mode: String = row.get("dmarc_policy");
        Ok(DomainAuth {
            checks: row.get("auth_checks"),
            dmarc: DmarcMode::parse(&mode).unwrap_or_default(),
        })
    }

    /// What `addr` names here, with the quota check for `size` more octets.
    pub async fn lookup(&self, addr: &Address, size: u64) -> Result<Entry> {
        static SQL: LazyLock<String> = LazyLock::new(|| format!("SELECT * FROM ({ENTRY}) e"));
        let row = sqlx::query(&SQL)
            .bind(addr.to_string())
            .bind(size as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| entry(&r)).unwrap_or(Entry::None))
    }

    /// The settings of `addr`'s domain and what `addr` names there, in one round trip;
    /// `None` when the domain is not ours.
    pub async fn domain_and_entry(
        &self,
        addr: &Address,
        size: u64,
    ) -> Result<Option<(DomainSettings, Entry)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT d.kind, d.catch_all, d.auth_checks, d.dmarc_policy, e.*
                   FROM domains d LEFT JOIN LATERAL ({ENTRY}) e ON true
                  WHERE d.name = $3"
            )
        });
        let row = sqlx::query(&SQL)
            .bind(addr.to_string())
            .bind(size as i64)
            .bind(addr.domain())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            let settings = settings(&r);
            let found = r.get::<Option<String>, _>("what").is_some();
            (settings, if found { entry(&r) } else { Entry::None })
        }))
    }

    pub async fn group_members(&self, group_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT member FROM group_members WHERE group_id = $1 ORDER BY member",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn add_group(&self, addr: &Address, policy: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let domain = super::accounts::domain_id(&mut tx, addr.domain()).await?;
        super::accounts::claim_name(&mut tx, addr).await?;
        sqlx::query("INSERT INTO groups (address, domain_id, policy) VALUES ($1, $2, $3)")
            .bind(addr.to_string())
            .bind(domain)
            .bind(policy)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_group_policy(&self, addr: &Address, policy: &str) -> Result<()> {
        let done = sqlx::query("UPDATE groups SET policy = $2 WHERE address = $1")
            .bind(addr.to_string())
            .bind(policy)
            .execute(&self.pool)
            .await?;
        one(done.rows_affected(), || {
            StoreError::UnknownGroup(addr.to_string())
        })
    }

    pub async fn remove_group(&self, addr: &Address) -> Result<()> {
        let done = sqlx::query("DELETE FROM groups WHERE address = $1")
            .bind(addr.to_string())
            .execute(&self.pool)
            .await?;
        one(done.rows_affected(), || {
            StoreError::UnknownGroup(addr.to_string())
        })
    }

    pub async fn add_group_member(&self, group: &Address, member: &Address) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO group_members (group_id, member) SELECT id, $2 FROM groups WHERE address = $1
             ON CONFLICT DO NOTHING",
        )
        .bind(group.to_string())
        .bind(member.to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 && self.lookup(group, 0).await? == Entry::None {
            return Err(StoreError::UnknownGroup(group.to_string()));
        }
        Ok(())
    }

    pub async fn remove_group_member(&self, group: &Address, member: &Address) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM group_members m USING groups g
             WHERE m.group_id = g.id AND g.address = $1 AND m.member = $2",
        )
        .bind(group.to_string())
        .bind(member.to_string())
        .execute(&self.pool)
        .await?;
        one(done.rows_affected(), || {
            StoreError::UnknownGroup(format!("{group} (member {member})"))
        })
    }

    pub async fn list_groups(&self, domain: Option<&str>) -> Result<Vec<GroupInfo>> {
        let rows = sqlx::query(
            "SELECT g.address, g.policy,
                    coalesce(array_agg(m.member ORDER BY m.member) FILTER (WHERE m.member IS NOT NULL), '{}') AS members
             FROM groups g JOIN domains d ON d.id = g.domain_id
             LEFT JOIN group_members m ON m.group_id = g.id
             WHERE $1::text IS NULL OR d.name = $1
             GROUP BY g.id ORDER BY g.address",
        )
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| GroupInfo {
                address: r.get("address"),
                policy: r.get("policy"),
                members: r.get("members"),
            })
            .collect())
    }

    pub async fn add_contact(&self, addr: &Address, external: &Address) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let domain = super::accounts::domain_id(&mut tx, addr.domain()).await?;
        super::accounts::claim_name(&mut tx, addr).await?;
        sqlx::query("INSERT INTO contacts (address, domain_id, external) VALUES ($1, $2, $3)")
            .bind(addr.to_string())
            .bind(domain)
            .bind(external.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_contact(&self, addr: &Address) -> Result<()> {
        let done = sqlx::query("DELETE FROM contacts WHERE address = $1")
            .bind(addr.to_string())
            .execute(&self.pool)
            .await?;
        one(done.rows_affected(), || {
            StoreError::UnknownContact(addr.to_string())
        })
    }

    pub async fn list_contacts(&self, domain: Option<&str>) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT c.address, c.external FROM contacts c JOIN domains d ON d.id = c.domain_id
             WHERE $1::text IS NULL OR d.name = $1 ORDER BY c.address",
        )
        .bind(domain)
        .fetch_all(&self.pool)
        .await?)
    }
}

fn one(rows: u64, err: impl FnOnce() -> StoreError) -> Result<()> {
    if rows == 0 {
        Err(err())
    } else {
        Ok(())
    }
}

/// The directory entry an address ($1) names, with the quota check for $2 more octets: a
/// mailbox (directly or by alias), a group or a contact; at most one row.
const ENTRY: &str = "SELECT 'mailbox' AS what, a.id, a.address AS text,
        (a.quota_bytes IS NOT NULL AND a.used_bytes + $2 > a.quota_bytes) AS full
   FROM accounts a WHERE a.address = $1
 UNION ALL
 SELECT 'mailbox', a.id, a.address, (a.quota_bytes IS NOT NULL AND a.used_bytes + $2 > a.quota_bytes)
   FROM aliases al JOIN accounts a ON a.id = al.account_id WHERE al.address = $1
 UNION ALL
 SELECT 'group', g.id, g.policy, false FROM groups g WHERE g.address = $1
 UNION ALL
 SELECT 'contact', 0, c.external, false FROM contacts c WHERE c.address = $1
 LIMIT 1";

/// An `ENTRY` row as an `Entry`.
fn entry(r: &sqlx::postgres::PgRow) -> Entry {
    let text: String = r.get("text");
    match r.get::<String, _>("what").as_str() {
        "mailbox" => Entry::Mailbox(r.get("id"), text, r.get("full")),
        "group" => Entry::Group {
            id: r.get("id"),
            policy: text,
        },
        _ => Entry::Contact { external: text },
    }
}

fn settings(r: &sqlx::postgres::PgRow) -> DomainSettings {
    let mode: String = r.get("dmarc_policy");
    DomainSettings {
        kind: r.get("kind"),
        catch_all: r.get("catch_all"),
        auth: DomainAuth {
            checks: r.get("auth_checks"),
            dmarc: DmarcMode::parse(&mode).unwrap_or_default(),
        },
    }
}

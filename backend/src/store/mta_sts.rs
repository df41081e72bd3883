//! The MTA-STS policy cache (RFC 8461 §5): one row per domain, shared by every back-end.
use super::Store;
use crate::store::Result;
use crate::transport::policy::mta_sts::{Mode, Policy};
use sqlx::Row;

/// A cached policy, its id, and whether its max_age has run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPolicy {
    pub id: String,
    pub policy: Policy,
    pub expired: bool,
    /// Seconds until it expires (negative: since it did).
    pub expires_in_secs: i64,
}

impl Store {
    pub async fn sts_policy(&self, domain: &str) -> Result<Option<CachedPolicy>> {
        let row = sqlx::query(
            "SELECT policy_id, mode, mx, max_age, expires_at < now() AS expired,
                    extract(epoch FROM expires_at - now())::bigint AS expires_in
               FROM mta_sts_policies WHERE domain = $1",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            let mode = match r.get::<String, _>("mode").as_str() {
                "enforce" => Mode::Enforce,
                "testing" => Mode::Testing,
                _ => Mode::None,
            };
            CachedPolicy {
                id: r.get("policy_id"),
                policy: Policy {
                    mode,
                    mx: r.get("mx"),
                    max_age: r.get::<i64, _>("max_age").max(0) as u64,
                },
                expired: r.get("expired"),
                expires_in_secs: r.get("expires_in"),
            }
        }))
    }

    /// Stores a freshly fetched policy (valid for its max_age from now).
    pub async fn save_sts_policy(&self, domain: &str, id: &str, p: &Policy) -> Result<()> {
        sqlx::query(
            "INSERT INTO mta_sts_policies (domain, policy_id, mode, mx, max_age, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
             ON CONFLICT (domain) DO UPDATE SET policy_id = $2, mode = $3, mx = $4,
                 max_age = $5, fetched_at = now(), expires_at = now() + make_interval(secs => $6)",
        )
        .bind(domain)
        .bind(id)
        .bind(p.mode.as_str())
        .bind(&p.mx)
        .bind(p.max_age as i64)
        .bind(p.max_age as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

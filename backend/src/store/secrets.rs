//! Stored secrets that are still in the clear (from before they were sealed), found and
//! replaced by their sealed form — each only if it has not changed meanwhile; and the keys
//! every back-end shares (`cluster_keys`).
use super::Store;
use crate::store::Result;

impl Store {
    /// Connector passwords (by connector id) and route AUTH secrets (by domain) that do not
    /// look sealed.
    #[allow(clippy::type_complexity)]
    pub async fn clear_secrets(&self) -> Result<(Vec<(i64, String)>, Vec<(String, String)>)> {
        let connectors = sqlx::query_as(
            "SELECT id, secret FROM connectors WHERE secret <> '' AND secret NOT LIKE 'bh1:%'",
        )
        .fetch_all(&self.pool)
        .await?;
        let routes = sqlx::query_as(
            "SELECT domain, auth_secret FROM routes
              WHERE auth_secret IS NOT NULL AND auth_secret <> '' AND auth_secret NOT LIKE 'bh1:%'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok((connectors, routes))
    }

    /// Replaces a connector's password `old` by `sealed`.
    pub async fn reseal_connector_secret(&self, id: i64, old: &str, sealed: &str) -> Result<()> {
        sqlx::query("UPDATE connectors SET secret = $3 WHERE id = $1 AND secret = $2")
            .bind(id)
            .bind(old)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces a route's AUTH secret `old` by `sealed`.
    pub async fn reseal_route_secret(&self, domain: &str, old: &str, sealed: &str) -> Result<()> {
        sqlx::query("UPDATE routes SET auth_secret = $3 WHERE domain = $1 AND auth_secret = $2")
            .bind(domain)
            .bind(old)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The cluster's key called `name`: the stored one, or `fresh` stored now if there is
    /// none yet (the first back-end to ask makes it; every other one reads the same).
    pub async fn cluster_key(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        // Two back-ends starting at once: the later one's statement may not see the row the
        // other committed while it waited on the conflict; it sees it when asked again.
        for _ in 0..3 {
            let key: Option<Vec<u8>> = sqlx::query_scalar(
                "WITH made AS (
                   INSERT INTO cluster_keys (name, key) VALUES ($1, $2)
                   ON CONFLICT (name) DO NOTHING RETURNING key)
                 SELECT key FROM made UNION ALL SELECT key FROM cluster_keys WHERE name = $1
                 LIMIT 1",
            )
            .bind(name)
            .bind(fresh)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(key) = key {
                return Ok(key);
            }
        }
        Err(sqlx::Error::RowNotFound.into())
    }
}

//! TLS-RPT counts (RFC 8460): sessions per reporting period, policy domain, policy and
//! result, added to in batches by every back-end's recorder; which periods are due for a
//! report, claimed once across back-ends; the failures an operator looks at.
use super::Store;
use crate::store::Result;
use crate::transport::tlsrpt::report::Row;
use chrono::{DateTime, Utc};
use sqlx::Row as _;

/// One batch line: a row of `period_start` on `domain`.
#[derive(Debug, Clone)]
pub struct Count {
    pub period_start: DateTime<Utc>,
    pub domain: String,
    pub row: Row,
}

/// A line for `admin tls report`.
#[derive(Debug, Clone)]
pub struct Counted {
    pub period_start: DateTime<Utc>,
    pub domain: String,
    pub row: Row,
}

impl Store {
    /// Adds `counts` to the stored ones, in one transaction.
    pub async fn add_tls_counts(&self, counts: &[Count]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for c in counts {
            sqlx::query(
                "INSERT INTO tls_report_counts (period_start, policy_domain, policy_type,
                        policy_strings, mx_hosts, result_type, receiving_mx, receiving_ip,
                        detail, sessions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (period_start, policy_domain, policy_type, result_type,
                              receiving_mx, receiving_ip)
                 DO UPDATE SET sessions = tls_report_counts.sessions + EXCLUDED.sessions,
                               policy_strings = EXCLUDED.policy_strings,
                               mx_hosts = EXCLUDED.mx_hosts, detail = EXCLUDED.detail",
            )
            .bind(c.period_start)
            .bind(&c.domain)
            .bind(&c.row.policy_type)
            .bind(&c.row.policy_strings)
            .bind(&c.row.mx_hosts)
            .bind(&c.row.result_type)
            .bind(&c.row.receiving_mx)
            .bind(&c.row.receiving_ip)
            .bind(&c.row.detail)
            .bind(c.row.sessions)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// (period, domain) pairs of periods that began before `before` with no report yet.
    pub async fn tls_reports_due(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT c.period_start, c.policy_domain FROM tls_report_counts c
              WHERE c.period_start < $1
                AND NOT EXISTS (SELECT 1 FROM tls_reports_sent s
                                 WHERE s.period_start = c.period_start
                                   AND s.policy_domain = c.policy_domain)
              ORDER BY 1 LIMIT 100",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("period_start"), r.get("policy_domain")))
            .collect())
    }

    /// Claims the report of `domain` for the period: true for the one back-end that does.
    pub async fn claim_tls_report(
        &self,
        period_start: DateTime<Utc>,
        domain: &str,
        rua: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO tls_reports_sent (period_start, policy_domain, rua)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(period_start)
        .bind(domain)
        .bind(rua)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The rows of `domain` for the period.
    pub async fn tls_report_rows(
        &self,
        period_start: DateTime<Utc>,
        domain: &str,
    ) -> Result<Vec<Row>> {
        let rows = sqlx::query(
            "SELECT policy_type, policy_strings, mx_hosts, result_type, receiving_mx,
                    receiving_ip, detail, sessions
               FROM tls_report_counts WHERE period_start = $1 AND policy_domain = $2
              ORDER BY policy_type, result_type, receiving_mx, receiving_ip",
        )
        .bind(period_start)
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row).collect())
    }

    /// What was counted since `since`, on `domain` or every domain, newest first.
    pub async fn tls_counts(
        &self,
        domain: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<Counted>> {
        let rows = sqlx::query(
            "SELECT period_start, policy_domain, policy_type, policy_strings, mx_hosts,
                    result_type, receiving_mx, receiving_ip, detail, sessions
               FROM tls_report_counts
              WHERE period_start >= $1
                AND ($2::text IS NULL OR policy_domain = $2)
              ORDER BY period_start DESC, policy_domain, result_type, sessions DESC
              LIMIT 1000",
        )
        .bind(since)
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Counted {
                period_start: r.get("period_start"),
                domain: r.get("policy_domain"),
                row: row(r),
            })
            .collect())
    }

    /// Forgets counts of periods that began before `before` (their reports are sent).
    pub async fn forget_tls_counts(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM tls_report_counts WHERE period_start < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tls_reports_sent WHERE period_start < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone.rows_affected())
    }
}

fn row(r: &sqlx::postgres::PgRow) -> Row {
    Row {
        policy_type: r.get("policy_type"),
        policy_strings: r.get("policy_strings"),
        mx_hosts: r.get("mx_hosts"),
        result_type: r.get("result_type"),
        receiving_mx: r.get("receiving_mx"),
        receiving_ip: r.get("receiving_ip"),
        detail: r.get("detail"),
        sessions: r.get("sessions"),
    }
}

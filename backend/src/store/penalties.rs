//! Penalties shared by every front-end and back-end: failed logins, the account's next
//! password check, the addresses an account is known to log in from, and unknown recipients
//! asked for per client address.
//!
//! Invariants: every count forgets what is older than its window (and the chores delete
//! such rows); an account with recent failures gets at most one password check per penalty
//! interval from unknown addresses — the turn is taken by one UPDATE, so parallel
//! connections and other front-ends cannot check twice; a login from an address the account
//! logged in from within `KNOWN_FOR_DAYS` skips the turn, so guessing never locks a user
//! out of their usual places.
use super::Store;
use crate::store::Result;
use sqlx::Row;

/// How long a successful login makes its client address a known one for that account.
pub const KNOWN_FOR_DAYS: i32 = 30;

/// What a login needs from the store: the account (if the name exists) and its hash.
#[derive(Debug, Clone)]
pub struct LoginCheck {
    pub account_id: i64,
    pub address: String,
    pub password_hash: String,
}

/// The failure counters one login attempt touches.
#[derive(Debug, Clone)]
pub struct AuthKeys {
    /// The client address.
    pub address: String,
    /// The user name (existing or not).
    pub user: String,
    /// This user from this address.
    pub pair: String,
}

/// The growing delay: `base` after the first failure, doubling, at most `max`; counts
/// older than `window_secs` are forgotten.
#[derive(Debug, Clone, Copy)]
pub struct PenaltyCurve {
    pub base_secs: f64,
    pub max_secs: f64,
    pub window_secs: u32,
}

/// The store's answer before a password is checked.
#[derive(Debug, Clone)]
pub struct LoginGate {
    pub account: Option<LoginCheck>,
    /// The password may be checked now: the address is known to the account, the account
    /// has no recent failures, or this attempt took the account's turn.
    pub may_verify: bool,
    /// The account logged in from this address within the last day (no need to note it).
    pub known_recently: bool,
    /// Recent failures counted for the client address (the lockout threshold applies).
    pub address_failures: u32,
}

/// SQL for the delay after `failures` failures, in seconds ($base, $max).
macro_rules! delay_secs {
    ($failures:expr, $base:literal, $max:literal) => {
        concat!(
            "least(",
            $max,
            ", ",
            $base,
            " * power(2, least(",
            $failures,
            ", 17) - 1))"
        )
    };
}

impl Store {
    /// Looks the account up and decides, in one statement, whether its password may be
    /// checked now (taking the account's turn if so).
    pub async fn login_gate(
        &self,
        login: &str,
        client: &str,
        keys: &AuthKeys,
        curve: PenaltyCurve,
    ) -> Result<LoginGate> {
        let sql = concat!(
            "WITH acct AS (SELECT id, address, password_hash FROM accounts WHERE address = $1),
             known AS (
               SELECT k.last_success FROM auth_known_clients k JOIN acct ON k.account_id = acct.id
                WHERE k.client = $2 AND k.last_success >= now() - make_interval(days => $8)),
             pending AS (
               SELECT 1 FROM auth_failures
                WHERE key = $3 AND failures > 0
                  AND last_failure >= now() - make_interval(secs => $5)),
             turn AS (
               UPDATE auth_failures SET next_check = now() + make_interval(secs => ",
            delay_secs!("failures", "$6", "$7"),
            ")
                WHERE key = $3 AND NOT EXISTS (SELECT 1 FROM known) AND failures > 0
                  AND last_failure >= now() - make_interval(secs => $5) AND next_check <= now()
               RETURNING 1)
             SELECT a.id, a.address, a.password_hash,
                    (EXISTS (SELECT 1 FROM known) OR EXISTS (SELECT 1 FROM turn)
                     OR NOT EXISTS (SELECT 1 FROM pending)) AS may_verify,
                    EXISTS (SELECT 1 FROM known WHERE last_success >= now() - interval '1 day')
                      AS known_recently,
                    coalesce((SELECT failures FROM auth_failures
                               WHERE key = $4 AND last_failure >= now() - make_interval(secs => $5)),
                             0) AS address_failures
               FROM (SELECT 1) AS one LEFT JOIN acct a ON true"
        );
        let row = sqlx::query(sql)
            .bind(login)
            .bind(client)
            .bind(&keys.user)
            .bind(&keys.address)
            .bind(f64::from(curve.window_secs))
            .bind(curve.base_secs)
            .bind(curve.max_secs)
            .bind(KNOWN_FOR_DAYS)
            .fetch_one(&self.pool)
            .await?;
        let account = row
            .get::<Option<i64>, _>("id")
            .map(|account_id| LoginCheck {
                account_id,
                address: row.get("address"),
                password_hash: row.get("password_hash"),
            });
        Ok(LoginGate {
            account,
            may_verify: row.get("may_verify"),
            known_recently: row.get("known_recently"),
            address_failures: row.get::<i32, _>("address_failures").max(0) as u32,
        })
    }

    /// Counts a failed login under each key; counts older than the window start afresh.
    /// Sets each key's next check after the delay its new count earns. Returns the highest
    /// count among the keys.
    pub async fn record_auth_failures(&self, keys: &[&str], curve: PenaltyCurve) -> Result<u32> {
        let sql = concat!(
            "WITH up AS (
               INSERT INTO auth_failures AS f (key, failures, last_failure, next_check)
               SELECT k, 1, now(), now() + make_interval(secs => $3) FROM unnest($1::text[]) AS k
               ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN f.last_failure < now() - make_interval(secs => $2)
                                 THEN 1 ELSE f.failures + 1 END,
                 last_failure = now(),
                 next_check = now() + make_interval(secs => ",
            delay_secs!(
                "CASE WHEN f.last_failure < now() - make_interval(secs => $2) THEN 1 ELSE f.failures + 1 END",
                "$3",
                "$4"
            ),
            ")
               RETURNING failures)
             SELECT max(failures) FROM up"
        );
        let n: Option<i32> = sqlx::query_scalar(sql)
            .bind(keys)
            .bind(f64::from(curve.window_secs))
            .bind(curve.base_secs)
            .bind(curve.max_secs)
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0).max(0) as u32)
    }

    /// Failed logins counted under `key` within the last `window_secs`.
    pub async fn recent_auth_failures(&self, key: &str, window_secs: u32) -> Result<u32> {
        let n: Option<i32> = sqlx::query_scalar(
            "SELECT failures FROM auth_failures
              WHERE key = $1 AND last_failure >= now() - make_interval(secs => $2)",
        )
        .bind(key)
        .bind(f64::from(window_secs))
        .fetch_optional(&self.pool)
        .await?;
        Ok(n.unwrap_or(0).max(0) as u32)
    }

    /// After a successful login: takes the failures counted for this user from this address
    /// back out of the address's and the user's counts (only the user's own mistakes are
    /// forgiven: guesses made from elsewhere still count against the name), gives back the
    /// account's turn this login held, and notes the address as known to the account.
    pub async fn forgive_auth_failures(
        &self,
        keys: &AuthKeys,
        window_secs: u32,
        known: Option<(i64, &str)>,
    ) -> Result<()> {
        let (account, client) = known.unwrap_or((0, ""));
        sqlx::query(
            "WITH mine AS (
               DELETE FROM auth_failures WHERE key = $2
               RETURNING CASE WHEN last_failure >= now() - make_interval(secs => $4)
                              THEN failures ELSE 0 END AS n),
             adjusted AS (
               UPDATE auth_failures a
                  SET failures = greatest(a.failures - coalesce((SELECT sum(n) FROM mine)::int, 0), 0),
                      next_check = CASE WHEN a.key = $3 THEN least(a.next_check, now())
                                        ELSE a.next_check END
                WHERE a.key IN ($1, $3))
             INSERT INTO auth_known_clients (account_id, client, last_success)
             SELECT $5, $6, now() WHERE $7
             ON CONFLICT (account_id, client) DO UPDATE SET last_success = now()",
        )
        .bind(&keys.address)
        .bind(&keys.pair)
        .bind(&keys.user)
        .bind(f64::from(window_secs))
        .bind(account)
        .bind(client)
        .bind(known.is_some())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts an unknown recipient asked for by `client`; a count older than the window
    /// starts afresh. Returns the count within the window, this one included.
    pub async fn record_unknown_recipient(&self, client: &str, window_secs: u32) -> Result<u32> {
        let n: i32 = sqlx::query_scalar(
            "INSERT INTO unknown_recipients AS u (client, misses, last_miss) VALUES ($1, 1, now())
             ON CONFLICT (client) DO UPDATE SET
               misses = CASE WHEN u.last_miss < now() - make_interval(secs => $2)
                             THEN 1 ELSE u.misses + 1 END,
               last_miss = now()
             RETURNING misses",
        )
        .bind(client)
        .bind(f64::from(window_secs))
        .fetch_one(&self.pool)
        .await?;
        Ok(n.max(0) as u32)
    }

    /// Forgets expired counts (a count that old starts afresh anyway) and known addresses
    /// not used for `KNOWN_FOR_DAYS`: guesses at many names, or harvesting from many
    /// addresses, leave no lasting rows. Returns the rows deleted.
    pub async fn prune_penalties(&self, auth_window: u32, rcpt_window: u32) -> Result<u64> {
        let done = sqlx::query(
            "WITH a AS (
               DELETE FROM auth_failures WHERE last_failure < now() - make_interval(secs => $1)
               RETURNING 1),
             r AS (
               DELETE FROM unknown_recipients WHERE last_miss < now() - make_interval(secs => $2)
               RETURNING 1),
             k AS (
               DELETE FROM auth_known_clients WHERE last_success < now() - make_interval(days => $3)
               RETURNING 1)
             SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM r) + (SELECT count(*) FROM k)",
        )
        .bind(f64::from(auth_window))
        .bind(f64::from(rcpt_window))
        .bind(KNOWN_FOR_DAYS)
        .fetch_one(&self.pool)
        .await?;
        Ok(done.get::<i64, _>(0).max(0) as u64)
    }
}

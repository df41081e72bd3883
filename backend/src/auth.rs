//! Login checks shared by every protocol: password verification and the failure penalty.
//!
//! Invariants: the answer for an unknown user and for a wrong password is the same and takes
//! the same time (argon2 runs against a dummy hash); failures are counted per client address
//! and per user name in PostgreSQL, so every front-end applies the same growing delay (the
//! larger of the two). The user name's delay is also a rate: once it has recent failures,
//! its password is checked at most once per delay (16 s at most), whatever the number of
//! connections, addresses or front-ends; attempts in between fail unchecked — except from an
//! address the account logged in from within 30 days, which is always checked (so the user
//! is never locked out of their usual places by guessing elsewhere). A success takes only that
//! user's own failures from that address back out of the address's and the user's counts:
//! logging in to an account one holds does not wipe the failures of guesses at others, and the
//! real user's login does not wipe the guesses made at their name from elsewhere. A client
//! address with
//! `lockout_after` failures within the window is locked out: its logins fail, even with the
//! right password, until the window has passed since its last failure. Accounts get only the
//! growing delay, never a lockout, so nobody can lock a user out by guessing at their name. At
//! most one argon2 verification per core runs at once; more logins wait their turn.
use crate::address::Address;
use crate::password;
use crate::store::Result;
use crate::store::{AuthKeys, PenaltyCurve, Store};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How failed logins are penalised.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Delay after the first failure; it doubles with each further failure.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Failures older than this are forgotten; a lockout lasts this long after the last one.
    pub window: Duration,
    /// Failures from one client address within the window that lock it out (0: never).
    pub lockout_after: u32,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(16),
            window: Duration::from_secs(15 * 60),
            lockout_after: 20,
        }
    }
}

impl AuthPolicy {
    /// The window in whole seconds, as the store counts it.
    pub fn window_secs(&self) -> u32 {
        self.window.as_secs().min(u64::from(u32::MAX)) as u32
    }

    /// The delay curve as the store applies it.
    pub fn curve(&self) -> PenaltyCurve {
        PenaltyCurve {
            base_secs: self.base_delay.as_secs_f64(),
            max_secs: self.max_delay.as_secs_f64(),
            window_secs: self.window_secs(),
        }
    }

    pub fn delay_after(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok { account_id: i64, address: String },
    Failed { delay: Duration },
}

/// Verifications at once: one per core (argon2 with one lane keeps a core busy); the rest wait
/// their turn in order. Bounds the memory argon2 holds (19 MiB each) however many log in.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

pub(crate) async fn verify_bounded(password: &str, hash: Option<String>) -> bool {
    let Ok(_turn) = HASHING.acquire().await else {
        return false;
    };
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || password::verify(&pw, hash.as_deref()))
        .await
        .unwrap_or(false)
}

/// Why a login failed, for the log and the metrics (the client hears the same either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong password or unknown user.
    Wrong,
    /// The client address is locked out.
    LockedOut,
    /// Not checked: the account's turn was taken (another attempt within its penalty
    /// interval, from an address it never logged in from).
    Throttled,
}

pub async fn login(
    store: &Store,
    policy: &AuthPolicy,
    username: &str,
    password: &str,
    client: &str,
) -> Result<(LoginOutcome, Option<Refusal>)> {
    let canonical = Address::parse(username).map(|a| a.to_string()).ok();
    // Failures count per client address and per user name (existing or not, so the count
    // tells nothing about existence), shared by every front-end through PostgreSQL.
    let user_key = canonical
        .clone()
        .unwrap_or_else(|| username.to_ascii_lowercase());
    let keys = AuthKeys {
        address: format!("ip:{client}"),
        user: format!("user:{user_key}"),
        pair: format!("pair:{client}|{user_key}"),
    };
    let curve = policy.curve();
    let login = canonical.as_deref().unwrap_or("");
    let gate = store.login_gate(login, client, &keys, curve).await?;
    if !gate.may_verify {
        // The account's turn is taken: answered as a failure without a check, so guesses at
        // one account are bounded by time, not by the number of connections or addresses.
        let failures = store
            .record_auth_failures(&[&keys.address, &keys.pair], curve)
            .await?;
        let delay = policy.delay_after(failures);
        return Ok((LoginOutcome::Failed { delay }, Some(Refusal::Throttled)));
    }
    let hash = gate.account.as_ref().map(|f| f.password_hash.clone());
    let ok = verify_bounded(password, hash).await;
    match gate.account {
        Some(f) if ok => {
            // Locked out, a right password neither logs in nor extends the lockout.
            if policy.lockout_after > 0 && gate.address_failures >= policy.lockout_after {
                let delay = policy.delay_after(policy.lockout_after);
                return Ok((LoginOutcome::Failed { delay }, Some(Refusal::LockedOut)));
            }
            let note = (!gate.known_recently).then_some((f.account_id, client));
            store
                .forgive_auth_failures(&keys, curve.window_secs, note)
                .await?;
            let outcome = LoginOutcome::Ok {
                account_id: f.account_id,
                address: f.address,
            };
            Ok((outcome, None))
        }
        _ => {
            let all = [keys.address.as_str(), &keys.user, &keys.pair];
            let failures = store.record_auth_failures(&all, curve).await?;
            let delay = policy.delay_after(failures);
            Ok((LoginOutcome::Failed { delay }, Some(Refusal::Wrong)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_and_is_capped() {
        let p = AuthPolicy::default();
        assert_eq!(p.delay_after(1), Duration::from_millis(500));
        assert_eq!(p.delay_after(2), Duration::from_millis(1000));
        assert_eq!(p.delay_after(3), Duration::from_millis(2000));
        assert_eq!(p.delay_after(6), Duration::from_secs(16));
        assert_eq!(p.delay_after(100), Duration::from_secs(16));
    }
}

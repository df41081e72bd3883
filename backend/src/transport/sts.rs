//! MTA-STS for the transport (RFC 8461 §5): a domain's policy — from the cache in PostgreSQL
//! while its id is the one the `_mta-sts` record names and it has not expired, else fetched
//! anew — and what it does to the MX hosts.
//!
//! Invariants: a failed fetch or lookup never weakens a cached policy that has not expired
//! (an attacker blocking the record or the policy host gets the old policy, §5.1); a cached
//! policy is fetched again before it expires (§10.2), keeping the old one if that fails; with no
//! policy at all, delivery is as without MTA-STS; `mode: none` is no policy.
use super::policy::fetch::{self, FetchError};
use super::policy::mta_sts::{parse_record, Mode, Policy};
use super::tlsrpt::{self, Recorder};
use crate::store::{CachedPolicy, Store};
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a back-end keeps what it found out about a domain's policy before asking the
/// record (and the shared cache) again: a new policy id reaches every back-end within it.
const KEEP: Duration = Duration::from_secs(60);

pub struct Sts {
    /// Where policy hosts are asked (443; another only for tests).
    port: u16,
    /// What each domain's policy was, and when that was found out.
    recent: Mutex<HashMap<String, (Instant, Option<Policy>)>>,
    /// TLS-RPT counts (policies that could not be fetched).
    recorder: Arc<Recorder>,
}

impl Sts {
    pub fn new(port: u16, recorder: Arc<Recorder>) -> Sts {
        Sts {
            port,
            recent: Mutex::new(HashMap::new()),
            recorder,
        }
    }

    /// The policy that applies to mail for `domain`, if any (what this back-end found out in
    /// the last minute, else from the record, the shared cache or the policy host).
    pub async fn policy(
        &self,
        store: &Store,
        resolver: &TokioResolver,
        domain: &str,
    ) -> Option<Policy> {
        let now = Instant::now();
        if let Some((at, policy)) = self.lock().get(domain) {
            if now.duration_since(*at) < KEEP {
                return policy.clone();
            }
        }
        let policy = self.find(store, resolver, domain).await;
        let mut recent = self.lock();
        if recent.len() > 10_000 {
            recent.clear();
        }
        recent.insert(domain.to_string(), (now, policy.clone()));
        policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<Policy>)>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn find(&self, store: &Store, resolver: &TokioResolver, domain: &str) -> Option<Policy> {
        let cached = store.sts_policy(domain).await.ok().flatten();
        let name = format!("_mta-sts.{domain}.");
        let id = match super::route::txt_records(resolver, &name).await {
            Ok(records) => parse_record(records.iter().map(String::as_str)).ok(),
            Err(_) => None,
        };
        let live = cached.as_ref().filter(|c| !c.expired);
        let policy = match (id, live) {
            (Some(id), Some(c)) if c.id == id && !due_for_refresh(c) => Some(c.policy.clone()),
            (Some(id), _) => match self.fetch(resolver, domain).await {
                Ok(p) => {
                    if let Err(e) = store.save_sts_policy(domain, &id, &p).await {
                        tracing::warn!(domain, error = %e, "cannot cache the MTA-STS policy");
                    }
                    Some(p)
                }
                Err(e) => {
                    tracing::warn!(domain, error = %e, "MTA-STS policy not fetched; the cached one (if any) applies");
                    let policy = match live {
                        Some(c) => tlsrpt::sts_policy(domain, &c.policy),
                        None => tlsrpt::sts_unknown(domain),
                    };
                    let result = tlsrpt::fetch_result_of(&e);
                    let host = format!("mta-sts.{domain}");
                    self.recorder
                        .failure(&policy, result, &host, None, e.to_string());
                    live.map(|c| c.policy.clone())
                }
            },
            (None, live) => live.map(|c| c.policy.clone()),
        };
        policy.filter(|p| p.mode != Mode::None)
    }

    async fn fetch(&self, resolver: &TokioResolver, domain: &str) -> Result<Policy, FetchError> {
        let host = format!("mta-sts.{domain}");
        let no_address = |why: String| {
            let io = std::io::Error::new(std::io::ErrorKind::NotFound, why);
            FetchError::Connect(host.clone(), io)
        };
        let ip = resolver
            .lookup_ip(format!("{host}."))
            .await
            .map_err(|e| no_address(format!("address: {e}")))?
            .iter()
            .next()
            .ok_or_else(|| no_address("no address".into()))?;
        fetch::fetch(&host, SocketAddr::new(ip, self.port)).await
    }
}

/// RFC 8461 §10.2: a cached policy is fetched again before it expires, so that a domain whose
/// policy host is briefly down does not lose its protection — here once less than a tenth of
/// its max_age (at most a day) is left.
fn due_for_refresh(c: &CachedPolicy) -> bool {
    let margin = (c.policy.max_age / 10).min(86_400);
    c.expires_in_secs <= margin as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_fetched_again_before_they_expire() {
        let cached = |max_age, left| CachedPolicy {
            id: "one".into(),
            policy: Policy {
                mode: Mode::Enforce,
                mx: vec!["mx.example.org".into()],
                max_age,
            },
            expired: left <= 0,
            expires_in_secs: left,
        };
        assert!(!due_for_refresh(&cached(604_800, 500_000)));
        assert!(due_for_refresh(&cached(604_800, 60_000)), "within a tenth");
        assert!(
            !due_for_refresh(&cached(31_557_600, 100_000)),
            "a day at most"
        );
        assert!(due_for_refresh(&cached(31_557_600, 86_000)));
        assert!(due_for_refresh(&cached(86_400, 0)));
    }
}

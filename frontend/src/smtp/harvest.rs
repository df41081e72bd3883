//! A front-end's memory of client addresses the back-ends found probing for unknown
//! recipients: one job, to refuse every RCPT from such an address (`450 4.7.1`) for the
//! penalty the back-end named, without asking again — known recipients included, so a
//! harvester learns nothing from the answers, and the recipient memory's quick answers
//! cannot tell it either.
//!
//! Invariants: only a back-end's word puts an address here (the count itself is shared in
//! PostgreSQL, so another front-end learns at the address's next unknown recipient);
//! authenticated sessions are never refused by it; bounded (`MAX_ENTRIES`), soft state a
//! restart loses without harm.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most addresses remembered at once.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct HarvestGuard {
    until: Mutex<HashMap<IpAddr, Instant>>,
}

impl HarvestGuard {
    /// Whether `ip` is refused at `now`.
    pub fn refused(&self, ip: IpAddr, now: Instant) -> bool {
        let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.get(&ip).is_some_and(|t| *t > now)
    }

    /// Refuses `ip` for `penalty` from `now`.
    pub fn refuse(&self, ip: IpAddr, penalty: Duration, now: Instant) {
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if until.len() >= MAX_ENTRIES && !until.contains_key(&ip) {
            until.retain(|_, t| *t > now);
            if until.len() >= MAX_ENTRIES {
                // Full of live entries (a botnet): the back-end still refuses each address's
                // unknown recipients, so forgetting costs only calls.
                until.clear();
            }
        }
        until.insert(ip, now + penalty);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_for_the_penalty_then_forgets() {
        let g = HarvestGuard::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        assert!(!g.refused(ip, t0));
        g.refuse(ip, Duration::from_secs(60), t0);
        assert!(g.refused(ip, t0 + Duration::from_secs(59)));
        assert!(!g.refused(other, t0));
        assert!(!g.refused(ip, t0 + Duration::from_secs(60)));
    }
}

//! A front-end's short memory of recipients the back-ends accepted: one job, to spare a gRPC
//! call and a directory query per RCPT for the mailboxes mail keeps coming to.
//!
//! Invariants: only answers a back-end marked reusable are kept (a mailbox, found by its
//! address alone — never a relay, a group, a refusal or "over quota"); a kept answer stands
//! for messages no larger than the size it was given for, and for `ttl` only, then the
//! back-end is asked again. Nothing here is authoritative: Submit judges every recipient again
//! at the end of DATA, so a mailbox removed or filled within `ttl` gets a temporary 451/452
//! there, never a stored message. The memory is bounded (`MAX_ENTRIES`); it is soft state a
//! restart loses without harm. `ttl` zero turns it off.
pub use crate::mail::Answer;
use crate::mail::RcptVerdict;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most addresses remembered at once (about 100 bytes each).
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
struct Known {
    canonical: String,
    size: u64,
    until: Instant,
}

#[derive(Debug)]
pub struct RecipientCache {
    ttl: Duration,
    max: usize,
    known: Mutex<HashMap<String, Known>>,
}

impl RecipientCache {
    pub fn new(ttl: Duration) -> RecipientCache {
        RecipientCache::with_capacity(ttl, MAX_ENTRIES)
    }

    pub fn with_capacity(ttl: Duration, max: usize) -> RecipientCache {
        RecipientCache {
            ttl,
            max,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The accepted recipient's canonical address, if `address` was accepted for at least
    /// `size` octets less than `ttl` ago.
    pub fn get(&self, address: &str, size: u64, now: Instant) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(address)
            .filter(|k| k.until > now && size <= k.size)
            .map(|k| k.canonical.clone())
    }

    /// Remembers `answer` on `address` (checked for `size` octets) if it may be given again.
    pub fn put(&self, address: &str, size: u64, answer: &Answer, now: Instant) {
        let RcptVerdict::Accept(canonical) = &answer.verdict else {
            return;
        };
        if !answer.reusable || self.ttl.is_zero() {
            return;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= self.max && !known.contains_key(address) {
            known.retain(|_, k| k.until > now);
            if known.len() >= self.max {
                // Full of live entries: start afresh rather than search for the oldest.
                known.clear();
            }
        }
        known.insert(
            address.to_string(),
            Known {
                canonical: canonical.clone(),
                size,
                until: now + self.ttl,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(canonical: &str, reusable: bool) -> Answer {
        Answer {
            verdict: RcptVerdict::Accept(canonical.into()),
            reusable,
            penalty: Duration::ZERO,
        }
    }

    #[test]
    fn an_answer_stands_for_its_size_and_ttl_only() {
        let cache = RecipientCache::new(Duration::from_secs(5));
        let t = Instant::now();
        cache.put("Bob@x.test", 1000, &accepted("bob@x.test", true), t);
        assert_eq!(cache.get("Bob@x.test", 0, t).as_deref(), Some("bob@x.test"));
        assert_eq!(
            cache.get("Bob@x.test", 1000, t).as_deref(),
            Some("bob@x.test")
        );
        assert_eq!(
            cache.get("Bob@x.test", 1001, t),
            None,
            "larger than checked"
        );
        assert_eq!(
            cache.get("bob@x.test", 0, t),
            None,
            "another spelling is asked"
        );
        let later = t + Duration::from_secs(5);
        assert_eq!(cache.get("Bob@x.test", 0, later), None, "expired");
    }

    #[test]
    fn only_reusable_acceptances_are_kept() {
        let cache = RecipientCache::new(Duration::from_secs(5));
        let t = Instant::now();
        cache.put("a@x.test", 0, &accepted("a@x.test", false), t);
        for verdict in [
            RcptVerdict::UnknownLocal,
            RcptVerdict::OverQuota,
            RcptVerdict::RelayDenied,
            RcptVerdict::Unavailable,
        ] {
            let answer = Answer {
                verdict,
                reusable: true,
                penalty: Duration::ZERO,
            };
            cache.put("b@x.test", 0, &answer, t);
        }
        assert_eq!(cache.get("a@x.test", 0, t), None);
        assert_eq!(cache.get("b@x.test", 0, t), None);
    }

    #[test]
    fn zero_ttl_keeps_nothing() {
        let cache = RecipientCache::new(Duration::ZERO);
        let t = Instant::now();
        cache.put("a@x.test", 0, &accepted("a@x.test", true), t);
        assert_eq!(cache.get("a@x.test", 0, t), None);
    }

    #[test]
    fn bounded_expired_entries_go_first() {
        let cache = RecipientCache::with_capacity(Duration::from_secs(5), 2);
        let t = Instant::now();
        cache.put("old@x.test", 0, &accepted("old@x.test", true), t);
        let t2 = t + Duration::from_secs(3);
        cache.put("mid@x.test", 0, &accepted("mid@x.test", true), t2);
        let t3 = t + Duration::from_secs(6);
        cache.put("new@x.test", 0, &accepted("new@x.test", true), t3);
        assert!(cache.get("mid@x.test", 0, t3).is_some(), "live entry kept");
        assert!(cache.get("new@x.test", 0, t3).is_some());
        // Full of live entries: a newcomer still gets in, the map never grows past its bound.
        cache.put("more@x.test", 0, &accepted("more@x.test", true), t3);
        assert!(cache.get("more@x.test", 0, t3).is_some());
        assert!(cache.known.lock().unwrap().len() <= 2);
    }
}

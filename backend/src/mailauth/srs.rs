//! The Sender Rewriting Scheme for forwarded mail, pure: a message from outside that we send
//! on (a contact, a group's outside member, a shared domain's other system) leaves with an
//! envelope sender in one of our domains, so the next hop's SPF check asks about us and
//! passes, and a bounce to that address comes back to us and goes on to the original sender.
//!
//! The format is the de-facto standard of libsrs2 and postsrsd (no RFC exists):
//! `SRS0=HHHH=TT=example.org=alice@our.domain` for a first forward (HHHH: the first four
//! base64 characters of HMAC-SHA1 over `TT`, the domain and the local part, lower-cased; TT:
//! the day, base32, modulo 1024), and `SRS1=HHHH=first.hop==HHHH=TT=…@our.domain` when the
//! sender is already another forwarder's SRS0 address (the chain stays one hop long).
//!
//! Invariants: only an address whose hash verifies under our key and whose day is at most
//! `MAX_AGE_DAYS` old (or a day ahead: clocks differ) is reversed, so nobody can use an SRS
//! address of ours to relay; hashes compare without regard to case (some MTAs lower-case
//! local parts); the null sender is never rewritten.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::hmac;

/// An SRS address older than this is refused (as postsrsd).
pub const MAX_AGE_DAYS: u32 = 21;
const HASH_LEN: usize = 4;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The timestamp's range: two base32 characters.
const DAYS_MOD: u32 = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    #[error("not an SRS address")]
    NotSrs,
    #[error("malformed SRS address")]
    Malformed,
    #[error("SRS hash does not verify")]
    BadHash,
    #[error("SRS address expired")]
    Expired,
}

/// The rewriting key, shared by every back-end (it is kept in PostgreSQL).
#[derive(Clone)]
pub struct Srs {
    key: hmac::Key,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Srs(key)")
    }
}

impl Srs {
    pub fn new(secret: &[u8]) -> Srs {
        Srs {
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret),
        }
    }

    /// The envelope sender for forwarding mail from `sender` through `our_domain`, on day
    /// `today` (days since the Unix epoch). The null sender stays null; an address without a
    /// domain is returned as it is.
    pub fn forward(&self, sender: &str, our_domain: &str, today: u64) -> String {
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        if is_srs(local, "SRS1=") {
            // SRS1=HHHH=first.hop==rest: keep the first hop and the rest, hash anew.
            let parts = local[5..]
                .split_once('=')
                .and_then(|(_, r)| r.split_once('='));
            if let Some((hop, rest)) = parts.filter(|(h, r)| well_formed_srs1(h, r)) {
                let hash = self.hash(&[hop, rest]);
                return format!("SRS1={hash}={hop}={rest}@{our_domain}");
            }
        }
        if is_srs(local, "SRS0=") {
            // Another forwarder's SRS0 address: point back at that forwarder.
            let rest = &local[4..];
            let hash = self.hash(&[domain, rest]);
            return format!("SRS1={hash}={domain}={rest}@{our_domain}");
        }
        let tt = timestamp(today);
        let hash = self.hash(&[&tt, domain, local]);
        format!("SRS0={hash}={tt}={domain}={local}@{our_domain}")
    }

    /// The address an SRS local part of ours stands for, if its hash and age verify on day
    /// `today`: the original sender for SRS0, the first forwarder's SRS0 address for SRS1.
    pub fn reverse(&self, local: &str, today: u64) -> Result<String, SrsError> {
        if is_srs(local, "SRS0=") {
            let mut parts = local[5..].splitn(4, '=');
            let (Some(hash), Some(tt), Some(domain), Some(user)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(SrsError::Malformed);
            };
            if domain.is_empty() || user.is_empty() || tt.len() != 2 {
                return Err(SrsError::Malformed);
            }
            self.verify(hash, &[tt, domain, user])?;
            check_age(tt, today)?;
            Ok(format!("{user}@{domain}"))
        } else if is_srs(local, "SRS1=") {
            let mut parts = local[5..].splitn(3, '=');
            let (Some(hash), Some(hop), Some(rest)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(SrsError::Malformed);
            };
            if !well_formed_srs1(hop, rest) {
                return Err(SrsError::Malformed);
            }
            self.verify(hash, &[hop, rest])?;
            Ok(format!("SRS0{rest}@{hop}"))
        } else {
            Err(SrsError::NotSrs)
        }
    }

    fn hash(&self, parts: &[&str]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(p.to_ascii_lowercase().as_bytes());
        }
        let mut text = B64.encode(ctx.sign().as_ref());
        text.truncate(HASH_LEN);
        text
    }

    fn verify(&self, hash: &str, parts: &[&str]) -> Result<(), SrsError> {
        match self.hash(parts).eq_ignore_ascii_case(hash) {
            true => Ok(()),
            false => Err(SrsError::BadHash),
        }
    }
}

/// An SRS1 address's first hop and the rest (`=HHHH=TT=domain=local` of the first forward).
fn well_formed_srs1(hop: &str, rest: &str) -> bool {
    !hop.is_empty() && rest.starts_with('=') && rest.len() >= 2
}

/// Whether a local part is an SRS address of the given kind (`SRS0=` or `SRS1=`), any case.
fn is_srs(local: &str, kind: &str) -> bool {
    local.len() > kind.len() && local.as_bytes()[..kind.len()].eq_ignore_ascii_case(kind.as_bytes())
}

/// Whether a local part looks like an SRS address at all (for callers deciding whether to
/// try `reverse`).
pub fn looks_like_srs(local: &str) -> bool {
    is_srs(local, "SRS0=") || is_srs(local, "SRS1=")
}

/// The day, base32 in two characters.
fn timestamp(today: u64) -> String {
    let t = (today % u64::from(DAYS_MOD)) as usize;
    let chars = [BASE32[(t >> 5) & 31], BASE32[t & 31]];
    String::from_utf8_lossy(&chars).into_owned()
}

fn check_age(tt: &str, today: u64) -> Result<(), SrsError> {
    let mut value = 0u32;
    for c in tt.bytes() {
        let digit = BASE32
            .iter()
            .position(|b| *b == c.to_ascii_uppercase())
            .ok_or(SrsError::Malformed)?;
        value = value * 32 + digit as u32;
    }
    let now = (today % u64::from(DAYS_MOD)) as u32;
    let age = (now + DAYS_MOD - value) % DAYS_MOD;
    // A day ahead is a clock difference; anything else beyond the limit has expired.
    match age <= MAX_AGE_DAYS || age == DAYS_MOD - 1 {
        true => Ok(()),
        false => Err(SrsError::Expired),
    }
}

/// Days since the Unix epoch, now.
pub fn today() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    secs / 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 20_428;

    fn local(address: &str) -> &str {
        address.rsplit_once('@').unwrap().0
    }

    #[test]
    fn a_forward_reverses_to_the_sender() {
        let srs = Srs::new(b"secret");
        let a = srs.forward("Alice@Example.ORG", "fwd.test", DAY);
        assert!(
            a.starts_with("SRS0=") && a.ends_with("=Example.ORG=Alice@fwd.test"),
            "{a}"
        );
        assert_eq!(srs.reverse(local(&a), DAY).unwrap(), "Alice@Example.ORG");
        // Some MTAs lower-case what they bounce to.
        let lower = local(&a).to_ascii_lowercase();
        assert_eq!(srs.reverse(&lower, DAY + 3).unwrap(), "alice@example.org");
        assert_eq!(srs.forward("", "fwd.test", DAY), "");
    }

    #[test]
    fn forged_old_or_broken_addresses_are_refused() {
        let srs = Srs::new(b"secret");
        let a = srs.forward("alice@example.org", "fwd.test", DAY);
        let l = local(&a);
        let other = Srs::new(b"another key");
        assert_eq!(other.reverse(l, DAY), Err(SrsError::BadHash));
        let changed = l.replace("alice", "mallory");
        assert_eq!(srs.reverse(&changed, DAY), Err(SrsError::BadHash));
        assert_eq!(
            srs.reverse(l, DAY + u64::from(MAX_AGE_DAYS) + 1),
            Err(SrsError::Expired)
        );
        assert!(srs.reverse(l, DAY + u64::from(MAX_AGE_DAYS)).is_ok());
        assert!(
            srs.reverse(l, DAY - 1).is_ok(),
            "a day ahead: clocks differ"
        );
        for bad in [
            "SRS0=",
            "SRS0=abcd",
            "SRS0=abcd=AA=",
            "SRS0=abcd=AAA=d=u",
            "SRS1=x=y",
        ] {
            assert!(srs.reverse(bad, DAY).is_err(), "{bad}");
        }
        assert_eq!(srs.reverse("alice", DAY), Err(SrsError::NotSrs));
    }

    #[test]
    fn forwarding_a_forward_points_back_at_the_first_forwarder() {
        let first = Srs::new(b"first hop");
        let ours = Srs::new(b"ours");
        let hop1 = first.forward("alice@example.org", "hop1.test", DAY);
        let hop2 = ours.forward(&hop1, "hop2.test", DAY);
        assert!(
            hop2.starts_with("SRS1=")
                && hop2.contains("=hop1.test==")
                && hop2.ends_with("@hop2.test"),
            "{hop2}"
        );
        // A bounce to us goes back to the first forwarder's address, which it reverses.
        let back = ours.reverse(local(&hop2), DAY).unwrap();
        assert_eq!(back, hop1);
        assert_eq!(
            first.reverse(local(&back), DAY).unwrap(),
            "alice@example.org"
        );
        // A third forwarder keeps the chain one hop long.
        let hop3 = Srs::new(b"third").forward(&hop2, "hop3.test", DAY);
        assert!(
            hop3.contains("=hop1.test==") && hop3.ends_with("@hop3.test"),
            "{hop3}"
        );
        assert_eq!(Srs::new(b"third").reverse(local(&hop3), DAY).unwrap(), hop1);
    }
}

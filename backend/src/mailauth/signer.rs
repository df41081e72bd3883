//! Which keys sign a message, and its signatures: the active DKIM keys of its From domain, or
//! else of the nearest parent domain that has keys (RFC 7489 relaxed alignment: reports from
//! `MAILER-DAEMON@mx1.example.org` are signed `d=example.org`), read from the store and opened
//! with the back-end's key, kept for a while (a minute) — a rotation reaches every back-end
//! within it.
//!
//! Invariants: a message whose From domain (and its parents) has no active key goes
//! unsigned (never signed for an unrelated domain); a key that cannot be opened is logged and skipped, never a reason to
//! hold mail back.
use super::dkim::{self, Algorithm, SigningKey};
use crate::secrets::Secrets;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Keys = Arc<Vec<SigningKey>>;

pub struct Signer {
    store: Store,
    secrets: Secrets,
    /// How long the keys of a domain are kept.
    keep: Duration,
    cache: Mutex<HashMap<String, (Instant, Keys)>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(store: Store, secrets: Secrets, keep: Duration) -> Signer {
        Signer {
            store,
            secrets,
            keep,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The DKIM-Signature headers for `content` (empty when its From domain signs nothing).
    pub async fn sign(&self, content: &[u8]) -> Vec<u8> {
        let Some(from) = from_domain(content) else {
            return Vec::new();
        };
        for domain in signing_domains(&from) {
            let keys = self.keys(domain).await;
            if keys.is_empty() {
                continue;
            }
            return dkim::sign(content, &keys).unwrap_or_else(|e| {
                tracing::warn!(domain, error = %e, "DKIM signing failed; sending unsigned");
                Vec::new()
            });
        }
        Vec::new()
    }

    /// The active keys of `domain`, opened (kept a while).
    pub async fn keys(&self, domain: &str) -> Keys {
        let now = Instant::now();
        if let Some((at, keys)) = self.lock().get(domain) {
            if now.duration_since(*at) < self.keep {
                return keys.clone();
            }
        }
        let keys = Arc::new(self.load(domain).await);
        let mut cache = self.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(domain.to_string(), (now, keys.clone()));
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Keys)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The domain's active keys, opened; trouble is logged and the key skipped.
    async fn load(&self, domain: &str) -> Vec<SigningKey> {
        let stored = match self.store.signing_keys(domain).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(domain, error = %e, "cannot read DKIM keys; sending unsigned");
                return Vec::new();
            }
        };
        let mut keys = Vec::new();
        for k in stored {
            let opened = self
                .secrets
                .open("dkim", &k.private_key)
                .map_err(|e| e.to_string())
                .and_then(|b64| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| e.to_string())
                });
            match (opened, Algorithm::parse(&k.algorithm)) {
                (Ok(private_der), Some(algorithm)) => keys.push(SigningKey::new(
                    &k.domain,
                    &k.selector,
                    algorithm,
                    private_der,
                )),
                (Err(e), _) => {
                    tracing::warn!(domain, selector = k.selector, error = %e, "DKIM key cannot be opened; skipped")
                }
                (_, None) => {}
            }
        }
        keys
    }
}

/// The domains whose keys may sign for `from`: itself, then its parents down to two labels
/// (`mx1.example.org`, `example.org`).
pub fn signing_domains(from: &str) -> impl Iterator<Item = &str> {
    let labels = from.split('.').count();
    let mut rest = Some(from);
    std::iter::from_fn(move || {
        let d = rest?;
        rest = d
            .split_once('.')
            .map(|(_, p)| p)
            .filter(|p| p.contains('.'));
        Some(d)
    })
    .take(labels.saturating_sub(1).max(1))
}

/// The domain of the message's (first) From address, lower-cased.
pub fn from_domain(content: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse_headers(content)?;
    let address = message.from()?.first()?.address()?;
    let domain = address.rsplit_once('@')?.1.trim();
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_from_domain_is_the_signing_domain() {
        let m = b"Subject: x\r\nFrom: \"Alice A.\" <Alice@Example.TEST>\r\n\r\nbody\r\n";
        assert_eq!(from_domain(m).as_deref(), Some("example.test"));
        assert_eq!(from_domain(b"Subject: no from\r\n\r\nx\r\n"), None);
        assert_eq!(from_domain(b"From: not an address\r\n\r\n"), None);
    }

    #[test]
    fn parents_may_sign_down_to_two_labels() {
        let all: Vec<&str> = signing_domains("mx1.eu.example.org").collect();
        assert_eq!(all, ["mx1.eu.example.org", "eu.example.org", "example.org"]);
        assert_eq!(
            signing_domains("example.org").collect::<Vec<_>>(),
            ["example.org"]
        );
        assert_eq!(
            signing_domains("localhost").collect::<Vec<_>>(),
            ["localhost"]
        );
    }
}

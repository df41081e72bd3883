//! Secrets at rest: the passwords of POP3 connectors and of routes' AUTH (and DKIM keys, once
//! they exist), sealed in PostgreSQL under a key the back-end is given, so a copy of the
//! database (a backup, a replica, a dump) does not give them away. Pure: no I/O but reading
//! the key file at start.
//!
//! Invariants: a sealed secret is `bh1:` and the base64 of a random 96-bit nonce, the
//! ChaCha20-Poly1305 ciphertext and its tag; its purpose ("connector", "route") is bound as
//! associated data, so a sealed value cannot be moved to another use. Without a key nothing
//! new is stored (the caller is told to give one); a value without the prefix is a secret
//! stored in the clear before sealing existed, read as it is and sealed by `reseal` at start.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;
use std::sync::Arc;

const PREFIX: &str = "bh1:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("no secret key is configured: give the back-ends one with --secret-key-file (32 random bytes in base64: head -c 32 /dev/urandom | base64)")]
    NoKey,
    #[error("the secret key file {0}: {1}")]
    KeyFile(String, String),
    #[error("a stored secret cannot be opened with this key (another key, or damaged)")]
    Undecryptable,
}

/// The sealing key, if the back-end was given one.
#[derive(Clone, Default)]
pub struct Secrets {
    key: Option<Arc<LessSafeKey>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.key.is_some() {
            "Secrets(key)"
        } else {
            "Secrets(no key)"
        })
    }
}

impl Secrets {
    /// Reads a key file: 32 bytes, in base64 (surrounding white space ignored).
    pub fn from_key_file(path: &Path) -> Result<Secrets, SecretError> {
        let bad = |why: String| SecretError::KeyFile(path.display().to_string(), why);
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let key = B64
            .decode(text.trim())
            .map_err(|_| bad("not base64".into()))?;
        Secrets::from_key(&key).map_err(|_| bad(format!("{} bytes, not 32", key.len())))
    }

    pub fn from_key(key: &[u8]) -> Result<Secrets, SecretError> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| SecretError::NoKey)?;
        Ok(Secrets {
            key: Some(Arc::new(LessSafeKey::new(unbound))),
        })
    }

    /// A fresh key in the key file's form (for `bridgehead dev` and the docs).
    pub fn new_key_text() -> String {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system's random source");
        B64.encode(key)
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Seals `plain` for `purpose`.
    pub fn seal(&self, purpose: &str, plain: &str) -> Result<String, SecretError> {
        let key = self.key.as_ref().ok_or(SecretError::NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::NoKey)?;
        let mut data = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.as_bytes()),
            &mut data,
        )
        .map_err(|_| SecretError::Undecryptable)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// The secret in `stored` (sealed for `purpose`, or a clear one from before sealing).
    pub fn open(&self, purpose: &str, stored: &str) -> Result<String, SecretError> {
        let Some(sealed) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let key = self.key.as_ref().ok_or(SecretError::NoKey)?;
        let raw = B64.decode(sealed).map_err(|_| SecretError::Undecryptable)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Undecryptable)?;
        let mut data = data.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut data)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Undecryptable)
    }

    /// Whether `stored` is a secret still in the clear (to be sealed).
    pub fn is_clear(stored: &str) -> bool {
        !stored.is_empty() && !stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_purpose() {
        let s = Secrets::from_key(&[7u8; 32]).unwrap();
        let sealed = s.seal("connector", "hunter2").unwrap();
        assert!(sealed.starts_with("bh1:") && !sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            s.seal("connector", "hunter2").unwrap(),
            "fresh nonce"
        );
        assert_eq!(s.open("connector", &sealed).unwrap(), "hunter2");
        assert_eq!(s.open("route", &sealed), Err(SecretError::Undecryptable));
        let other = Secrets::from_key(&[8u8; 32]).unwrap();
        assert_eq!(
            other.open("connector", &sealed),
            Err(SecretError::Undecryptable)
        );
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push('A');
        assert!(s.open("connector", &damaged).is_err());
        assert_eq!(s.open("connector", "bh1:"), Err(SecretError::Undecryptable));
    }

    #[test]
    fn clear_legacy_values_and_no_key() {
        let none = Secrets::default();
        assert_eq!(none.open("connector", "plain old").unwrap(), "plain old");
        assert_eq!(none.seal("connector", "x"), Err(SecretError::NoKey));
        assert!(Secrets::is_clear("plain old") && !Secrets::is_clear("bh1:abc"));
        let text = Secrets::new_key_text();
        assert_eq!(B64.decode(&text).unwrap().len(), 32);
    }
}

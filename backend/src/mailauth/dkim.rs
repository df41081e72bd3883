//! DKIM keys and signatures (RFC 6376, RFC 8463 for Ed25519), pure: making a key pair, the
//! TXT record to publish for it, and the DKIM-Signature headers for a message.
//!
//! Invariants: the signed headers follow RFC 6376 §5.4 — From, Subject, Date, To, Cc,
//! Message-ID, Reply-To, MIME and threading headers — and From and Subject are oversigned
//! (listed once more than present), so none can be added after signing; the body is
//! canonicalized relaxed and hashed in whole (no `l=`); a message gets one signature per
//! active key (RSA and Ed25519 both: dual signing).
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};
use std::sync::{Arc, OnceLock};

/// The headers signed, in order; From and Subject twice (oversigning).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Subject",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// rsa-sha256 with a 2048-bit key.
    Rsa,
    /// ed25519-sha256 (RFC 8463).
    Ed25519,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "rsa" => Some(Algorithm::Rsa),
            "ed25519" => Some(Algorithm::Ed25519),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DkimError {
    #[error("key generation: {0}")]
    Generate(String),
    #[error("a stored key cannot be read: {0}")]
    BadKey(String),
    #[error("signing: {0}")]
    Sign(String),
}

/// A new key pair: the private key (DER: PKCS#1 for RSA, PKCS#8 for Ed25519) and the public
/// key as the TXT record's `p=` (base64).
pub fn generate(algorithm: Algorithm) -> Result<(Vec<u8>, String), DkimError> {
    let pair = match algorithm {
        Algorithm::Rsa => DkimKeyPair::generate_rsa(2048),
        Algorithm::Ed25519 => DkimKeyPair::generate_ed25519(),
    }
    .map_err(|e| DkimError::Generate(e.to_string()))?;
    let public = pair.encoded_public_key();
    Ok((pair.private_key().to_vec(), public))
}

/// The TXT record to publish at `<selector>._domainkey.<domain>`.
pub fn txt_record(algorithm: Algorithm, public_key: &str) -> String {
    format!("v=DKIM1; k={}; p={public_key}", algorithm.as_str())
}

/// One key ready to sign: domain, selector, algorithm, private key (DER) — parsed once, at
/// its first signature, and kept with it (parsing an RSA key costs about as much as a
/// signature; a key lives as long as the signer keeps it, a minute).
#[derive(Clone)]
pub struct SigningKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: Algorithm,
    pub private_der: Vec<u8>,
    parsed: Arc<OnceLock<Result<Arc<DkimKey>, DkimError>>>,
}

impl SigningKey {
    pub fn new(domain: &str, selector: &str, algorithm: Algorithm, private_der: Vec<u8>) -> Self {
        SigningKey {
            domain: domain.to_string(),
            selector: selector.to_string(),
            algorithm,
            private_der,
            parsed: Arc::default(),
        }
    }

    /// The key, parsed (once).
    pub fn key(&self) -> Result<SharedKey, DkimError> {
        let parsed = self.parsed.get_or_init(|| {
            let key = match self.algorithm {
                Algorithm::Rsa => {
                    let der =
                        PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(self.private_der.clone()));
                    RsaKey::<Sha256>::from_key_der(der).map(DkimKey::from)
                }
                Algorithm::Ed25519 => {
                    Ed25519Key::from_pkcs8_der(&self.private_der).map(DkimKey::from)
                }
            };
            key.map(Arc::new)
                .map_err(|e| DkimError::BadKey(e.to_string()))
        });
        parsed.clone().map(SharedKey)
    }
}

/// A parsed key shared by every signature made with it.
pub struct SharedKey(Arc<DkimKey>);

impl mail_auth::common::crypto::SigningKey for SharedKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl mail_auth::common::headers::Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> mail_auth::common::crypto::Algorithm {
        self.0.algorithm()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({} {} {:?})",
            self.domain, self.selector, self.algorithm
        )
    }
}

/// The DKIM-Signature headers for `message` (CRLF lines), one per key, to put before it.
pub fn sign(message: &[u8], keys: &[SigningKey]) -> Result<Vec<u8>, DkimError> {
    let mut headers = Vec::new();
    for k in keys {
        let header = signer(k.key()?, k)
            .sign(message)
            .map_err(|e| DkimError::Sign(e.to_string()))?
            .to_header();
        headers.extend_from_slice(header.as_bytes());
    }
    Ok(headers)
}

fn signer<T: mail_auth::common::crypto::SigningKey>(
    key: T,
    k: &SigningKey,
) -> DkimSigner<T, mail_auth::dkim::Done> {
    DkimSigner::from_key(key)
        .domain(k.domain.clone())
        .selector(k.selector.clone())
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign_and_name_their_key() {
        let message = b"From: Alice <alice@example.test>\r\nTo: bob@elsewhere.test\r\nSubject: hi\r\n\r\nHello.\r\n";
        let mut keys = Vec::new();
        for (algorithm, selector) in [(Algorithm::Rsa, "r1"), (Algorithm::Ed25519, "e1")] {
            let (der, public) = generate(algorithm).unwrap();
            assert!(txt_record(algorithm, &public).starts_with("v=DKIM1; k="));
            keys.push(SigningKey::new("example.test", selector, algorithm, der));
        }
        let headers = String::from_utf8(sign(message, &keys).unwrap()).unwrap();
        assert_eq!(headers.matches("DKIM-Signature:").count(), 2, "{headers}");
        assert!(headers.contains("a=rsa-sha256") && headers.contains("a=ed25519-sha256"));
        assert!(
            headers.contains("s=r1")
                && headers.contains("s=e1")
                && headers.contains("d=example.test")
        );
        assert!(headers.contains("c=relaxed/relaxed"), "{headers}");
        assert!(headers.ends_with("\r\n"));
        let bad = SigningKey::new("example.test", "r1", Algorithm::Rsa, b"garbage".to_vec());
        assert!(matches!(sign(message, &[bad]), Err(DkimError::BadKey(_))));
    }
}

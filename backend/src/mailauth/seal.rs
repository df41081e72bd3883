//! Our ARC set (RFC 8617) for a message we forward: ARC-Authentication-Results (what our
//! checks found on arrival), ARC-Message-Signature and ARC-Seal, made with the forwarding
//! domain's DKIM key, so the next hop can trust what we saw before forwarding changed the
//! envelope (SPF) — pure, over the message as it arrived.
//!
//! Invariants: a chain that already failed (its last seal says `cv=fail`) is not sealed
//! (RFC 8617 §5.1.2: nothing to add to it); the signed headers are the ones DKIM signs, none
//! of those we add (Received stays out of h=, so our trace header does not break the
//! signature); one set per forwarding, with the domain's RSA key when it has one (the
//! algorithm every ARC verifier knows), else Ed25519.
use super::dkim::{Algorithm, DkimError, SigningKey, SIGNED_HEADERS};
use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::Sha256;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::Canonicalization;
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults};

/// The key a forwarding domain seals with, of its active keys: RSA first.
pub fn choose(keys: &[SigningKey]) -> Option<&SigningKey> {
    keys.iter()
        .find(|k| k.algorithm == Algorithm::Rsa)
        .or_else(|| keys.first())
}

/// The ARC set's three headers (CRLF lines), to go above the message; `None` when the chain
/// cannot be sealed.
pub fn seal(
    message: &AuthenticatedMessage<'_>,
    results: &AuthenticationResults<'_>,
    arc: &ArcOutput<'_>,
    key: &SigningKey,
) -> Result<Option<Vec<u8>>, DkimError> {
    if !arc.can_be_sealed() {
        return Ok(None);
    }
    let set = sealer(key.key()?, key)
        .seal(message, results, arc)
        .map_err(|e| DkimError::Sign(e.to_string()))?;
    Ok(Some(set.to_header().into_bytes()))
}

fn sealer<T: mail_auth::common::crypto::SigningKey<Hasher = Sha256>>(
    k: T,
    key: &SigningKey,
) -> ArcSealer<T, mail_auth::dkim::Done> {
    ArcSealer::from_key(k)
        .domain(key.domain.clone())
        .selector(key.selector.clone())
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailauth::dkim::generate;

    #[test]
    fn a_first_seal_has_all_three_headers_and_cv_none() {
        let message = b"From: Alice <alice@example.org>\r\nTo: list@fwd.test\r\nSubject: hi\r\n\r\nHello.\r\n";
        let parsed = AuthenticatedMessage::parse(message).unwrap();
        let results = AuthenticationResults::new("mx.fwd.test");
        for algorithm in [Algorithm::Rsa, Algorithm::Ed25519] {
            let (der, _) = generate(algorithm).unwrap();
            let key = SigningKey::new("fwd.test", "s1", algorithm, der);
            let set = seal(&parsed, &results, &ArcOutput::default(), &key)
                .unwrap()
                .expect("sealed");
            let text = String::from_utf8(set).unwrap();
            for name in [
                "ARC-Seal: i=1",
                "ARC-Message-Signature: i=1",
                "ARC-Authentication-Results: i=1",
            ] {
                assert!(text.contains(name), "{name} in {text}");
            }
            assert!(
                text.contains("cv=none") && text.contains("d=fwd.test"),
                "{text}"
            );
            assert!(!text.to_ascii_lowercase().contains("received"));
        }
        let rsa = SigningKey::new("d", "r", Algorithm::Rsa, Vec::new());
        let ed = SigningKey::new("d", "r", Algorithm::Ed25519, Vec::new());
        assert_eq!(
            choose(&[ed.clone(), rsa.clone()]).unwrap().algorithm,
            Algorithm::Rsa
        );
        assert_eq!(choose(&[ed]).unwrap().algorithm, Algorithm::Ed25519);
        assert!(choose(&[]).is_none());
    }
}

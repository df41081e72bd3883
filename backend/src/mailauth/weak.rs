//! Signatures RFC 8301 says a verifier must never count as valid: rsa-sha1 (§3.1) and RSA
//! keys shorter than 1024 bits (§3.2). mail-auth verifies both; a signature that passed with
//! either is turned into a failure here, so it counts for nothing in DMARC. And signatures
//! too malformed for mail-auth to report (a required tag empty or missing): RFC 6376 §6.1.1
//! says PERMFAIL, recorded as `dkim=permerror` rather than left out.
//!
//! Invariants: only passing signatures are looked at; the key length is read from the key
//! record the verification used (the resolver's cache answers the second lookup); a record
//! that cannot be read again is no reason to fail a signature that verified.
use mail_auth::common::crypto::Algorithm;
use mail_auth::dkim::DkimError;
use mail_auth::{AuthenticatedMessage, DkimOutput, DkimResult, MessageAuthenticator};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;

/// The shortest RSA key whose signatures count (RFC 8301 §3.2).
pub const MIN_RSA_BITS: usize = 1024;

/// The outputs with every signature RFC 8301 forbids turned into a failure.
pub async fn refuse_weak<'m>(
    auth: &MessageAuthenticator,
    outputs: Vec<DkimOutput<'m>>,
) -> Vec<DkimOutput<'m>> {
    let mut checked = Vec::with_capacity(outputs.len());
    for output in outputs {
        let passed = *output.result() == DkimResult::Pass;
        let refused = match output.signature().map(|s| (s.a, s)) {
            Some((Algorithm::RsaSha1, _)) if passed => Some(DkimError::UnsupportedAlgorithm),
            Some((Algorithm::RsaSha256, s)) if passed => {
                let name = format!("{}._domainkey.{}.", s.s, s.d);
                let record = auth.txt_raw_lookup(name).await.ok();
                let bits = record.as_deref().and_then(rsa_bits);
                bits.filter(|b| *b < MIN_RSA_BITS)
                    .map(|_| DkimError::UnsupportedKeyType)
            }
            _ => None,
        };
        checked.push(match refused {
            Some(why) => DkimOutput::fail(mail_auth::Error::Dkim(why)),
            None => output,
        });
    }
    checked
}

/// Adds a permerror for each DKIM-Signature header of `message` that mail-auth could not
/// parse and did not report (it reports only its own DKIM errors, as neutral).
pub fn surface_malformed<'m>(
    message: &AuthenticatedMessage<'m>,
    outputs: &mut Vec<DkimOutput<'m>>,
) {
    for e in &message.errors {
        let dkim = e.name.eq_ignore_ascii_case(b"DKIM-Signature");
        if dkim && !matches!(e.header, mail_auth::Error::Dkim(_)) {
            outputs.push(DkimOutput::perm_err(e.header.clone()));
        }
    }
}

/// The modulus length of the RSA key in a DKIM key record (`p=`: SubjectPublicKeyInfo or
/// a bare PKCS#1 key, base64, possibly with white space), if it is one.
pub fn rsa_bits(record: &[u8]) -> Option<usize> {
    use base64::Engine;
    let text = String::from_utf8_lossy(record);
    let p = text
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .find(|(name, _)| name.trim() == "p")?
        .1;
    let clean: String = p.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .ok()?;
    let key = rsa::RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der))
        .ok()?;
    Some(key.n().bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths_from_records() {
        // A 512-bit key (openssl genrsa 512 | openssl rsa -pubout -outform DER | base64).
        let short = "v=DKIM1; k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBALrV2jdaFLON+r/gzMoD/TvIWA2JEwJm\r\n orJ3CHhHfg4fRo2JClw4X/pIugnKbCxTETfX0Ze6cW+DZi08ZU2ZJDMCAwEAAQ==";
        assert_eq!(rsa_bits(short.as_bytes()), Some(512));
        let (_, public) =
            crate::mailauth::dkim::generate(crate::mailauth::dkim::Algorithm::Rsa).unwrap();
        let record = format!("v=DKIM1; k=rsa; p={public}");
        assert_eq!(rsa_bits(record.as_bytes()), Some(2048));
        assert_eq!(rsa_bits(b"v=DKIM1; k=rsa; p=AAAA"), None);
        assert_eq!(rsa_bits(b"v=DKIM1; k=rsa"), None);
        assert_eq!(rsa_bits(b"\xff\xfe p=!!"), None);
    }
}

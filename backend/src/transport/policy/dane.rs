//! DANE for SMTP (RFC 7672, RFC 6698, RFC 7671), the pure part: what a TLSA answer means
//! for delivery, and whether a presented certificate matches a record. No I/O: the answer
//! comes from `transport::dane` (a DNSSEC-validating resolver), the certificates from the
//! TLS handshake.
//!
//! Invariants: only an answer the validating resolver marked authentic (AD) is "secure";
//! a failed lookup (SERVFAIL — bogus, expired signatures —, timeout) is never read as "no
//! DANE" (RFC 7672 §2.2); secure records that are all unusable still make TLS mandatory
//! (§2.2, unauthenticated); only DANE-TA(2) and DANE-EE(3) are usable for SMTP (§3.1.3).
use ring::digest;

/// One TLSA record (RFC 6698 §2.1), as numbers and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// DANE-TA: the certificate (or key) of a trust anchor in the server's chain.
pub const DANE_TA: u8 = 2;
/// DANE-EE: the server's own certificate (or key); names and dates are not checked.
pub const DANE_EE: u8 = 3;

impl Tlsa {
    /// Whether an SMTP client can use the record (RFC 7672 §3.1.3: PKIX usages 0 and 1 are
    /// not; unknown selectors, matching types, and digests of the wrong length neither).
    pub fn usable(&self) -> bool {
        let length_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, DANE_TA | DANE_EE) && self.selector <= 1 && length_ok
    }

    /// Whether the certificate `cert` (DER) matches the record: its whole DER (selector 0) or
    /// its SubjectPublicKeyInfo (selector 1), exactly or as a SHA-256/SHA-512 digest.
    pub fn matches(&self, cert: &[u8]) -> bool {
        let selected = match self.selector {
            0 => cert,
            1 => match spki(cert) {
                Some(s) => s,
                None => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => digest::digest(&digest::SHA256, selected).as_ref() == self.data.as_slice(),
            2 => digest::digest(&digest::SHA512, selected).as_ref() == self.data.as_slice(),
            _ => false,
        }
    }
}

/// The DER SubjectPublicKeyInfo of a DER certificate.
fn spki(cert: &[u8]) -> Option<&[u8]> {
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert).ok()?;
    Some(parsed.tbs_certificate.subject_pki.raw)
}

/// What the validating resolver said about `_25._tcp.<host>` TLSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NOERROR (records, or none: NODATA) or NXDOMAIN; `authentic`: the AD bit.
    Records {
        authentic: bool,
        records: Vec<Tlsa>,
    },
    NxDomain,
    /// SERVFAIL (validation failed: bogus, expired signatures), REFUSED, a timeout.
    Failed(String),
}

/// What the host's TLSA records mean for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dane {
    /// No secure TLSA records: other policies (MTA-STS, the route, opportunistic) decide.
    None,
    /// Secure usable records: TLS is mandatory and the certificate must match one.
    Authenticate(Vec<Tlsa>),
    /// Secure records, none usable: TLS is mandatory, the certificate is not checked.
    EncryptOnly,
    /// The lookup failed: the host must not be used now (never "no DANE").
    Unusable(String),
}

/// The meaning of an answer (RFC 7672 §2.2).
pub fn classify(answer: Answer) -> Dane {
    match answer {
        Answer::Records {
            authentic: false, ..
        }
        | Answer::NxDomain => Dane::None,
        Answer::Records { records, .. } if records.is_empty() => Dane::None,
        Answer::Records { records, .. } => {
            let usable: Vec<Tlsa> = records.into_iter().filter(Tlsa::usable).collect();
            if usable.is_empty() {
                Dane::EncryptOnly
            } else {
                Dane::Authenticate(usable)
            }
        }
        Answer::Failed(why) => Dane::Unusable(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlsa(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    fn a_certificate() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["mx.example".to_string()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn usable_records_are_dane_ta_and_ee_with_known_forms() {
        assert!(tlsa(3, 1, 1, vec![0; 32]).usable());
        assert!(tlsa(2, 0, 2, vec![0; 64]).usable());
        assert!(tlsa(3, 0, 0, vec![1, 2, 3]).usable());
        assert!(
            !tlsa(1, 1, 1, vec![0; 32]).usable(),
            "PKIX-EE is not for SMTP"
        );
        assert!(
            !tlsa(0, 1, 1, vec![0; 32]).usable(),
            "PKIX-TA is not for SMTP"
        );
        assert!(!tlsa(4, 1, 1, vec![0; 32]).usable(), "unknown usage");
        assert!(!tlsa(3, 2, 1, vec![0; 32]).usable(), "unknown selector");
        assert!(
            !tlsa(3, 1, 3, vec![0; 32]).usable(),
            "unknown matching type"
        );
        assert!(
            !tlsa(3, 1, 1, vec![0; 31]).usable(),
            "a SHA-256 digest of 31 octets"
        );
        assert!(!tlsa(3, 1, 0, vec![]).usable(), "nothing to match");
    }

    #[test]
    fn a_certificate_matches_by_whole_der_key_and_digest() {
        let cert = a_certificate();
        let key = spki(&cert).unwrap().to_vec();
        let sha256 = |b: &[u8]| digest::digest(&digest::SHA256, b).as_ref().to_vec();
        let sha512 = |b: &[u8]| digest::digest(&digest::SHA512, b).as_ref().to_vec();
        assert!(tlsa(3, 0, 0, cert.clone()).matches(&cert));
        assert!(tlsa(3, 1, 0, key.clone()).matches(&cert));
        assert!(tlsa(3, 1, 1, sha256(&key)).matches(&cert));
        assert!(tlsa(3, 0, 1, sha256(&cert)).matches(&cert));
        assert!(tlsa(3, 1, 2, sha512(&key)).matches(&cert));
        assert!(
            !tlsa(3, 1, 1, sha256(&cert)).matches(&cert),
            "selector 1 is the key"
        );
        assert!(!tlsa(3, 1, 1, sha256(&key)).matches(&a_certificate()));
        assert!(!tlsa(3, 1, 1, sha256(&key)).matches(b"not a certificate"));
    }

    #[test]
    fn only_authentic_answers_count_and_failures_are_never_no_dane() {
        let good = tlsa(3, 1, 1, vec![7; 32]);
        let secure = |records| Answer::Records {
            authentic: true,
            records,
        };
        assert_eq!(
            classify(secure(vec![good.clone(), tlsa(1, 1, 1, vec![0; 32])])),
            Dane::Authenticate(vec![good.clone()])
        );
        assert_eq!(
            classify(Answer::Records {
                authentic: false,
                records: vec![good.clone()]
            }),
            Dane::None,
            "an unsigned zone's records are not DANE"
        );
        assert_eq!(classify(secure(vec![])), Dane::None);
        assert_eq!(classify(Answer::NxDomain), Dane::None);
        assert_eq!(
            classify(secure(vec![tlsa(9, 1, 1, vec![0; 32])])),
            Dane::EncryptOnly
        );
        assert_eq!(
            classify(Answer::Failed("SERVFAIL".into())),
            Dane::Unusable("SERVFAIL".into())
        );
    }
}

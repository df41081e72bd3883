//! The DANE certificate check (RFC 7672 §3, RFC 7671) as a rustls verifier: the server's
//! certificate is accepted when it matches a DANE-EE(3) record (name and dates are not
//! checked, §3.1.1), or when a certificate in the chain it presents matches a DANE-TA(2)
//! record and the chain verifies up to that anchor for the host's name (§3.1.2). Anything
//! else fails the handshake — the mail is not sent. The handshake signatures are always
//! checked, as `tls_client::AnyCertificate` checks them.
use crate::tls_client::AnyCertificate;
use crate::transport::policy::dane::{Tlsa, DANE_EE, DANE_TA};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

#[derive(Debug)]
pub struct DaneVerifier {
    records: Arc<Vec<Tlsa>>,
    /// The handshake signature checks (and the crypto provider).
    signatures: AnyCertificate,
}

impl DaneVerifier {
    pub(crate) fn new(records: Arc<Vec<Tlsa>>, signatures: AnyCertificate) -> DaneVerifier {
        DaneVerifier {
            records,
            signatures,
        }
    }

    /// DANE-TA: the chain verifies, for `name`, up to a presented certificate that matches.
    fn trust_anchor_match(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let anchors = intermediates.iter().filter(|c| {
            self.records
                .iter()
                .any(|r| r.usage == DANE_TA && r.matches(c.as_ref()))
        });
        for anchor in anchors {
            let mut roots = RootCertStore::empty();
            if roots.add(anchor.clone().into_owned()).is_err() {
                continue;
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                self.signatures.0.clone(),
            )
            .build();
            let Ok(verifier) = verifier else { continue };
            if verifier
                .verify_server_cert(end_entity, intermediates, name, &[], now)
                .is_ok()
            {
                return true;
            }
        }
        false
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        _: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ee = self
            .records
            .iter()
            .any(|r| r.usage == DANE_EE && r.matches(end_entity.as_ref()));
        if ee || self.trust_anchor_match(end_entity, intermediates, name, now) {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::General(format!(
            "the certificate of {} matches none of its DANE TLSA records",
            name.to_str()
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

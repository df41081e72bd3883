//! Admin of DKIM keys (the trait methods in `admin.rs` delegate here): a key is made here,
//! its private half sealed before the store sees it, and the record to publish answered.
use super::convert::domain;
use super::Services;
use crate::mailauth::dkim::{self, Algorithm};
use crate::store::{DkimKey, StoreError};
use bridgehead_proto::v1 as pb;
use tonic::Status;

/// Makes and stores one key for `r.domain` in `state`.
pub async fn add(
    s: &Services,
    r: &pb::DkimKeyRequest,
    state: &str,
) -> Result<pb::DkimKeyInfo, Status> {
    let name = domain(&r.domain)?;
    let algorithm = match r.algorithm.as_str() {
        "" => Algorithm::Rsa,
        a => Algorithm::parse(a)
            .ok_or_else(|| Status::invalid_argument("the algorithm must be rsa or ed25519"))?,
    };
    let selector = match r.selector.trim() {
        "" => default_selector(algorithm),
        s if valid_selector(s) => s.to_ascii_lowercase(),
        _ => {
            return Err(Status::invalid_argument(
                "a selector is letters, digits and hyphens, dot-separated",
            ))
        }
    };
    let (private_der, public_key) = tokio::task::spawn_blocking(move || dkim::generate(algorithm))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| StoreError::Dkim(e.to_string()))?;
    use base64::Engine;
    let der_b64 = base64::engine::general_purpose::STANDARD.encode(private_der);
    let private_key = s
        .settings
        .transport
        .secrets
        .seal("dkim", &der_b64)
        .map_err(|e| Status::failed_precondition(e.to_string()))?;
    let key = DkimKey {
        domain: name,
        selector,
        algorithm: algorithm.as_str().to_string(),
        private_key,
        public_key,
        state: state.to_string(),
    };
    s.store.add_dkim_key(&key).await?;
    Ok(info(key))
}

/// New 'next' keys for every algorithm the domain signs with now (RSA when none).
pub async fn rotate(s: &Services, r: &pb::DkimKeyRequest) -> Result<pb::DkimKeyList, Status> {
    let name = domain(&r.domain)?;
    let mut algorithms: Vec<String> = s
        .store
        .signing_keys(&name)
        .await?
        .into_iter()
        .map(|k| k.algorithm)
        .collect();
    if !r.algorithm.is_empty() {
        algorithms = vec![r.algorithm.clone()];
    } else if algorithms.is_empty() {
        algorithms.push("rsa".into());
    }
    let mut keys = Vec::new();
    for algorithm in algorithms {
        let selector = match (&r.selector[..], keys.len()) {
            ("", _) => String::new(),
            (s, 0) => s.to_string(),
            (s, n) => format!("{s}-{n}"),
        };
        let req = pb::DkimKeyRequest {
            domain: name.clone(),
            selector,
            algorithm,
        };
        keys.push(add(s, &req, "next").await?);
    }
    Ok(pb::DkimKeyList { keys })
}

pub async fn list(s: &Services, domain_name: &str) -> Result<pb::DkimKeyList, Status> {
    let filter = match domain_name {
        "" => None,
        d => Some(domain(d)?),
    };
    let keys = s.store.list_dkim_keys(filter.as_deref()).await?;
    Ok(pb::DkimKeyList {
        keys: keys.into_iter().map(info).collect(),
    })
}

fn info(k: DkimKey) -> pb::DkimKeyInfo {
    let algorithm = Algorithm::parse(&k.algorithm).unwrap_or(Algorithm::Rsa);
    pb::DkimKeyInfo {
        record_name: format!("{}._domainkey.{}", k.selector, k.domain),
        record: dkim::txt_record(algorithm, &k.public_key),
        domain: k.domain,
        selector: k.selector,
        algorithm: k.algorithm,
        state: k.state,
    }
}

/// "bh20261206r" / "bh20261206e": the day and the algorithm, so a rotation on another day
/// never meets an old selector.
fn default_selector(algorithm: Algorithm) -> String {
    let day = chrono::Utc::now().format("%Y%m%d");
    let a = match algorithm {
        Algorithm::Rsa => 'r',
        Algorithm::Ed25519 => 'e',
    };
    format!("bh{day}{a}")
}

/// DNS labels: letters, digits and inner hyphens.
fn valid_selector(s: &str) -> bool {
    s.len() <= 63
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

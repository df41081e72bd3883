//! Admin checks for directory settings (the trait methods in `admin.rs` delegate here).
use super::convert::{address, domain};
use super::Services;
use crate::mailauth::policy::DmarcMode;
use bridgehead_proto::v1 as pb;
use tonic::Status;

/// A group sender policy, checked.
pub fn policy(p: &str) -> Result<&str, Status> {
    match p {
        "" => Ok("anyone"),
        "anyone" | "authenticated" | "members" => Ok(p),
        _ => Err(Status::invalid_argument(
            "the sender policy must be anyone, authenticated or members",
        )),
    }
}

/// Sets a domain's kind; a shared or relay domain needs a route (its next hop) first.
/// `admin domain auth`: what the checks of unauthenticated mail do for a domain.
pub async fn set_domain_auth(
    s: &Services,
    r: pb::DomainAuthRequest,
) -> Result<pb::DomainAuthInfo, Status> {
    let name = domain(&r.name)?;
    let dmarc = match r.dmarc.as_str() {
        "" => None,
        m => Some(DmarcMode::parse(m).ok_or_else(|| {
            Status::invalid_argument("--dmarc must be enforce, quarantine or report")
        })?),
    };
    let auth = s.store.set_domain_auth(&name, r.checks, dmarc).await?;
    Ok(pb::DomainAuthInfo {
        name,
        checks: auth.checks,
        dmarc: auth.dmarc.as_str().to_string(),
    })
}

pub async fn set_domain_kind(s: &Services, r: pb::DomainKindRequest) -> Result<(), Status> {
    let name = domain(&r.name)?;
    if !["authoritative", "shared", "relay"].contains(&r.kind.as_str()) {
        return Err(Status::invalid_argument(
            "the kind must be authoritative, shared or relay",
        ));
    }
    let catch_all = match r.catch_all.as_str() {
        "" => None,
        c if r.kind == "authoritative" => Some(address(c)?.to_string()),
        _ => {
            return Err(Status::invalid_argument(
                "a catch-all is for authoritative domains only",
            ))
        }
    };
    if r.kind != "authoritative" {
        let own = s
            .store
            .list_routes()
            .await?
            .into_iter()
            .any(|route| route.domain == name);
        if !own {
            return Err(Status::failed_precondition(format!(
                "a {} domain needs its next hop first: bridgehead admin route set {name} HOST:PORT",
                r.kind
            )));
        }
    }
    s.store
        .set_domain_kind(&name, &r.kind, catch_all.as_deref())
        .await?;
    Ok(())
}

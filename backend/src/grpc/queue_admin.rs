//! The outbound queue's and the routes' Admin calls: a filtered page of the queue, entries as
//! the API shows them, a route checked and its AUTH secret sealed.
use super::convert::domain;
use super::{console_admin, Services};
use crate::store::{QueuedMessage, Route};
use crate::transport::TlsMode;
use bridgehead_proto::v1 as pb;
use tonic::Status;

/// One page of the queue, filtered, oldest first.
pub async fn list(s: &Services, req: pb::QueueListRequest) -> Result<pb::QueueList, Status> {
    let limit = match req.limit {
        0 => 1_000,
        n => i64::from(n.min(10_000)),
    };
    let filter = console_admin::queue_filter(req.filter.unwrap_or_default())?;
    let mut entries = s.store.queue_page(&filter, req.after, limit + 1).await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next = match entries.last() {
        Some(last) if more => last.id,
        _ => 0,
    };
    Ok(pb::QueueList {
        entries: entries.into_iter().map(entry).collect(),
        next,
    })
}

/// A route as given, checked, its AUTH secret sealed, stored.
pub async fn set_route(s: &Services, r: pb::RouteInfo) -> Result<(), Status> {
    let domain = if r.domain == "*" {
        r.domain.clone()
    } else {
        domain(&r.domain)?
    };
    if r.host.trim().is_empty() || r.port == 0 || r.port > 65535 {
        return Err(Status::invalid_argument(
            "a route needs a host and a port from 1 to 65535",
        ));
    }
    if TlsMode::parse(&r.tls).is_none() {
        return Err(Status::invalid_argument(
            "tls must be none, opportunistic, required, verify, dane or implicit",
        ));
    }
    let auth_user = (!r.auth_user.is_empty()).then_some(r.auth_user);
    if auth_user.is_some() && r.tls == "none" {
        return Err(Status::invalid_argument(
            "AUTH needs TLS: use --tls required or implicit",
        ));
    }
    let auth_secret = match &auth_user {
        Some(_) => Some(
            s.settings
                .transport
                .secrets
                .seal("route", &r.auth_secret)
                .map_err(|e| Status::failed_precondition(e.to_string()))?,
        ),
        None => None,
    };
    s.store
        .set_route(&Route {
            domain,
            host: r.host.trim().to_string(),
            port: r.port as u16,
            tls: r.tls,
            auth_secret,
            auth_user,
        })
        .await?;
    Ok(())
}

/// A queue entry as the API shows it (without its headers: `ShowQueued` adds them).
pub fn entry(q: QueuedMessage) -> pb::QueueEntry {
    pb::QueueEntry {
        queue_id: q.queue_id,
        mail_from: q.mail_from,
        created_at: q.created_at.to_rfc3339(),
        next_attempt_at: q.next_attempt_at.to_rfc3339(),
        attempts: q.attempts,
        last_error: q.last_error.unwrap_or_default(),
        held: q.held,
        size: q.size.max(0) as u64,
        headers: String::new(),
        recipients: q
            .recipients
            .into_iter()
            .map(|r| pb::QueuedRecipientInfo {
                address: r.address,
                status: r.status.as_str().to_string(),
                dsn_status: r.dsn_status,
                diagnostic: r.diagnostic,
            })
            .collect(),
    }
}

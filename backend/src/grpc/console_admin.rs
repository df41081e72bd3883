//! The Admin calls the operator console brought (the CLI has them too): operators, the
//! overview, message tracking, and actions on everything a queue filter matches; and the
//! queue actions' tracking events. Proto in, domain types to the store, proto out.
use super::convert::{domain, domain_filter};
use super::Services;
use crate::store::{NodeRow, QueueFilter, StoreError, TrackQuery};
use crate::tracking::{Event, Kind};
use bridgehead_proto::v1 as pb;
use chrono::{DateTime, Utc};
use tonic::Status;

/// A node not heard from for this long is shown as down.
pub const HEALTHY_WITHIN_SECS: i64 = 30;
/// Queue entries one filtered action works through at most.
const ACTION_LIMIT: i64 = 100_000;

/// An operator's name: lower-case letters, digits, `.`, `_` and `-`, up to 64.
pub fn operator_name(name: &str) -> Result<String, Status> {
    let n = name.trim().to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(Status::invalid_argument(
            "an operator name is 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
        ));
    }
    Ok(n)
}

/// A role: `admin`, `readonly` or `domain:<a domain served here>`.
async fn role(s: &Services, role: &str) -> Result<String, Status> {
    match role.trim() {
        "admin" | "readonly" => Ok(role.trim().to_string()),
        r => match r.strip_prefix("domain:") {
            Some(d) => {
                let d = domain(d)?;
                if s.store.domain_settings(&d).await?.is_none() {
                    return Err(StoreError::UnknownDomain(d).into());
                }
                Ok(format!("domain:{d}"))
            }
            None => Err(Status::invalid_argument(
                "the role is admin, readonly or domain:<domain>",
            )),
        },
    }
}

pub async fn add_operator(s: &Services, r: pb::OperatorRequest) -> Result<(), Status> {
    let name = operator_name(&r.name)?;
    let role = role(s, &r.role).await?;
    let h = super::admin::hash(r.password).await?;
    Ok(s.store.add_operator(&name, &h, &role).await?)
}

pub async fn edit_operator(s: &Services, r: pb::OperatorRequest) -> Result<(), Status> {
    let name = operator_name(&r.name)?;
    let role = match r.role.trim() {
        "" => None,
        given => Some(role(s, given).await?),
    };
    let h = match r.password.is_empty() {
        true => None,
        false => Some(super::admin::hash(r.password).await?),
    };
    Ok(s.store
        .edit_operator(&name, h.as_deref(), role.as_deref())
        .await?)
}

pub async fn list_operators(s: &Services) -> Result<pb::OperatorList, Status> {
    let ops = s.store.list_operators().await?;
    Ok(pb::OperatorList {
        operators: ops
            .into_iter()
            .map(|o| pb::OperatorInfo {
                name: o.name,
                role: o.role,
                created_unix: o.created_at.timestamp(),
            })
            .collect(),
    })
}

pub fn node(n: NodeRow, now: DateTime<Utc>) -> pb::NodeInfo {
    pb::NodeInfo {
        healthy: (now - n.seen_at).num_seconds() <= HEALTHY_WITHIN_SECS,
        name: n.name,
        role: n.role,
        version: n.version,
        started_unix: n.started_at.timestamp(),
        seen_unix: n.seen_at.timestamp(),
        detail: n.detail,
    }
}

pub async fn overview(s: &Services) -> Result<pb::OverviewInfo, Status> {
    let now = Utc::now();
    let nodes = s.store.list_nodes().await?;
    let (depth, oldest) = s.store.queue_stats().await?;
    let (quarantined, connector_errors) = s.store.trouble_counts().await?;
    let minutes = s
        .store
        .traffic_since(now - chrono::Duration::hours(24))
        .await?;
    Ok(pb::OverviewInfo {
        nodes: nodes.into_iter().map(|n| node(n, now)).collect(),
        queue_depth: depth,
        queue_oldest_secs: oldest,
        quarantined,
        connector_errors,
        minutes: minutes
            .into_iter()
            .map(|m| pb::TrafficMinute {
                minute_unix: m.minute,
                accepted: m.accepted,
                delivered: m.delivered,
                deferred: m.deferred,
                bounced: m.bounced,
            })
            .collect(),
    })
}

pub async fn track(s: &Services, r: pb::TrackRequest) -> Result<pb::TrackList, Status> {
    let now = Utc::now();
    let at = |unix: i64, default: DateTime<Utc>| match unix {
        0 => Ok(default),
        u => DateTime::from_timestamp(u, 0)
            .ok_or_else(|| Status::invalid_argument("a time is out of range")),
    };
    let q = TrackQuery {
        text: r.text.trim().to_string(),
        domain: domain_filter(r.domain.trim())?,
        since: at(r.since_unix, now - chrono::Duration::days(1))?,
        until: at(r.until_unix, now)?,
        limit: match r.limit {
            0 => 50,
            n => i64::from(n.min(500)),
        },
    };
    if q.since > q.until {
        return Err(Status::invalid_argument("since is after until"));
    }
    let found = s.store.track(&q).await?;
    let messages = found
        .into_iter()
        .filter_map(|events| {
            let first = events.first()?.clone();
            let message_id = events.iter().find(|e| !e.message_id.is_empty());
            let mail_from = events.iter().find(|e| !e.mail_from.is_empty());
            Some(pb::TrackedMessage {
                queue_id: first.queue_id,
                message_id: message_id.map(|e| e.message_id.clone()).unwrap_or_default(),
                mail_from: mail_from.map(|e| e.mail_from.clone()).unwrap_or_default(),
                events: events
                    .into_iter()
                    .map(|e| pb::TrackEvent {
                        at_unix_ms: e.at.timestamp_millis(),
                        kind: e.kind,
                        node: e.node,
                        recipients: e.recipients,
                        detail: e.detail,
                    })
                    .collect(),
            })
        })
        .collect();
    Ok(pb::TrackList { messages })
}

/// A queue filter as given, checked.
pub fn queue_filter(f: pb::QueueFilter) -> Result<QueueFilter, Status> {
    let status = f.status.trim().to_ascii_lowercase();
    if !status.is_empty() && !QueueFilter::STATUSES.contains(&status.as_str()) {
        return Err(Status::invalid_argument(
            "status is held, deferred or waiting (or empty for any)",
        ));
    }
    Ok(QueueFilter {
        domain: domain_filter(f.domain.trim())?.unwrap_or_default(),
        sender: f.sender.trim().to_string(),
        recipient: f.recipient.trim().to_string(),
        status,
        min_age_secs: f.min_age_secs,
    })
}

/// The metadata in which the console names the operator of an Admin call it makes in process.
/// Calls from outside never carry it: `admin::check_token` removes it.
pub const OPERATOR: &str = "x-bridgehead-operator";

/// Who makes an Admin call: the console's operator, or the admin token's holder (the CLI, or
/// any other caller over gRPC).
pub fn actor<T>(req: &tonic::Request<T>) -> String {
    match req.metadata().get(OPERATOR).and_then(|v| v.to_str().ok()) {
        Some(name) => format!("operator {name} (console)"),
        None => "the admin token (CLI or API)".to_string(),
    }
}

/// Records an operator's action on a queued message.
pub fn operator_event(s: &Services, who: &str, queue_id: &str, what: &str) {
    if queue_id.is_empty() {
        return;
    }
    let e = Event {
        queue_id: queue_id.to_string(),
        detail: format!("{what} by {who}"),
        ..Default::default()
    };
    s.settings.events.record(Kind::Operator, e);
}

/// Removes a queued message; with `bounce`, its pending recipients fail and the sender is told.
pub async fn delete_queued(
    s: &Services,
    who: &str,
    queue_id: &str,
    bounce: bool,
) -> Result<(), Status> {
    if !bounce {
        s.store.queue_delete(queue_id).await?;
        operator_event(s, who, queue_id, "deleted");
        return Ok(());
    }
    if !crate::transport::bounce(&s.store, &s.settings.transport, queue_id).await? {
        return Err(Status::unavailable(
            "the message is being delivered right now; try again in a moment",
        ));
    }
    operator_event(s, who, queue_id, "bounced");
    Ok(())
}

/// Applies `action` to every entry the filter matches (up to `ACTION_LIMIT`); returns how
/// many it was applied to. Entries that left the queue meanwhile are skipped.
pub async fn act_on_queue(
    s: &Services,
    who: &str,
    r: pb::QueueActionRequest,
) -> Result<u64, Status> {
    let filter = queue_filter(r.filter.unwrap_or_default())?;
    let action = r.action.trim().to_ascii_lowercase();
    if !["retry", "hold", "release", "delete", "bounce"].contains(&action.as_str()) {
        return Err(Status::invalid_argument(
            "the action is retry, hold, release, delete or bounce",
        ));
    }
    let (mut after, mut done) = (0, 0u64);
    while (done as i64) < ACTION_LIMIT {
        let page = s.store.queue_page(&filter, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for m in page {
            let id = m.queue_id.as_str();
            let result = match action.as_str() {
                "retry" => s
                    .store
                    .queue_retry(Some(id))
                    .await
                    .map(|_| ())
                    .map_err(Status::from),
                "hold" => s.store.queue_hold(id, true).await.map_err(Status::from),
                "release" => s.store.queue_hold(id, false).await.map_err(Status::from),
                _ => delete_queued(s, who, id, action == "bounce").await,
            };
            match result {
                Ok(()) => done += 1,
                Err(e) if e.code() == tonic::Code::NotFound => continue,
                Err(e) => return Err(e),
            }
            if matches!(action.as_str(), "retry" | "hold" | "release") {
                operator_event(s, who, id, &action);
            }
        }
    }
    Ok(done)
}

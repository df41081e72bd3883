//! After an attempt: what to tell the sender, and storing that together with the entry's new
//! state in one transaction.
//!
//! Rules (RFC 3461 §5): failures are reported unless NOTIFY=NEVER (or NOTIFY without FAILURE);
//! a delay notice goes out once, after `delay_warning`, when NOTIFY is absent or has DELAY;
//! successes only for NOTIFY=SUCCESS. One report per attempt covers every recipient to report.
//! A message with the null sender is never answered to the outside: its failures go to the
//! postmaster mailbox. A local sender's report goes straight into its mailbox; an outside
//! sender's into the outbound queue with the null sender.
use super::TransportConfig;
use crate::address::Address;
use crate::dsn::{self, DsnAction, Report, ReportRecipient};
use crate::envelope::Recipient;
use crate::store::Result;
use crate::store::{DeliveryStatus, Outbound, QueuedMessage, RecipientResult, Settlement, Store};
use crate::trace;
use chrono::{DateTime, Utc};

const NOTIFY_SUCCESS: u32 = 1;
const NOTIFY_FAILURE: u32 = 2;
const NOTIFY_DELAY: u32 = 4;
pub(super) const NOTIFY_NEVER: u32 = 8;

pub async fn settle(
    store: &Store,
    config: &TransportConfig,
    worker: &str,
    m: &QueuedMessage,
    mut results: Vec<RecipientResult>,
    content: &[u8],
    now: DateTime<Utc>,
) -> Result<bool> {
    let expires =
        m.created_at + chrono::Duration::from_std(config.lifetime).unwrap_or(chrono::Duration::MAX);
    if now >= expires {
        expire(&mut results);
    }
    let pending = results.iter().any(|r| r.status == DeliveryStatus::Pending);
    let warn_after =
        chrono::Duration::from_std(config.delay_warning).unwrap_or(chrono::Duration::MAX);
    let warn_delay = pending
        && !m.delay_warned
        && !config.delay_warning.is_zero()
        && now - m.created_at >= warn_after;
    let to_report = reportable(m, &results, warn_delay, now);
    let settlement = Settlement {
        last_error: results
            .iter()
            .find(|r| r.status == DeliveryStatus::Pending)
            .map(|r| r.diagnostic.clone())
            .unwrap_or_default(),
        next_attempt: pending.then(|| {
            now + chrono::Duration::from_std(config.backoff(m.attempts)).unwrap_or_default()
        }),
        delay_warned: m.delay_warned || warn_delay,
        results,
    };
    let recipient = match (to_report.is_empty(), m.mail_from.is_empty()) {
        (true, _) => None,
        (false, false) => Some(m.mail_from.clone()),
        (false, true) => postmaster(store, config).await?,
    };
    let Some(recipient) = recipient else {
        store.settle_queue_entry(m.id, worker, &settlement).await?;
        record(config, m, &settlement.results, None);
        return Ok(false);
    };
    let report = dsn::build(&Report {
        reporting_mta: &config.hostname,
        to: &recipient,
        envid: &m.envid,
        arrival: m.created_at,
        recipients: &to_report,
        original: content,
        // RFC 8689 §5: a report on a REQUIRETLS message does not carry its body (the report
        // itself may travel without that protection).
        headers_only: m.ret.eq_ignore_ascii_case("HDRS") || m.requiretls,
        max_original: config.max_returned,
        will_retry_until: Some(expires),
        now,
    });
    let sent = Sent {
        worker,
        settlement: &settlement,
    };
    store_report(store, m, &recipient, &report, sent).await?;
    record(config, m, &settlement.results, Some(&recipient));
    tracing::info!(queue_id = %m.queue_id, to = %recipient, recipients = to_report.len(), "delivery status notification stored");
    Ok(true)
}

/// Tells message tracking what the (committed) attempt did for each recipient, and the
/// report made, if one was.
fn record(
    config: &TransportConfig,
    m: &QueuedMessage,
    results: &[RecipientResult],
    dsn: Option<&str>,
) {
    use crate::tracking::{Event, Kind};
    for r in results {
        let kind = match r.status {
            DeliveryStatus::Delivered => Kind::Delivered,
            DeliveryStatus::Failed => Kind::Bounced,
            DeliveryStatus::Pending => Kind::Deferred,
        };
        let mta = match r.remote_mta.as_str() {
            "" => String::new(),
            h => format!(" ({h})"),
        };
        config.events.record(
            kind,
            Event {
                queue_id: m.queue_id.clone(),
                mail_from: m.mail_from.clone(),
                recipients: vec![r.address.clone()],
                detail: format!(
                    "attempt {}{mta}: {} {}",
                    m.attempts, r.dsn_status, r.diagnostic
                ),
                ..Default::default()
            },
        );
    }
    if let Some(to) = dsn {
        config.events.record(
            Kind::Dsn,
            Event {
                queue_id: m.queue_id.clone(),
                mail_from: m.mail_from.clone(),
                recipients: vec![to.to_string()],
                detail: format!("delivery status notification sent to <{to}>"),
                ..Default::default()
            },
        );
    }
}

/// Pending recipients of a message whose lifetime is over fail now.
fn expire(results: &mut [RecipientResult]) {
    for r in results
        .iter_mut()
        .filter(|r| r.status == DeliveryStatus::Pending)
    {
        r.status = DeliveryStatus::Failed;
        r.dsn_status = "4.4.7".into();
        r.diagnostic = format!("delivery time expired; last error: {}", r.diagnostic);
    }
}

/// The settlement a report is stored with.
struct Sent<'a> {
    worker: &'a str,
    settlement: &'a Settlement,
}

/// Stores `report` for `recipient` (its mailbox when local, else the queue with the null
/// sender) in the transaction that settles the entry.
async fn store_report(
    store: &Store,
    m: &QueuedMessage,
    recipient: &str,
    report: &[u8],
    sent: Sent<'_>,
) -> Result<()> {
    let mut writer = store.begin_content(report.len() as u64 + 1024).await?;
    writer.write(report).await?;
    writer
        .settle_queue_entry(m.id, sent.worker, sent.settlement)
        .await?;
    let local = match Address::parse(recipient) {
        Ok(a) => store.resolve_recipient(&a).await?,
        Err(_) => None,
    };
    match local {
        Some((account, address)) => {
            writer
                .deliver(&[(account, address, trace::return_path(""))], None)
                .await?;
        }
        None => {
            let outbound = Outbound {
                queue_id: format!("{}R{}", m.queue_id, m.attempts),
                mail_from: String::new(),
                recipients: vec![Recipient::new(recipient, NOTIFY_NEVER, "")],
                ..Outbound::default()
            };
            writer.deliver(&[], Some(&outbound)).await?;
        }
    }
    Ok(())
}

/// The recipients this attempt reports on.
fn reportable(
    m: &QueuedMessage,
    results: &[RecipientResult],
    warn_delay: bool,
    now: DateTime<Utc>,
) -> Vec<ReportRecipient> {
    results
        .iter()
        .filter_map(|r| {
            let notify = m
                .recipients
                .iter()
                .find(|q| q.address == r.address)
                .map_or(0, |q| q.notify);
            let orcpt = m
                .recipients
                .iter()
                .find(|q| q.address == r.address)
                .map(|q| q.orcpt.clone());
            let action = match r.status {
                _ if notify & NOTIFY_NEVER != 0 => return None,
                DeliveryStatus::Failed if notify == 0 || notify & NOTIFY_FAILURE != 0 => {
                    DsnAction::Failed
                }
                DeliveryStatus::Pending
                    if warn_delay && (notify == 0 || notify & NOTIFY_DELAY != 0) =>
                {
                    DsnAction::Delayed
                }
                // A DSN-capable next hop was given NOTIFY: it reports delivery itself.
                DeliveryStatus::Delivered
                    if notify & NOTIFY_SUCCESS != 0
                        && !m.mail_from.is_empty()
                        && !r.notify_passed_on =>
                {
                    DsnAction::Relayed
                }
                _ => return None,
            };
            if m.mail_from.is_empty() && action != DsnAction::Failed {
                return None;
            }
            Some(ReportRecipient {
                address: r.address.clone(),
                orcpt: orcpt.unwrap_or_default(),
                action,
                status: r.dsn_status.clone(),
                remote_mta: r.remote_mta.clone(),
                diagnostic: r.diagnostic.clone(),
                last_attempt: now,
            })
        })
        .collect()
}

/// The undeliverable mailbox: configured, or postmaster@ the first domain.
async fn postmaster(store: &Store, config: &TransportConfig) -> Result<Option<String>> {
    let found = crate::directory::postmaster(store, config.postmaster.as_deref()).await?;
    if found.is_none() {
        tracing::warn!("a bounce of a bounce has nowhere to go: no domain is configured");
    }
    Ok(found)
}

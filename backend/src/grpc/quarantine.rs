//! Admin: quarantined messages listed, released and deleted (the trait methods in
//! `admin.rs` delegate here). A release delivers the stored content to the recipients it had,
//! judged again as a new submission under a token made from the entry's queue id (a repeated
//! release after a lost reply delivers nothing twice), then removes the entry.
use super::Services;
use crate::envelope::Recipient;
use crate::submit::{Envelope, Finished, Submission};
use bridgehead_proto::v1 as pb;
use tonic::Status;

/// The newest this many entries are listed.
const LIST_LIMIT: i64 = 1000;

pub async fn list(s: &Services) -> Result<pb::QuarantineList, Status> {
    let entries = s.store.list_held(LIST_LIMIT).await?;
    Ok(pb::QuarantineList {
        entries: entries
            .into_iter()
            .map(|e| pb::QuarantineEntry {
                id: e.id,
                queue_id: e.queue_id,
                mail_from: e.mail_from,
                recipients: e.recipients,
                reason: e.reason,
                client_address: e.client_address,
                created_unix: e.created_at.timestamp(),
                size: e.size.max(0) as u64,
            })
            .collect(),
    })
}

pub async fn release(s: &Services, key: &str) -> Result<pb::QuarantineReleased, Status> {
    let entry = s.store.held(key).await?.ok_or_else(|| missing(key))?;
    let content = s.store.content(entry.content_id).await?;
    let env = Envelope {
        mail_from: entry.mail_from.clone(),
        recipients: entry
            .recipients
            .iter()
            .map(|r| Recipient::new(r, 0, ""))
            .collect(),
        client_address: entry.client_address.clone(),
        protocol: "ESMTP".into(),
        auth_user: entry.auth_user.clone(),
        received_by: s.settings.transport.hostname.clone(),
        submit_token: format!("quarantine-release:{}", entry.queue_id),
        ..Envelope::default()
    };
    let max = s.settings.max_message_size.max(content.len() as u64);
    let mut submission = Submission::begin(&s.store, env, max, &s.settings.srs).await?;
    submission.write(&content).await?;
    let queue_id = match submission.finish().await? {
        Finished::Stored(a) | Finished::Duplicate(a) => a.queue_id,
    };
    s.store.remove_held(entry.id).await?;
    tracing::info!(
        quarantined = entry.queue_id,
        queue_id,
        "quarantined message released"
    );
    Ok(pb::QuarantineReleased { queue_id })
}

pub async fn delete(s: &Services, key: &str) -> Result<(), Status> {
    let entry = s.store.held(key).await?.ok_or_else(|| missing(key))?;
    s.store.remove_held(entry.id).await?;
    tracing::info!(quarantined = entry.queue_id, "quarantined message deleted");
    Ok(())
}

fn missing(key: &str) -> Status {
    Status::not_found(format!(
        "no quarantined message {key:?} (see: bridgehead admin quarantine list)"
    ))
}

//! One poll of one connector.
//!
//! Exactly once: a message is delivered and its UIDL recorded as seen in one transaction;
//! only after that commit is it marked for deletion on the server (DELE), and the server
//! deletes only at QUIT. A connection cut anywhere leaves either an unseen message (fetched
//! again next time) or a seen one (skipped, and deleted again if it should be) — never a loss
//! or a second copy. Leave-on-server keeps messages there, optionally for N days.
use super::pop3_client::{Pop3Client, Pop3Error, Security};
use super::route::route;
use super::ConnectorConfig;
use crate::address::Address;
use crate::directory;
use crate::metrics::Metrics;
use crate::names::Entry;
use crate::store::StoreError;
use crate::store::{Connector, Store};
use chrono::Utc;

#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("{0}")]
    Pop3(#[from] Pop3Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("no undeliverable mailbox: create {0} or set one for the connector")]
    NoUndeliverable(String),
    #[error("the stored password: {0}")]
    Secret(#[from] crate::secrets::SecretError),
}

pub async fn poll(
    store: &Store,
    config: &ConnectorConfig,
    metrics: &Metrics,
    worker: &str,
    c: &Connector,
) {
    let verbose = c.log_level == "debug";
    let mut fetched = 0;
    let result = run(store, config, c, &mut fetched, verbose).await;
    let (error, listing) = match &result {
        Ok(listing) => (None, Some(listing.as_slice())),
        Err(e) => (Some(e.to_string()), None),
    };
    let result = if error.is_some() { "error" } else { "ok" };
    metrics
        .connector_polls
        .get_or_create(&crate::metrics::Result { result })
        .inc();
    metrics.connector_fetched.inc_by(fetched.max(0) as u64);
    match &error {
        Some(e) => {
            tracing::warn!(connector = %c.name, fetched, error = %e, "POP3 connector poll failed")
        }
        None => tracing::info!(connector = %c.name, fetched, "POP3 connector poll"),
    }
    if let Err(e) = store
        .finish_poll(c, worker, fetched, error.as_deref(), listing)
        .await
    {
        tracing::warn!(connector = %c.name, error = %e, "cannot record the poll; the claim will expire");
    }
}

/// Returns the server's UIDL listing when the whole poll went through.
async fn run(
    store: &Store,
    config: &ConnectorConfig,
    c: &Connector,
    fetched: &mut i32,
    verbose: bool,
) -> Result<Vec<String>, PollError> {
    let security = match c.tls.as_str() {
        "implicit" => Security::Implicit,
        "stls" => Security::Stls,
        _ => Security::None,
    };
    let seen = store.seen_uidls(c.id).await?;
    let mut client =
        Pop3Client::connect(&c.server, c.port, security, c.verify_cert, config.timeout).await?;
    let password = config.secrets.open("connector", &c.secret)?;
    client.login(&c.auth, &c.username, &password).await?;
    let listing = client.uidl().await?;
    let keep_days = c
        .delete_after_days
        .map(|d| chrono::Duration::days(i64::from(d)));
    for (n, uidl) in &listing {
        if let Some(first_seen) = seen.get(uidl) {
            let expired = keep_days.is_some_and(|d| Utc::now() - *first_seen >= d);
            if !c.leave_on_server || expired {
                client.dele(*n).await?;
            }
            continue;
        }
        let message = client.retr(*n).await?;
        deliver(store, config, c, uidl, &message).await?;
        *fetched += 1;
        if verbose {
            tracing::info!(connector = %c.name, uidl, size = message.len(), "message brought in");
        }
        if !c.leave_on_server || keep_days.is_some_and(|d| d.is_zero()) {
            client.dele(*n).await?;
        }
    }
    client.quit().await?;
    Ok(listing.into_iter().map(|(_, u)| u).collect())
}

/// Delivers one message to its local mailboxes (or the undeliverable one) and records its
/// UIDL, in one transaction.
async fn deliver(
    store: &Store,
    config: &ConnectorConfig,
    c: &Connector,
    uidl: &str,
    message: &[u8],
) -> Result<(), PollError> {
    let routing = route(&c.mode, &c.target, &c.rules, message);
    let mut mailboxes: Vec<(i64, String, Vec<u8>)> = Vec::new();
    for candidate in &routing.candidates {
        let Ok(addr) = Address::parse(candidate) else {
            continue;
        };
        let found = match store.lookup(&addr, 0).await? {
            Entry::Mailbox(id, mailbox, _) => vec![(id, mailbox)],
            // A distribution group as the target: its local members (outside members and
            // contacts are not reached from here).
            Entry::Group { id, .. } => directory::expand_group(store, id).await?.mailboxes,
            Entry::Contact { .. } | Entry::None => Vec::new(),
        };
        for (id, mailbox) in found {
            let prefix = format!("Delivered-To: {mailbox}\r\n").into_bytes();
            mailboxes.push((id, mailbox, prefix));
        }
    }
    if mailboxes.is_empty() {
        let undeliverable = undeliverable_mailbox(store, config, c).await?;
        let addr = Address::parse(&undeliverable)
            .map_err(|_| PollError::NoUndeliverable(undeliverable.clone()))?;
        let (id, mailbox) = store
            .resolve_recipient(&addr)
            .await?
            .ok_or_else(|| PollError::NoUndeliverable(undeliverable.clone()))?;
        let why = if routing.looped {
            "mail loop"
        } else {
            "no local recipient"
        };
        let prefix = format!(
            "X-Bridgehead-Undeliverable: {why} (POP3 connector {})\r\n",
            c.name
        )
        .into_bytes();
        mailboxes.push((id, mailbox, prefix));
    }
    let received = format!(
        "Received: from {} by {} (Bridgehead POP3 connector {}) id {};\r\n\t{}\r\n",
        c.server,
        config.hostname,
        c.name,
        uidl.chars()
            .filter(|ch| ch.is_ascii_graphic())
            .collect::<String>(),
        Utc::now().to_rfc2822()
    );
    let mut writer = store
        .begin_content(message.len() as u64 + received.len() as u64 + 1024)
        .await?;
    writer.write(received.as_bytes()).await?;
    writer.write(message).await?;
    writer.mark_seen(c.id, uidl).await?;
    writer.deliver(&mailboxes, None).await?;
    config.events.record(
        crate::tracking::Kind::Fetched,
        crate::tracking::Event {
            queue_id: format!("{}/{}", c.name, uidl),
            message_id: crate::trace::message_id(message).unwrap_or_default(),
            recipients: mailboxes.into_iter().map(|(_, m, _)| m).collect(),
            detail: format!("fetched by POP3 connector {} from {}", c.name, c.server),
            ..Default::default()
        },
    );
    Ok(())
}

async fn undeliverable_mailbox(
    store: &Store,
    config: &ConnectorConfig,
    c: &Connector,
) -> Result<String, PollError> {
    if let Some(u) = c
        .undeliverable
        .clone()
        .or_else(|| config.postmaster.clone())
    {
        return Ok(u);
    }
    match store.primary_domain().await? {
        Some(d) => Ok(format!("postmaster@{d}")),
        None => Err(PollError::NoUndeliverable("postmaster@<a domain>".into())),
    }
}

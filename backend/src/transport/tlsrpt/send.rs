//! The TLS-RPT chores of a back-end: add the recorder's counts to the store every tick (and
//! at shutdown), and send each ended period's report to the domains that ask for one
//! (`_smtp._tls` with `mailto:` addresses) through our own queue — with the null sender, so
//! a report that cannot be delivered never bounces (addresses of ours go straight to their
//! mailboxes). Each report is claimed in the store, so
//! one back-end sends it; a domain without a valid record is marked done without a report.
use super::report::{self, Meta};
use super::Recorder;
use crate::address::Address;
use crate::envelope::Recipient;
use crate::store::{Outbound, Store};
// NOTIFY=NEVER: no report on a report.
use crate::transport::report::NOTIFY_NEVER;
use crate::transport::route::Router;
use crate::transport::TransportConfig;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Counts of periods this long past are forgotten (the admin view looks back that far).
const KEPT: Duration = Duration::from_secs(14 * 24 * 3600);

pub struct Chores {
    pub store: Store,
    pub recorder: Arc<Recorder>,
    pub router: Arc<Router>,
    pub config: Arc<TransportConfig>,
}

impl Chores {
    /// How often counts are flushed and due reports looked for.
    fn tick(&self) -> Duration {
        (self.recorder.period() / 4).clamp(Duration::from_millis(250), Duration::from_secs(60))
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.flush().await;
                    return;
                }
                _ = tokio::time::sleep(self.tick()) => {}
            }
            self.flush().await;
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "TLS reports could not be sent; will retry");
            }
        }
    }

    async fn flush(&self) {
        let counts = self.recorder.take();
        if counts.is_empty() {
            return;
        }
        if let Err(e) = self.store.add_tls_counts(&counts.rows()).await {
            tracing::warn!(error = %e, "TLS report counts not stored; kept for the next try");
            self.recorder.restore(counts);
        }
    }

    /// Reports on periods that ended (two ticks ago: every back-end has flushed them).
    async fn send_due(&self) -> crate::store::Result<()> {
        let period = self.recorder.period();
        let settled =
            Utc::now() - chrono::Duration::from_std(period + 2 * self.tick()).unwrap_or_default();
        for (start, domain) in self.store.tls_reports_due(settled).await? {
            self.report(start, &domain).await?;
        }
        let old = Utc::now() - chrono::Duration::from_std(KEPT.max(period * 3)).unwrap_or_default();
        self.store.forget_tls_counts(old).await?;
        Ok(())
    }

    async fn report(&self, start: DateTime<Utc>, domain: &str) -> crate::store::Result<()> {
        let name = format!("_smtp._tls.{domain}.");
        let rua = match self.router.txt(&name).await {
            Ok(txts) => report::rua(txts.iter().map(String::as_str)),
            Err(e) if e.temporary => {
                tracing::debug!(domain, error = %e.reason, "TLS-RPT record lookup failed; later");
                return Ok(());
            }
            Err(_) => None,
        };
        let to = rua.unwrap_or_default();
        if !self
            .store
            .claim_tls_report(start, domain, &to.join(","))
            .await?
            || to.is_empty()
        {
            return Ok(());
        }
        let rows = self.store.tls_report_rows(start, domain).await?;
        let meta = Meta {
            submitter: self.config.hostname.clone(),
            contact: self
                .config
                .postmaster
                .clone()
                .unwrap_or_else(|| format!("postmaster@{}", self.config.hostname)),
            start,
            end: start + chrono::Duration::from_std(self.recorder.period()).unwrap_or_default(),
        };
        let json = report::json(&meta, domain, &rows);
        let mail = report::message(&meta, domain, &to, &json);
        let mut local = Vec::new();
        let mut outside = Vec::new();
        for a in &to {
            let mailbox = match Address::parse(a) {
                Ok(address) => self.store.resolve_recipient(&address).await?,
                Err(_) => continue,
            };
            match mailbox {
                Some((account, address)) => {
                    local.push((account, address, crate::trace::return_path("")))
                }
                None => outside.push(Recipient::new(a, NOTIFY_NEVER, "")),
            }
        }
        let outbound = (!outside.is_empty()).then(|| Outbound {
            queue_id: crate::submit::new_queue_id(),
            mail_from: String::new(),
            recipients: outside,
            ..Outbound::default()
        });
        let mut writer = self.store.begin_content(mail.len() as u64 + 1024).await?;
        writer.write(&mail).await?;
        writer.deliver(&local, outbound.as_ref()).await?;
        tracing::info!(domain, to = %to.join(","), "TLS report queued");
        Ok(())
    }
}

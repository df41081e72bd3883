//! One transport worker: claim due entries, try each, settle it.
//!
//! Invariants: an entry is attempted only under a live claim, renewed every third of its
//! length while the attempt runs (a next hop may take longer than a claim: five-minute
//! command timeouts); when the claim cannot be renewed before it ends, the attempt is dropped
//! mid-conversation and nothing is recorded, so no other back-end ever sends a message while
//! this one may still be sending it. A recipient's status moves from pending only on a definite answer (2xx after
//! DATA: delivered; 5xx: failed) or when the message's lifetime ends; every other outcome
//! (connection refused, 4xx, TLS not offered where required, DNS trouble) leaves it pending for
//! a later attempt with backoff. Connections to a host are reused within a batch.
use super::client::{ClientError, Extensions, Outgoing, SmtpClient};
use super::fit;
use super::policy;
use super::report;
use super::route::{NextHop, Policies, Router};
use super::tlsrpt::{self, Recorder};
use super::{Target, TransportConfig};
use crate::envelope::Recipient;
use crate::mailauth::signer::Signer;
use crate::store::{DeliveryStatus, QueuedMessage, QueuedRecipient, RecipientResult, Store};
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub struct Worker {
    name: String,
    store: Store,
    router: Arc<Router>,
    config: Arc<TransportConfig>,
    metrics: Arc<crate::metrics::Metrics>,
    signer: Arc<Signer>,
    /// TLS-RPT counts of the sessions to MX hosts.
    recorder: Arc<Recorder>,
}

/// What is sent of a message: its signature headers, then its content.
#[derive(Clone, Copy)]
struct Payload<'a> {
    signature: &'a [u8],
    content: &'a [u8],
}

/// Open connections of one batch, by host:port.
type Connections = HashMap<String, SmtpClient>;

impl Worker {
    pub fn new(
        name: String,
        store: Store,
        router: Arc<Router>,
        config: Arc<TransportConfig>,
        metrics: Arc<crate::metrics::Metrics>,
        signer: Arc<Signer>,
        recorder: Arc<Recorder>,
    ) -> Worker {
        Worker {
            name,
            store,
            router,
            config,
            metrics,
            signer,
            recorder,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let claim = self.config.claim.as_secs().clamp(1, u64::from(u32::MAX)) as u32;
        while !shutdown.is_cancelled() {
            let batch = match self.store.claim_due(&self.name, claim, 10).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(worker = %self.name, error = %e, "cannot claim queue entries");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.config.poll_interval) => continue,
                }
            }
            let mut conns = Connections::new();
            let mut batch = batch.into_iter();
            for m in batch.by_ref() {
                if shutdown.is_cancelled() {
                    self.release(std::iter::once(m).chain(batch.by_ref())).await;
                    break;
                }
                let queue_id = m.queue_id.clone();
                if let Err(e) = self.attempt_claimed(m, &mut conns, claim).await {
                    tracing::warn!(worker = %self.name, queue_id, error = %e, "could not settle the attempt; the claim will expire");
                }
            }
            for (_, c) in conns.drain() {
                c.quit().await;
            }
        }
    }

    /// Stopping: the claimed entries not attempted go back to the queue at once.
    async fn release(&self, left: impl Iterator<Item = QueuedMessage>) {
        let ids: Vec<i64> = left.map(|m| m.id).collect();
        match self.store.release_claims(&self.name, &ids).await {
            Ok(n) => {
                tracing::info!(worker = %self.name, released = n, "stopping: gave back queue claims")
            }
            Err(e) => {
                tracing::warn!(worker = %self.name, error = %e, "stopping: claims will expire instead")
            }
        }
    }

    /// Attempts `m` while renewing its claim; drops the attempt (and the connections, which
    /// may be mid-transaction) if the claim is lost or cannot be renewed in time.
    async fn attempt_claimed(
        &self,
        m: QueuedMessage,
        conns: &mut Connections,
        claim_secs: u32,
    ) -> Result<(), crate::StoreError> {
        let (id, queue_id) = (m.id, m.queue_id.clone());
        let length = Duration::from_secs(u64::from(claim_secs));
        let every = length / 3;
        let mut held_until = Instant::now() + length;
        // The batch was claimed at once: a late entry's claim may have run out meanwhile.
        if !self.store.renew_claim(&self.name, id, claim_secs).await? {
            tracing::warn!(worker = %self.name, queue_id, "claim ended before the attempt; skipped");
            return Ok(());
        }
        let lost = {
            let attempt = self.attempt(m, conns);
            tokio::pin!(attempt);
            loop {
                tokio::select! {
                    done = &mut attempt => return done,
                    _ = tokio::time::sleep(every) => {}
                }
                match self.store.renew_claim(&self.name, id, claim_secs).await {
                    Ok(true) => held_until = Instant::now() + length,
                    Ok(false) => break "the claim was lost",
                    Err(e) if Instant::now() + every >= held_until => {
                        tracing::warn!(worker = %self.name, queue_id, error = %e, "cannot renew the claim");
                        break "the claim could not be renewed before it ends";
                    }
                    Err(_) => {} // try again at the next tick; the claim still has time
                }
            }
        };
        conns.clear();
        tracing::warn!(worker = %self.name, queue_id, reason = lost, "attempt abandoned; nothing recorded");
        Ok(())
    }

    async fn attempt(
        &self,
        m: QueuedMessage,
        conns: &mut Connections,
    ) -> Result<(), crate::StoreError> {
        let content = self.store.content(m.content_id).await?;
        // Signed once per attempt, for every hop: the headers go before the content as sent,
        // with the ARC set sealed on arrival (forwarded mail) below ours.
        let mut signature = self.signer.sign(&content).await;
        if let Some(head) = &m.head {
            signature.extend_from_slice(head);
        }
        let payload = Payload {
            signature: &signature,
            content: &content,
        };
        let mut by_domain: BTreeMap<String, Vec<&QueuedRecipient>> = BTreeMap::new();
        for r in m
            .recipients
            .iter()
            .filter(|r| r.status == DeliveryStatus::Pending)
        {
            let domain = r
                .address
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default();
            by_domain.entry(domain).or_default().push(r);
        }
        // RFC 8689 §5: the sender may waive the recipients' TLS policies, but not with
        // REQUIRETLS.
        let policies = if !m.requiretls && policy::tls_required::policies_waived(&content) {
            Policies::Waived
        } else {
            Policies::Apply
        };
        let mut results = Vec::new();
        for (domain, rcpts) in by_domain {
            let outcome = match self.router.next_hop(&self.store, &domain, policies).await {
                NextHop::Refused { status, reason } => {
                    all(&rcpts, DeliveryStatus::Failed, status, &reason, "")
                }
                NextHop::Unknown(reason) => {
                    all(&rcpts, DeliveryStatus::Pending, "4.4.3", &reason, "")
                }
                NextHop::Deferred { status, reason } => {
                    all(&rcpts, DeliveryStatus::Pending, status, &reason, "")
                }
                NextHop::Hosts(targets) => self.send(&targets, &m, &rcpts, payload, conns).await,
            };
            results.extend(outcome);
        }
        tracing::info!(
            queue_id = %m.queue_id,
            attempt = m.attempts,
            delivered = results.iter().filter(|r| r.status == DeliveryStatus::Delivered).count(),
            failed = results.iter().filter(|r| r.status == DeliveryStatus::Failed).count(),
            pending = results.iter().filter(|r| r.status == DeliveryStatus::Pending).count(),
            "delivery attempt"
        );
        self.metrics.delivery_attempts.inc();
        for r in &results {
            self.metrics
                .recipient_results
                .get_or_create(&crate::metrics::Result {
                    result: r.status.as_str(),
                })
                .inc();
        }
        let reported = report::settle(
            &self.store,
            &self.config,
            &self.name,
            &m,
            results,
            &content,
            Utc::now(),
        )
        .await?;
        if reported {
            self.metrics.reports.inc();
        }
        Ok(())
    }

    /// Tries the targets in order until one gives definite answers.
    async fn send(
        &self,
        targets: &[Target],
        m: &QueuedMessage,
        rcpts: &[&QueuedRecipient],
        payload: Payload<'_>,
        conns: &mut Connections,
    ) -> Vec<RecipientResult> {
        let mut last_error = String::from("no mail server to try");
        // A host refused for TLS policy (no STARTTLS, a certificate that does not verify)
        // is a 4.7.5 deferral (RFC 8461 §5, RFC 7672 §2.2), not a connection problem.
        let mut status = "4.4.1";
        // RFC 8689 §4.2.1: REQUIRETLS mail goes only over verified TLS, to a server that
        // offers REQUIRETLS; where none can be had, it is returned (5.7.10).
        let targets: Vec<&Target> = targets
            .iter()
            .filter(|t| !m.requiretls || t.tls.authenticated())
            .collect();
        if targets.is_empty() {
            let why = "REQUIRETLS: no mail server of the domain can be reached over verified TLS \
                       (DANE, an enforced MTA-STS policy, or a route with --tls verify or dane)";
            return all(rcpts, DeliveryStatus::Failed, "5.7.10", why, "");
        }
        for t in targets {
            let key = match t.ip {
                Some(ip) => format!("{}[{ip}]:{}", t.host, t.port),
                None => format!("{}:{}", t.host, t.port),
            };
            if !conns.contains_key(&key) {
                match SmtpClient::connect(t, &self.config.hostname, self.config.command_timeout)
                    .await
                {
                    Ok(c) => {
                        conns.insert(key.clone(), c);
                    }
                    Err(ClientError::Rejected(r)) if r.is_permanent() => {
                        return all(
                            rcpts,
                            DeliveryStatus::Failed,
                            &r.status(),
                            &r.line(),
                            &t.host,
                        );
                    }
                    Err(e) => {
                        self.count_failure(t, &e);
                        if t.tls.authenticated() && e.is_tls_policy() {
                            status = "4.7.5";
                            last_error = format!("{key}: TLS policy: {e}");
                        } else {
                            last_error = format!("connect to {key}: {e}");
                        }
                        continue;
                    }
                }
            }
            let client = conns.get_mut(&key).expect("inserted above");
            if m.requiretls && !client.extensions().requiretls {
                status = "5.7.10";
                last_error = format!("{key}: REQUIRETLS: the server does not offer REQUIRETLS");
                continue;
            }
            match to_hop(client, &t.host, m, rcpts, payload).await {
                Ok(results) => {
                    if let Some(policy) = &t.report {
                        self.recorder.success(policy);
                    }
                    return results;
                }
                Err(e) => {
                    conns.remove(&key);
                    last_error = format!("{key}: {e}");
                }
            }
        }
        let state = if status.starts_with('5') {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Pending
        };
        all(rcpts, state, status, &last_error, "")
    }
}

impl Worker {
    /// Counts a connection that failed for TLS under its host's policy (TLS-RPT).
    fn count_failure(&self, t: &Target, e: &ClientError) {
        let (Some(policy), Some(result)) = (&t.report, tlsrpt::result_of(e, t.tls)) else {
            return;
        };
        self.recorder
            .failure(policy, result, &t.host, t.ip, e.to_string());
    }
}

/// The hop's answers for the recipients (those it cannot take failed first); an error when
/// the connection failed, so the next hop may be tried.
async fn to_hop(
    client: &mut SmtpClient,
    host: &str,
    m: &QueuedMessage,
    rcpts: &[&QueuedRecipient],
    payload: Payload<'_>,
) -> Result<Vec<RecipientResult>, ClientError> {
    let hop = client.extensions();
    let (going, mut results) = fit_hop(m, rcpts, payload.content, hop, host);
    if going.rcpts.is_empty() {
        return Ok(results);
    }
    let list: Vec<Recipient> = going
        .rcpts
        .iter()
        .map(|r| Recipient::new(&r.address, r.notify, &r.orcpt))
        .collect();
    let outgoing = Outgoing {
        from: m.envelope_from.as_deref().unwrap_or(&m.mail_from),
        recipients: &list,
        ret: &m.ret,
        envid: &m.envid,
        signature: payload.signature,
        content: payload.content,
        eight_bit: going.eight_bit,
        smtputf8: going.smtputf8,
        requiretls: m.requiretls,
    };
    match client.send_message(&outgoing).await {
        Ok(outcome) => {
            let mut done = per_recipient(&going.rcpts, &outcome, host);
            for (d, r) in done.iter_mut().zip(&going.rcpts) {
                d.notify_passed_on = hop.dsn && r.notify != 0;
            }
            results.extend(done);
        }
        Err(ClientError::Rejected(r)) => {
            let status = if r.is_permanent() {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Pending
            };
            results.extend(all(&going.rcpts, status, &r.status(), &r.line(), host));
        }
        Err(e) => return Err(e),
    }
    Ok(results)
}

/// What goes to a hop of these extensions, and the recipients failed because they cannot.
struct Going<'a> {
    rcpts: Vec<&'a QueuedRecipient>,
    eight_bit: bool,
    smtputf8: bool,
}

fn fit_hop<'a>(
    m: &QueuedMessage,
    rcpts: &[&'a QueuedRecipient],
    content: &[u8],
    hop: Extensions,
    host: &str,
) -> (Going<'a>, Vec<RecipientResult>) {
    let message = fit::Message {
        from: &m.mail_from,
        body: &m.body,
        smtputf8: m.smtputf8,
        content,
    };
    let addresses: Vec<&str> = rcpts.iter().map(|r| r.address.as_str()).collect();
    let plan = fit::plan(message, &addresses, hop);
    let mut results = Vec::new();
    let mut going = Vec::new();
    for (i, r) in rcpts.iter().enumerate() {
        match plan.refused.iter().find(|x| x.0 == i) {
            Some((_, status, why)) => {
                results.push(result(r, DeliveryStatus::Failed, status, why, host))
            }
            None => going.push(*r),
        }
    }
    let going = Going {
        rcpts: going,
        eight_bit: plan.eight_bit,
        smtputf8: plan.smtputf8,
    };
    (going, results)
}

fn per_recipient(
    rcpts: &[&QueuedRecipient],
    outcome: &super::client::Outcome,
    host: &str,
) -> Vec<RecipientResult> {
    rcpts
        .iter()
        .zip(&outcome.recipients)
        .map(|(r, reply)| {
            let final_reply = match (&outcome.data, reply.is_positive()) {
                (Some(data), true) => data,
                _ => reply,
            };
            let status = if final_reply.is_positive() && outcome.data.is_some() {
                DeliveryStatus::Delivered
            } else if final_reply.is_permanent() {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Pending
            };
            result(r, status, &final_reply.status(), &final_reply.line(), host)
        })
        .collect()
}

fn all(
    rcpts: &[&QueuedRecipient],
    status: DeliveryStatus,
    dsn: &str,
    why: &str,
    host: &str,
) -> Vec<RecipientResult> {
    rcpts
        .iter()
        .map(|r| result(r, status, dsn, why, host))
        .collect()
}

fn result(
    r: &QueuedRecipient,
    status: DeliveryStatus,
    dsn: &str,
    why: &str,
    host: &str,
) -> RecipientResult {
    RecipientResult {
        address: r.address.clone(),
        status,
        dsn_status: dsn.to_string(),
        diagnostic: why.to_string(),
        remote_mta: host.to_string(),
        notify_passed_on: false,
    }
}

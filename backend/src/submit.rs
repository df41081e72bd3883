//! Taking a message in from SMTP: the back-end half of the handover.
//!
//! One job: turn an envelope and a content stream into committed mailbox rows and outbound
//! queue entries. Invariants: every recipient is judged again by `relay::decide` (the
//! front-end's earlier answers are not trusted blindly); the Received header (and for
//! submissions a missing Message-ID and Date) is written before the content; each local
//! mailbox gets its own Return-Path; nothing is visible until the single COMMIT in `finish`.
use crate::address::Address;
use crate::directory;
use crate::envelope::Recipient;
use crate::mailauth::forged;
use crate::mailauth::policy::{DmarcMode, DomainAuth};
use crate::mailauth::srs::{self, Srs};
use crate::relay::{decide, DomainKind, Verdict};
use crate::store::{ContentWriter, Held, Outbound, Store};
use crate::store::{Result, StoreError};
use crate::trace::{self, Arrival};
use chrono::Utc;

/// Header block gathered before the first write; a longer one is written as it is.
const MAX_HEAD: usize = 64 * 1024;
/// Room for the headers the back-end adds, on top of the message size limit.
const ADDED_HEADERS_ALLOWANCE: u64 = 8 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub mail_from: String,
    /// (address, RFC 3461 NOTIFY bits, ORCPT)
    pub recipients: Vec<Recipient>,
    pub ret: String,
    pub envid: String,
    pub client_address: String,
    pub client_helo: String,
    pub protocol: String,
    pub tls: String,
    pub auth_user: String,
    pub submission: bool,
    pub received_by: String,
    pub submit_token: String,
    /// RFC 6152 BODY= as given ("", "7BIT", "8BITMIME", "BINARYMIME").
    pub body: String,
    /// RFC 6531 SMTPUTF8 was given.
    pub smtputf8: bool,
    /// RFC 8689 REQUIRETLS was given.
    pub requiretls: bool,
    /// Not empty: a filter quarantined the message for this reason; it is stored held.
    pub quarantine: String,
}

/// How `Submission::finish` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Stored(Accepted),
    /// The same submission was stored before (its reply was lost): here is its answer, and
    /// nothing was stored now.
    Duplicate(Accepted),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub queue_id: String,
    pub local_deliveries: u32,
    pub queued_recipients: u32,
}

/// What became of a committed submission, for message tracking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trail {
    /// The Message-ID header's value without angle brackets ("" when it has none).
    pub message_id: String,
    /// The local mailboxes it was stored in.
    pub local: Vec<String>,
    /// The outside recipients it was queued for.
    pub outside: Vec<String>,
    /// Held in quarantine for this reason instead (stored nowhere else).
    pub quarantined: Option<String>,
}

pub struct Submission {
    message_id: String,
    writer: ContentWriter,
    local: Vec<(i64, String, Vec<u8>)>,
    outbound: Outbound,
    head: Option<Vec<u8>>,
    arrival: Arrival,
    submission: bool,
    /// The content as received, kept only for checks that need all of it (mail
    /// authentication of unauthenticated mail).
    copy: Option<Vec<u8>>,
    /// Whose Authentication-Results fields in the content are forged (the checked copy's
    /// authserv-id): they are renamed.
    authserv_id: Option<String>,
    /// The local domain whose name forwards the message out (see `begin`).
    forwarded_by: Option<String>,
    /// The recipients' domains' setting for the checks (`DomainAuth::combine`).
    dmarc: Option<DmarcMode>,
    /// Stored held instead of delivered (a filter's quarantine).
    held: Option<Held>,
}

/// Who handed a submission over, for checks of the message.
pub struct Origin<'a> {
    /// The front-end that took the message in (its Received header's name).
    pub received_by: &'a str,
    pub client_address: &'a str,
    pub client_helo: &'a str,
    pub mail_from: &'a str,
}

impl Submission {
    /// Judges every recipient and prepares the content writer (its transaction, if one is
    /// needed at all, begins at its first statement).
    /// Forwarded mail from outside (a contact, a group's outside member, a shared domain's
    /// other system) is queued with an SRS envelope sender in the forwarding domain.
    pub async fn begin(
        store: &Store,
        env: Envelope,
        max_size: u64,
        srs: &Srs,
    ) -> Result<Submission> {
        if env.recipients.is_empty() {
            return Err(StoreError::InvalidEnvelope("no recipients"));
        }
        let queue_id = new_queue_id();
        let judged = judge_all(store, &env, srs).await?;
        let mut outbound = Outbound {
            queue_id: queue_id.clone(),
            mail_from: env.mail_from.clone(),
            ret: env.ret.clone(),
            envid: env.envid.clone(),
            auth_user: env.auth_user.clone(),
            recipients: judged.outside,
            body: env.body.clone(),
            smtputf8: env.smtputf8,
            requiretls: env.requiretls,
            envelope_from: None,
            head: None,
        };
        let forwarded_by = judged.forwarded_by;
        if let Some(domain) = &forwarded_by {
            if !env.mail_from.is_empty() && env.auth_user.is_empty() {
                let rewritten = srs.forward(&env.mail_from, domain, srs::today());
                outbound.envelope_from = Some(rewritten);
            }
        }
        let held = (!env.quarantine.is_empty()).then(|| Held {
            queue_id: queue_id.clone(),
            mail_from: env.mail_from.clone(),
            recipients: env.recipients.iter().map(|r| r.address.clone()).collect(),
            reason: env.quarantine.clone(),
            client_address: env.client_address.clone(),
            auth_user: env.auth_user.clone(),
        });
        let local = judged.mailboxes;
        let return_path = trace::return_path(&env.mail_from);
        let local = local
            .into_iter()
            .map(|(id, address)| {
                let mut prefix = return_path.clone();
                prefix.extend_from_slice(format!("Delivered-To: {address}\r\n").as_bytes());
                (id, address, prefix)
            })
            .collect();
        let single = (env.recipients.len() == 1).then(|| env.recipients[0].address.clone());
        let arrival = Arrival {
            client_helo: env.client_helo,
            client_address: env.client_address,
            by: env.received_by,
            protocol: env.protocol,
            tls: env.tls,
            queue_id,
            single_recipient: single,
        };
        let mut writer = store
            .begin_content(max_size + ADDED_HEADERS_ALLOWANCE)
            .await?;
        if !env.submit_token.is_empty() {
            writer.claim_on_commit(&env.submit_token, &arrival.queue_id);
        }
        Ok(Submission {
            message_id: String::new(),
            writer,
            local,
            outbound,
            head: Some(Vec::new()),
            arrival,
            submission: env.submission,
            copy: None,
            authserv_id: None,
            forwarded_by,
            dmarc: judged.dmarc,
            held,
        })
    }

    /// How the recipients' domains want DMARC failures treated; `None`: they want no checks.
    pub fn dmarc_mode(&self) -> Option<DmarcMode> {
        self.dmarc
    }

    /// The local domain that forwards this message to outside recipients, if any does.
    pub fn forwarded_by(&self) -> Option<&str> {
        self.forwarded_by.as_deref()
    }

    /// Headers sent above the content to outside recipients (an ARC set).
    pub fn set_outbound_head(&mut self, head: Vec<u8>) {
        self.outbound.head = Some(head);
    }

    /// Keeps a copy of the content as received, for `content`, for checks reported as
    /// `authserv_id`: Authentication-Results fields in the content that claim it are renamed.
    pub fn keep_copy(&mut self, authserv_id: &str) {
        self.copy = Some(Vec::new());
        self.authserv_id = Some(authserv_id.to_string());
    }

    /// The content as received, if a copy was kept.
    pub fn content(&self) -> Option<&[u8]> {
        self.copy.as_deref()
    }

    /// The client and sender of this submission.
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            received_by: &self.arrival.by,
            client_address: &self.arrival.client_address,
            client_helo: &self.arrival.client_helo,
            mail_from: &self.outbound.mail_from,
        }
    }

    /// Adds a header (CRLF-terminated) to every local mailbox's copy, after its Return-Path
    /// and Delivered-To, above the Received header.
    pub fn add_local_header(&mut self, header: &str) {
        for (_, _, prefix) in &mut self.local {
            prefix.extend_from_slice(header.as_bytes());
        }
    }

    /// Adds content (CRLF lines, already dot-unstuffed).
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(copy) = self.copy.as_mut() {
            copy.extend_from_slice(data);
        }
        match self.head.as_mut() {
            Some(head) => {
                head.extend_from_slice(data);
                if trace::header_end(head).is_some() || head.len() > MAX_HEAD {
                    self.write_head().await?;
                }
                Ok(())
            }
            None => self.writer.write(data).await,
        }
    }

    /// Commits: mailboxes and queue in one transaction.
    pub async fn finish(self) -> Result<Finished> {
        Ok(self.finish_traced().await?.0)
    }

    /// `finish`, also saying where the message went (for message tracking).
    pub async fn finish_traced(mut self) -> Result<(Finished, Trail)> {
        if self.head.is_some() {
            self.write_head().await?;
        }
        let trail = Trail {
            message_id: std::mem::take(&mut self.message_id),
            local: Vec::new(),
            outside: Vec::new(),
            quarantined: self.held.as_ref().map(|h| h.reason.clone()),
        };
        let trail = match &self.held {
            Some(h) => Trail {
                local: h.recipients.clone(),
                ..trail
            },
            None => Trail {
                local: self.local.iter().map(|(_, a, _)| a.clone()).collect(),
                outside: self
                    .outbound
                    .recipients
                    .iter()
                    .map(|r| r.address.clone())
                    .collect(),
                ..trail
            },
        };
        let finished = self.commit().await?;
        Ok((finished, trail))
    }

    async fn commit(mut self) -> Result<Finished> {
        if self.head.is_some() {
            self.write_head().await?;
        }
        if let Some(held) = &self.held {
            self.writer.hold(held).await?;
            return Ok(Finished::Stored(Accepted {
                queue_id: self.arrival.queue_id,
                local_deliveries: 0,
                queued_recipients: 0,
            }));
        }
        let delivered = match self.writer.deliver(&self.local, Some(&self.outbound)).await {
            Ok(d) => d,
            Err(StoreError::DuplicateSubmission(queue_id)) => {
                return Ok(Finished::Duplicate(Accepted {
                    queue_id,
                    local_deliveries: 0,
                    queued_recipients: 0,
                }))
            }
            Err(e) => return Err(e),
        };
        Ok(Finished::Stored(Accepted {
            queue_id: self.arrival.queue_id,
            local_deliveries: delivered.len() as u32,
            queued_recipients: self.outbound.recipients.len() as u32,
        }))
    }

    async fn write_head(&mut self) -> Result<()> {
        let mut head = self.head.take().unwrap_or_default();
        if let Some(id) = &self.authserv_id {
            let end = trace::header_end(&head).unwrap_or(head.len());
            if let Some(mut renamed) = forged::rename_forged(&head[..end], id) {
                renamed.extend_from_slice(&head[end..]);
                head = renamed;
            }
        }
        let now = Utc::now();
        let mut prelude = trace::received(&self.arrival, now);
        if self.submission {
            let block = &head[..trace::header_end(&head).unwrap_or(head.len())];
            let domain = self.arrival.by.clone();
            prelude.push_str(&trace::submission_headers(
                block,
                &domain,
                &self.arrival.queue_id,
                now,
            ));
        }
        self.message_id = trace::message_id(prelude.as_bytes())
            .or_else(|| trace::message_id(&head))
            .unwrap_or_default();
        self.writer.write(prelude.as_bytes()).await?;
        self.writer.write(&head).await
    }
}

/// A queue id: 16 upper-case hex digits, random.
pub(crate) fn new_queue_id() -> String {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    id[..16].to_string()
}

/// Every recipient judged again at the end of DATA.
struct AllJudged {
    mailboxes: Vec<(i64, String)>,
    /// Outside recipients, each once, with the DSN parameters of the recipient they came from.
    outside: Vec<Recipient>,
    /// The domain of the first recipient that forwards the message out.
    forwarded_by: Option<String>,
    /// The recipients' domains' setting for the checks (`DomainAuth::combine`).
    dmarc: Option<DmarcMode>,
}

async fn judge_all(store: &Store, env: &Envelope, srs: &Srs) -> Result<AllJudged> {
    let mut all = AllJudged {
        mailboxes: Vec::new(),
        outside: Vec::new(),
        forwarded_by: None,
        dmarc: None,
    };
    let mut auth = Vec::with_capacity(env.recipients.len());
    for r in &env.recipients {
        let judged = judge(store, env, r, srs).await?;
        all.mailboxes.extend(judged.mailboxes);
        auth.push(judged.auth);
        if judged.forwarded && all.forwarded_by.is_none() {
            let domain = r.address.rsplit_once('@').map(|(_, d)| d);
            all.forwarded_by = domain.map(str::to_ascii_lowercase);
        }
        for a in judged.outside {
            if !all.outside.iter().any(|o| o.address == a) {
                all.outside
                    .push(Recipient::new(a, r.notify, r.orcpt.clone()));
            }
        }
    }
    all.dmarc = DomainAuth::combine(auth);
    Ok(all)
}

/// One recipient judged again at the end of DATA.
struct Judged {
    /// The mailboxes (account, address) it stands for.
    mailboxes: Vec<(i64, String)>,
    /// The outside addresses it stands for.
    outside: Vec<String>,
    /// Those are forwarded: the recipient is ours and sends the message on (SRS and ARC).
    forwarded: bool,
    /// What its domain asks of the checks of unauthenticated mail.
    auth: DomainAuth,
}

/// Judges one recipient again at the end of DATA, or says why it is refused now.
async fn judge(store: &Store, env: &Envelope, r: &Recipient, srs: &Srs) -> Result<Judged> {
    let authenticated = !env.auth_user.is_empty();
    let asker = directory::Asker {
        sender: &env.mail_from,
        client: &env.client_address,
        authenticated,
    };
    let parsed = Address::parse(&r.address);
    let facts = match &parsed {
        Ok(a) => Some(directory::facts(store, a, 0, asker, srs).await?),
        Err(_) => None,
    };
    // A shared domain's unknown name goes on to the domain's other system: forwarded.
    let shared = facts.as_ref().and_then(|f| f.domain) == Some(DomainKind::Shared);
    let auth = facts.as_ref().map(|f| f.auth).unwrap_or_default();
    let (mailboxes, outside, forwarded) = match decide(&parsed, facts.as_ref(), authenticated) {
        Verdict::Local {
            account_id,
            address,
        } => (vec![(account_id, address)], Vec::new(), false),
        Verdict::Group { id, .. } => {
            let expansion = directory::expand_group(store, id).await?;
            let forwarded = !expansion.outside.is_empty();
            (expansion.mailboxes, expansion.outside, forwarded)
        }
        Verdict::Forward { external, .. } => (Vec::new(), vec![external], true),
        Verdict::Relay { address } => (Vec::new(), vec![address], shared && !authenticated),
        // Filled since RCPT: the mailbox-full reply, not "recipients changed".
        Verdict::OverQuota => return Err(StoreError::QuotaExceeded(r.address.clone())),
        other => {
            let why = format!("{other:?}");
            return Err(StoreError::RecipientRefused(r.address.clone(), why));
        }
    };
    Ok(Judged {
        mailboxes,
        outside,
        forwarded,
        auth,
    })
}

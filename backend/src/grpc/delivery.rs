//! `bridgehead.v1.Delivery`: the relay decision per recipient, and message submission.
use super::convert::required;
use super::Services;
use crate::address::Address;
use crate::directory;
use crate::envelope::Recipient;
use crate::harvest::{self, Miss};
use crate::mailauth::inbound::{Asked, Client, Verdict as AuthVerdict};
use crate::mailauth::seal;
use crate::metrics;
use crate::names::Entry;
use crate::relay::{decide, Verdict};
use crate::submit::{Accepted, Envelope, Finished, Submission};
use crate::tracking;
use bridgehead_proto::v1 as pb;
use pb::recipient_reply::Verdict as V;
use tonic::{Request, Response, Status, Streaming};

#[tonic::async_trait]
impl pb::delivery_server::Delivery for Services {
    async fn check_recipient(
        &self,
        req: Request<pb::RecipientRequest>,
    ) -> Result<Response<pb::RecipientReply>, Status> {
        let mut req = req.into_inner();
        if directory::is_bare_postmaster(&req.address) {
            let configured = self.settings.transport.postmaster.as_deref();
            if let Some(p) = directory::postmaster(&self.store, configured).await? {
                req.address = p;
            }
        }
        let parsed = Address::parse(&req.address);
        let facts = match &parsed {
            Ok(a) => Some(
                directory::facts(
                    &self.store,
                    a,
                    req.size_hint,
                    directory::Asker {
                        sender: &req.sender,
                        client: &req.client_address,
                        authenticated: req.authenticated,
                    },
                    &self.settings.srs,
                )
                .await?,
            ),
            Err(_) => None,
        };
        let none = String::new;
        let verdict = decide(&parsed, facts.as_ref(), req.authenticated);
        // A mailbox's answer depends on nothing but the address (and room for the size).
        let reusable = matches!(verdict, Verdict::Local { .. })
            && matches!(facts.map(|f| f.entry), Some(Entry::Mailbox(..)));
        let penalty_secs = match self.harvest_miss(&verdict, &req).await? {
            Miss::Counted => 0,
            Miss::LimitReached => self.settings.harvest.window_secs(),
            Miss::Refused => {
                self.settings.metrics.harvest_refusals.inc();
                return Ok(Response::new(pb::RecipientReply {
                    verdict: V::Throttled as i32,
                    penalty_secs: self.settings.harvest.window_secs(),
                    ..Default::default()
                }));
            }
        };
        let (verdict, canonical, reason) = match verdict {
            Verdict::Local { address, .. }
            | Verdict::Group { address, .. }
            | Verdict::Forward { address, .. } => (V::Local, address, none()),
            Verdict::Relay { address } => (V::Relay, address, none()),
            Verdict::UnknownLocal => (V::UnknownLocal, none(), none()),
            Verdict::RelayDenied => (V::RelayDenied, none(), none()),
            Verdict::OverQuota => (V::OverQuota, none(), none()),
            Verdict::SenderRefused(group) => (V::SenderRefused, none(), group),
            Verdict::BadSyntax(why) => (V::BadSyntax, none(), why),
        };
        Ok(Response::new(pb::RecipientReply {
            verdict: verdict as i32,
            canonical,
            reason,
            reusable,
            penalty_secs,
        }))
    }

    async fn submit(
        &self,
        req: Request<Streaming<pb::SubmitPart>>,
    ) -> Result<Response<pb::SubmitReply>, Status> {
        use pb::submit_part::Part;
        let mut parts = req.into_inner();
        let first = required(parts.message().await?.and_then(|p| p.part), "envelope")?;
        let Part::Envelope(env) = first else {
            return Err(Status::invalid_argument(
                "the first part must be the envelope",
            ));
        };
        let mut submission = self.begin(envelope(env)).await?;
        while let Some(part) = parts.message().await? {
            let Some(Part::Data(d)) = part.part else {
                return Err(Status::invalid_argument(
                    "only data may follow the envelope",
                ));
            };
            submission.write(&d).await?;
        }
        self.finish(submission).await
    }

    async fn submit_whole(
        &self,
        req: Request<pb::WholeMessage>,
    ) -> Result<Response<pb::SubmitReply>, Status> {
        let req = req.into_inner();
        if req.content.len() > bridgehead_proto::CHUNK_SIZE {
            return Err(Status::invalid_argument(
                "SubmitWhole takes at most CHUNK_SIZE octets: use Submit",
            ));
        }
        let env = required(req.envelope, "envelope")?;
        let mut submission = self.begin(envelope(env)).await?;
        submission.write(&req.content).await?;
        self.finish(submission).await
    }

    async fn heartbeat(&self, req: Request<pb::NodeReport>) -> Result<Response<pb::Empty>, Status> {
        let r = req.into_inner();
        let clip = |s: String| s.chars().take(200).collect::<String>();
        let node = crate::store::NodeRow {
            name: clip(r.name),
            role: if r.role.is_empty() {
                "frontend".into()
            } else {
                clip(r.role)
            },
            version: clip(r.version),
            started_at: chrono::DateTime::from_timestamp(r.started_unix, 0).unwrap_or_default(),
            seen_at: chrono::Utc::now(),
            detail: clip(r.detail),
        };
        if node.name.is_empty() {
            return Err(Status::invalid_argument("a heartbeat names its node"));
        }
        self.store.heartbeat(&node).await?;
        Ok(Response::new(pb::Empty {}))
    }
}

impl Services {
    /// What an unknown recipient asked for without authentication costs the client address
    /// (recipient harvesting); nothing for any other verdict.
    async fn harvest_miss(
        &self,
        verdict: &Verdict,
        req: &pb::RecipientRequest,
    ) -> Result<Miss, Status> {
        if *verdict != Verdict::UnknownLocal || req.authenticated {
            return Ok(Miss::Counted);
        }
        let policy = &self.settings.harvest;
        Ok(harvest::unknown_recipient(&self.store, policy, &req.client_address).await?)
    }

    /// Starts a submission; unauthenticated mail keeps a copy for the mail authentication
    /// checks when they are on.
    async fn begin(&self, env: Envelope) -> Result<Submission, Status> {
        let checked = self.settings.mail_auth.is_some() && env.auth_user.is_empty();
        let max = self.settings.max_message_size;
        let srs = &self.settings.srs;
        let mut submission = Submission::begin(&self.store, env, max, srs).await?;
        if checked && submission.dmarc_mode().is_some() {
            submission.keep_copy(&self.settings.transport.hostname);
        }
        Ok(submission)
    }

    /// Checks a copied message (SPF, DKIM, DMARC): its Authentication-Results header goes
    /// into every mailbox copy (and a forwarded message gets our ARC set), or the sender's
    /// policy refuses it: PERMISSION_DENIED, whose message starts with the enhanced status
    /// code the front-end replies with — 5.7.1 (a DMARC `p=reject` failure: 550) or 4.7.0
    /// (DNS could not tell: 451, try later).
    async fn check_mail_auth(&self, submission: &mut Submission) -> Result<(), Status> {
        let (Some(checker), Some(content), Some(dmarc)) = (
            &self.settings.mail_auth,
            submission.content(),
            submission.dmarc_mode(),
        ) else {
            return Ok(());
        };
        let keys = match submission.forwarded_by() {
            Some(domain) => self.settings.signer.keys(domain).await,
            None => Default::default(),
        };
        let asked = Asked {
            dmarc,
            seal_with: seal::choose(&keys),
        };
        let origin = submission.origin();
        let Ok(ip) = origin.client_address.parse() else {
            return Ok(());
        };
        let client = Client {
            ip,
            helo: origin.client_helo,
            mail_from: origin.mail_from,
        };
        let checked = checker.check(content, &client, asked).await;
        let outcome = |result| metrics::Result { result };
        let checks = &self.settings.metrics.mail_auth_checks;
        match checked.verdict {
            AuthVerdict::Deliver(header) => {
                checks.get_or_create(&outcome("delivered")).inc();
                submission.add_local_header(&header);
                if let Some(set) = checked.arc_set {
                    submission.set_outbound_head(set);
                }
                Ok(())
            }
            AuthVerdict::Reject(why) => {
                checks.get_or_create(&outcome("rejected")).inc();
                tracing::info!(client = %ip, sender = %client.mail_from, why, "message refused");
                Err(Status::permission_denied(format!("5.7.1 {why}")))
            }
            AuthVerdict::Defer(why) => {
                checks.get_or_create(&outcome("deferred")).inc();
                tracing::info!(client = %ip, sender = %client.mail_from, why, "message deferred");
                Err(Status::permission_denied(format!("4.7.0 {why}")))
            }
        }
    }

    /// Commits a submission and counts it.
    async fn finish(
        &self,
        mut submission: Submission,
    ) -> Result<Response<pb::SubmitReply>, Status> {
        self.check_mail_auth(&mut submission).await?;
        let o = submission.origin();
        let mut event = tracking::Event {
            mail_from: o.mail_from.to_string(),
            detail: format!(
                "from {} [{}] by front-end {}",
                o.client_helo, o.client_address, o.received_by
            ),
            ..Default::default()
        };
        let (finished, trail) = submission.finish_traced().await?;
        let accepted = match finished {
            Finished::Stored(accepted) => {
                let m = &self.settings.metrics;
                m.messages_stored.inc();
                m.local_deliveries
                    .inc_by(u64::from(accepted.local_deliveries));
                m.queued_recipients
                    .inc_by(u64::from(accepted.queued_recipients));
                event.queue_id = accepted.queue_id.clone();
                tracking::record_accepted(&self.settings.events, event, trail);
                accepted
            }
            Finished::Duplicate(accepted) => accepted,
        };
        Ok(reply(accepted))
    }
}

fn reply(accepted: Accepted) -> Response<pb::SubmitReply> {
    Response::new(pb::SubmitReply {
        queue_id: accepted.queue_id,
        local_deliveries: accepted.local_deliveries,
        queued_recipients: accepted.queued_recipients,
    })
}

fn envelope(e: pb::Envelope) -> Envelope {
    Envelope {
        mail_from: e.mail_from,
        recipients: e
            .recipients
            .into_iter()
            .map(|r| Recipient::new(r.address, r.notify, r.orcpt))
            .collect(),
        ret: e.ret,
        envid: e.envid,
        client_address: e.client_address,
        client_helo: e.client_helo,
        protocol: e.protocol,
        tls: e.tls,
        auth_user: e.auth_user,
        submission: e.submission,
        received_by: e.received_by,
        submit_token: e.submit_token,
        body: e.body,
        smtputf8: e.smtputf8,
        requiretls: e.requiretls,
        quarantine: e.quarantine,
    }
}

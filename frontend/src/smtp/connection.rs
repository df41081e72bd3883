//! The SMTP connection driver: sockets, TLS and back-end calls around the pure `Session`.
//!
//! One job: read, feed the session (command lines, DATA and BDAT chunks through `intake`),
//! carry out its actions. Replies to pipelined commands are gathered and written together
//! (RFC 2920). Invariants: after STARTTLS every byte already read is thrown away (RFC 3207
//! §4.2, CVE-2011-0411 class; the rule lives in `wire`); the message goes to a back-end only
//! when its data ended cleanly, and "250" follows only the back-end's commit.
use super::harvest::HarvestGuard;
use super::intake::{Intake, Step};
use super::recipients::RecipientCache;
use super::session::{
    Action, Envelope, Event, Listener, RcptVerdict, Session, SmtpConfig, SubmitResult,
};
use crate::backend_client::{Backends, CallError, Origin};
use crate::filter::message::{Changes, Envelope as MilterEnvelope};
use crate::filter::{self, FilterSpec, Filtered};
use crate::metrics::Protocol;
use crate::smtp::session::AuthResult;
use crate::tls::Conn;
use crate::wire::Wire;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info_span, Instrument};

/// The longest a whole DATA section may take, however steadily it trickles in.
const DATA_LIMIT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub hostname: String,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub allow_plaintext_auth: bool,
    pub max_bad_commands: u32,
    /// Waiting for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    pub command_timeout: Duration,
    /// Waiting for the next block of DATA (§4.5.3.2.5: at least 3 minutes).
    pub data_timeout: Duration,
    /// The TLS handshake after STARTTLS.
    pub tls_handshake_timeout: Duration,
}

/// What every SMTP connection of a front-end shares.
pub struct SmtpContext {
    pub backends: Arc<Backends>,
    pub recipients: RecipientCache,
    pub harvest: HarvestGuard,
    pub tls: Option<TlsAcceptor>,
    pub settings: SmtpSettings,
    pub milters: Milters,
}

/// The milters each kind of listener's messages go through.
#[derive(Debug, Clone, Default)]
pub struct Milters {
    /// Port 25 (and submission, unless `submission` is given).
    pub mx: Vec<FilterSpec>,
    pub submission: Option<Vec<FilterSpec>>,
}

impl Milters {
    pub fn for_listener(&self, listener: Listener) -> &[FilterSpec] {
        match (listener, &self.submission) {
            (Listener::Submission | Listener::Submissions, Some(s)) => s,
            _ => &self.mx,
        }
    }
}

/// Serves one client connection until it ends.
pub async fn serve(
    conn: Conn,
    peer: SocketAddr,
    listener: Listener,
    ctx: Arc<SmtpContext>,
    shutdown: CancellationToken,
) {
    let s = &ctx.settings;
    let config = SmtpConfig {
        listener,
        hostname: s.hostname.clone(),
        max_message_size: s.max_message_size,
        max_recipients: s.max_recipients,
        starttls_available: ctx.tls.is_some() && listener != Listener::Submissions,
        allow_plaintext_auth: s.allow_plaintext_auth,
        max_bad_commands: s.max_bad_commands,
    };
    let tls = conn.tls_description();
    let mut driver = Driver {
        wire: Wire::new(conn),
        buf: Vec::with_capacity(1024),
        intake: Intake::default(),
        session: Session::new(config),
        peer,
        ctx: ctx.clone(),
        transaction: None,
        shutdown: shutdown.clone(),
        milter_connections: Vec::new(),
    };
    if let Err(e) = driver.run(tls, &shutdown).await {
        tracing::debug!(%peer, error = %e, "SMTP connection ended with an error");
    }
}

struct Driver {
    wire: Wire,
    buf: Vec<u8>,
    /// Lines, DATA and BDAT chunks out of the bytes read; the message's spool.
    intake: Intake,
    session: Session,
    peer: SocketAddr,
    ctx: Arc<SmtpContext>,
    /// The span of the open mail transaction: its RCPT checks and its submission are one
    /// trace.
    transaction: Option<tracing::Span>,
    shutdown: CancellationToken,
    /// Connections to the milters, kept from one message to the next of this session.
    milter_connections: filter::KeptConnections,
}

impl Driver {
    async fn run(&mut self, tls: Option<String>, shutdown: &CancellationToken) -> io::Result<()> {
        self.apply(Event::Connected { tls }).await?;
        // Commands: the clock restarts only when a whole line has arrived (a client trickling
        // bytes still times out). DATA: each block must come within the data timeout, and the
        // whole of it within DATA_LIMIT.
        let mut last_command = tokio::time::Instant::now();
        let mut data_started = None;
        loop {
            if self.process_input().await? {
                last_command = tokio::time::Instant::now();
            }
            if self.session.is_closed() {
                return self.wire.close(self.ctx.settings.command_timeout).await;
            }
            self.flush().await?;
            let now = tokio::time::Instant::now();
            let deadline = match (self.intake.in_data(), data_started) {
                (true, None) => {
                    data_started = Some(now);
                    now + self.ctx.settings.data_timeout
                }
                (true, Some(started)) => {
                    (now + self.ctx.settings.data_timeout).min(started + DATA_LIMIT)
                }
                (false, _) => {
                    data_started = None;
                    last_command + self.ctx.settings.command_timeout
                }
            };
            let in_data = self.intake.in_data();
            tokio::select! {
                read = tokio::time::timeout_at(deadline, self.wire.read(&mut self.buf, 4096)) => match read {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        self.apply(Event::Disconnected).await?;
                        return Ok(());
                    }
                    Ok(Ok(_)) => {}
                    Err(_) => self.apply(Event::Timeout).await?,
                },
                _ = shutdown.cancelled(), if !in_data => self.apply(Event::ShuttingDown).await?,
            }
        }
    }

    /// Feeds everything buffered through the intake: lines, the end of DATA and of BDAT
    /// chunks go to the session. True when one of them was processed.
    async fn process_input(&mut self) -> io::Result<bool> {
        let mut progress = false;
        let mut buf = std::mem::take(&mut self.buf);
        while !self.session.is_closed() {
            let (consumed, event) = match self.intake.next(&buf, self.session.max_line()) {
                Step::More { consumed } => {
                    buf.drain(..consumed);
                    break;
                }
                Step::Line { consumed } => {
                    progress = true;
                    self.apply(Event::Line(&buf[..consumed])).await?;
                    (consumed, None)
                }
                Step::Skipped { consumed } => (consumed, None),
                Step::Event { consumed, event } => (consumed, Some(event)),
            };
            buf.drain(..consumed);
            if let Some(event) = event {
                // A whole line, or the end of DATA or of a chunk, restarts the command clock;
                // a part of an endless line does not.
                progress = true;
                self.apply(event).await?;
            }
            self.wire.after_step(&mut buf);
        }
        self.buf = buf;
        Ok(progress)
    }

    async fn apply(&mut self, event: Event<'_>) -> io::Result<()> {
        let mut actions: VecDeque<Action> = self.session.handle(event).into();
        if self.session.in_transaction() && self.transaction.is_none() {
            let span = info_span!("smtp", otel.name = "smtp transaction", client = %self.peer);
            self.transaction = Some(span);
        }
        let span = self.transaction.clone().unwrap_or_else(tracing::Span::none);
        while let Some(action) = actions.pop_front() {
            if let Some(result) = self.execute(action).instrument(span.clone()).await? {
                actions.extend(self.session.handle(result));
            }
        }
        if !self.session.in_transaction() {
            self.transaction = None; // ends the transaction's span
        }
        Ok(())
    }

    async fn execute(&mut self, action: Action) -> io::Result<Option<Event<'static>>> {
        let client = self.peer.ip().to_string();
        Ok(match action {
            Action::Send(text) => {
                self.wire.out.extend_from_slice(text.as_bytes());
                None
            }
            Action::StartTls => {
                let acceptor = self
                    .ctx
                    .tls
                    .clone()
                    .expect("STARTTLS offered only with TLS configured");
                let s = &self.ctx.settings;
                let (limit, write) = (s.tls_handshake_timeout, s.command_timeout);
                self.wire
                    .start_tls(&acceptor, limit, &self.shutdown, write)
                    .await?;
                let tls = self.wire.tls_description().unwrap_or_default();
                Some(Event::TlsStarted { tls })
            }
            Action::Authenticate { user, password } => {
                let span = info_span!("smtp", otel.name = "smtp AUTH", client = %self.peer);
                let result = self.authenticate(&user, &password).instrument(span).await;
                Some(Event::Authenticated(result))
            }
            Action::CheckRecipient {
                address,
                sender,
                authenticated,
                size,
            } => {
                let verdict = self
                    .check_recipient(&address, &sender, &client, authenticated, size)
                    .await;
                Some(Event::RecipientChecked(verdict))
            }
            Action::ReceiveData { .. } => {
                self.flush().await?;
                self.intake.begin(&action);
                None
            }
            Action::ReceiveChunk { .. } => {
                self.intake.begin(&action);
                None
            }
            Action::Submit(envelope) => {
                Some(Event::Submitted(self.submit(&envelope, client).await))
            }
            Action::Close => None,
        })
    }

    /// AUTH's check, counted and logged.
    async fn authenticate(&self, user: &str, password: &str) -> AuthResult {
        let backends = &self.ctx.backends;
        let client = self.peer.ip().to_string();
        let result = match backends.authenticate(user, password, &client).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "SMTP AUTH: back-end unavailable");
                AuthResult::Unavailable
            }
        };
        let ok = matches!(result, AuthResult::Ok { .. });
        tracing::info!(peer = %self.peer, user, ok, "SMTP AUTH");
        let m = backends.metrics();
        let counter = if ok { &m.logins } else { &m.auth_failures };
        counter.get_or_create(&Protocol { protocol: "smtp" }).inc();
        result
    }

    /// Hands the spooled message, through the milters, to a back-end under a fresh
    /// submission token.
    async fn submit(&mut self, envelope: &Envelope, client: String) -> SubmitResult {
        let backends = self.ctx.backends.clone();
        let origin = Origin {
            client_address: client,
            received_by: self.ctx.settings.hostname.clone(),
            token: uuid::Uuid::new_v4().to_string(),
        };
        // The spool's blocks are what goes over the wire (no copy), freed with the handover.
        let size = self.intake.spool.len() as u64;
        let mut content = self.intake.spool.take();
        let filtered;
        let mut envelope = envelope;
        let ctx = self.ctx.clone();
        let milters = ctx.milters.for_listener(self.session.listener());
        if !milters.is_empty() {
            match self.filter(milters, envelope, content).await {
                Ok((blocks, env)) => (content, filtered) = (blocks, env),
                Err(refused) => return refused,
            }
            envelope = &filtered;
        }
        let result = backends.submit(envelope, &origin, content).await;
        if result.is_ok() {
            let m = backends.metrics();
            m.messages_accepted.inc();
            m.bytes_accepted.inc_by(size);
        }
        submit_result(result, &self.peer)
    }

    /// The message through the milters: what to hand over (the blocks, the envelope with
    /// the filters' changes and quarantine), or the reply that ends it here.
    async fn filter(
        &mut self,
        milters: &[FilterSpec],
        envelope: &Envelope,
        content: Vec<bytes::Bytes>,
    ) -> Result<(Vec<bytes::Bytes>, Envelope), SubmitResult> {
        let metrics = self.ctx.backends.metrics();
        let milter_env = milter_envelope(envelope, &self.peer, &self.ctx.settings.hostname);
        let (blocks, changes, held) = match filter::run(
            milters,
            &mut self.milter_connections,
            &milter_env,
            content,
            metrics,
        )
        .await
        {
            Filtered::Deliver { blocks, changes } => (blocks, changes, None),
            Filtered::Quarantine {
                blocks,
                changes,
                why,
            } => (blocks, changes, Some(why)),
            Filtered::Refuse(reply) => return Err(SubmitResult::Filtered(reply)),
            Filtered::Discard => {
                tracing::info!(peer = %self.peer, "message discarded by a milter");
                return Err(SubmitResult::Discarded);
            }
        };
        let mut changed = envelope.clone();
        if let Some(why) = held {
            tracing::info!(peer = %self.peer, reason = %why, "message quarantined by a milter");
            changed.quarantine = why;
        }
        if !apply_envelope_changes(&mut changed, &changes) {
            return Err(SubmitResult::Discarded);
        }
        Ok((blocks, changed))
    }

    /// The verdict on one recipient: from the front-end's memory, or a back-end's answer
    /// (remembered when it may be given again).
    async fn check_recipient(
        &self,
        address: &str,
        sender: &str,
        client: &str,
        authenticated: bool,
        size: u64,
    ) -> RcptVerdict {
        let (cache, backends) = (&self.ctx.recipients, &self.ctx.backends);
        let now = Instant::now();
        if !authenticated && self.ctx.harvest.refused(self.peer.ip(), now) {
            backends.metrics().harvest_refusals.inc();
            return RcptVerdict::Throttled;
        }
        if let Some(canonical) = cache.get(address, size, now) {
            backends.metrics().recipient_cache_hits.inc();
            return RcptVerdict::Accept(canonical);
        }
        match backends
            .check_recipient(address, sender, client, authenticated, size)
            .await
        {
            Ok(answer) => {
                if !answer.penalty.is_zero() {
                    self.ctx.harvest.refuse(self.peer.ip(), answer.penalty, now);
                }
                cache.put(address, size, &answer, now);
                answer.verdict
            }
            Err(_) => RcptVerdict::Unavailable,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.wire.flush(self.ctx.settings.command_timeout).await
    }
}

/// The envelope and connection as milters get them (commands and macros).
fn milter_envelope(env: &Envelope, peer: &SocketAddr, hostname: &str) -> MilterEnvelope {
    let ip = peer.ip().to_string();
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_ascii_uppercase();
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    let mut mail_macros = vec![pair("i", &id), pair("{mail_addr}", &env.mail_from)];
    if !env.auth_user.is_empty() {
        mail_macros.push(pair("{auth_type}", "PLAIN"));
        mail_macros.push(pair("{auth_authen}", &env.auth_user));
    }
    MilterEnvelope {
        client_name: "unknown".into(),
        client_address: ip.clone(),
        client_port: peer.port(),
        family: if peer.is_ipv4() { b'4' } else { b'6' },
        helo: env.helo.clone(),
        mail: vec![format!("<{}>", env.mail_from)],
        rcpts: env
            .recipients
            .iter()
            .map(|r| vec![format!("<{}>", r.address)])
            .collect(),
        macros: vec![
            (
                b'C',
                vec![
                    pair("j", hostname),
                    pair("{daemon_name}", "bridgehead"),
                    pair("_", &format!("unknown [{ip}]")),
                    pair("{client_addr}", &ip),
                    pair("{client_port}", &peer.port().to_string()),
                    pair("{client_name}", "unknown"),
                ],
            ),
            (b'H', vec![pair("{tls_version}", &env.tls)]),
            (b'M', mail_macros),
            (b'E', vec![pair("i", &id)]),
        ],
    }
}

/// Applies the milters' sender and recipient changes; false when no recipient is left.
fn apply_envelope_changes(env: &mut Envelope, changes: &Changes) -> bool {
    if let Some(sender) = &changes.new_sender {
        env.mail_from = sender.clone();
    }
    env.recipients.retain(|r| {
        !changes
            .deleted_rcpts
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&r.address))
    });
    for added in &changes.added_rcpts {
        if !env
            .recipients
            .iter()
            .any(|r| r.address.eq_ignore_ascii_case(added))
        {
            env.recipients.push(crate::mail::Recipient {
                address: added.clone(),
                notify: 0,
                orcpt: String::new(),
            });
        }
    }
    !env.recipients.is_empty()
}

fn submit_result(result: Result<String, CallError>, peer: &SocketAddr) -> SubmitResult {
    match result {
        Ok(queue_id) => {
            tracing::info!(%peer, queue_id, "message accepted");
            SubmitResult::Queued(queue_id)
        }
        Err(CallError::Quota) => SubmitResult::OverQuota,
        Err(CallError::TooLarge) => SubmitResult::TooBig,
        Err(CallError::RecipientRefused(why)) => SubmitResult::Refused(why),
        Err(CallError::PolicyRejected(why)) => SubmitResult::PolicyRejected(why),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "message not stored");
            SubmitResult::Unavailable
        }
    }
}

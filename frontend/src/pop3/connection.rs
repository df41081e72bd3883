//! The POP3 connection driver: sockets, TLS and back-end calls around the pure `Session`.
//!
//! One job: read lines, feed them to the session, carry out its actions. Replies to
//! pipelined commands are gathered and written together. Invariants: after STLS the bytes
//! already read are thrown away (CVE-2011-0411 class; the rule lives in `wire`); a session that ends without QUIT gives
//! its lease back and deletes nothing; a message is streamed chunk by chunk, never held whole.
use super::dotstuff::DotStuffer;
use super::lease;
use super::parse::{Frame, Framer};
use super::read_ahead::ReadAhead;
use super::session::{Action, Event, Listed, LoginResult, Session, SessionConfig};
use crate::backend_client::{Backends, CallError, Lease, OpenOutcome};
use crate::metrics::Protocol;
use crate::tls::Conn;
use crate::wire::Wire;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info_span, Instrument};

const POP3: Protocol = Protocol { protocol: "pop3" };

/// Write out gathered replies once they pass this size.
const FLUSH_AT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Pop3Settings {
    pub allow_plaintext_auth: bool,
    pub idle_timeout: Duration,
    pub lease_seconds: u32,
    pub max_bad_commands: u32,
    pub tls_handshake_timeout: Duration,
}

/// What every POP3 connection of a front-end shares.
pub struct Pop3Context {
    pub backends: Arc<Backends>,
    pub tls: Option<TlsAcceptor>,
    pub settings: Pop3Settings,
}

/// Serves one client connection until it ends.
pub async fn serve(
    conn: Conn,
    peer: SocketAddr,
    implicit_tls: bool,
    ctx: Arc<Pop3Context>,
    shutdown: CancellationToken,
) {
    let config = SessionConfig {
        implicit_tls,
        stls_available: ctx.tls.is_some(),
        allow_plaintext_auth: ctx.settings.allow_plaintext_auth,
        max_bad_commands: ctx.settings.max_bad_commands,
    };
    let mut driver = Driver {
        wire: Wire::new(conn),
        buf: Vec::with_capacity(512),
        framer: Framer::default(),
        session: Session::new(config),
        lease: None,
        ahead: ReadAhead::default(),
        peer,
        ctx,
        shutdown: shutdown.clone(),
    };
    if let Err(e) = driver.run(&shutdown).await {
        tracing::debug!(%peer, error = %e, "POP3 connection ended with an error");
    }
    if let Some(lease) = driver.lease.take() {
        lease::release(&driver.ctx.backends, &lease, peer).await;
    }
}

struct Driver {
    wire: Wire,
    buf: Vec<u8>,
    framer: Framer,
    session: Session,
    lease: Option<Lease>,
    ahead: ReadAhead,
    peer: SocketAddr,
    ctx: Arc<Pop3Context>,
    shutdown: CancellationToken,
}

impl Driver {
    async fn run(&mut self, shutdown: &CancellationToken) -> io::Result<()> {
        self.apply(Event::Connected).await?;
        let idle = self.ctx.settings.idle_timeout;
        let renew_every = lease::renew_every(self.ctx.settings.lease_seconds);
        let mut next_renew = Instant::now() + renew_every;
        // The idle clock restarts only when a whole command has arrived: a client that trickles
        // a byte now and then (slowloris) still times out.
        let mut last_command = Instant::now();
        loop {
            if self.process_input().await? {
                last_command = Instant::now();
            }
            self.flush().await?;
            if self.session.is_closed() {
                return self.wire.close(idle).await;
            }
            let deadline = last_command + idle;
            loop {
                tokio::select! {
                    read = self.wire.read(&mut self.buf, 1024) => {
                        if read? == 0 {
                            self.apply(Event::Disconnected).await?;
                            return Ok(());
                        }
                        break;
                    }
                    _ = sleep_until(deadline) => {
                        self.apply(Event::IdleTimeout).await?;
                        break;
                    }
                    _ = sleep_until(next_renew), if self.lease.is_some() => {
                        next_renew = Instant::now() + renew_every;
                        if let Some(l) = &self.lease {
                            lease::renew(&self.ctx.backends, l, self.peer).await;
                        }
                    }
                    _ = shutdown.cancelled() => {
                        self.apply(Event::ShuttingDown).await?;
                        break;
                    }
                }
            }
        }
    }

    /// Feeds every complete line in the buffer to the session; true when there was one.
    async fn process_input(&mut self) -> io::Result<bool> {
        let mut progress = false;
        let mut buf = std::mem::take(&mut self.buf);
        while !self.session.is_closed() {
            match self.framer.next(&buf, self.session.max_line()) {
                Frame::Incomplete => break,
                Frame::Line { line, consumed } => {
                    progress = true;
                    self.apply(Event::Line(&buf[line])).await?;
                    buf.drain(..consumed);
                }
                Frame::TooLong { consumed, ended } => {
                    buf.drain(..consumed);
                    if ended {
                        self.apply(Event::LineTooLong).await?;
                    }
                }
            }
            self.wire.after_step(&mut buf);
            if self.wire.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        self.buf = buf;
        Ok(progress)
    }

    /// Hands one event to the session and carries out the actions, feeding back results.
    async fn apply(&mut self, event: Event<'_>) -> io::Result<()> {
        let mut actions: VecDeque<Action> = self.session.handle(event).into();
        while let Some(action) = actions.pop_front() {
            if let Some(result) = self.execute(action).await? {
                actions.extend(self.session.handle(result));
            }
        }
        Ok(())
    }

    async fn execute(&mut self, action: Action) -> io::Result<Option<Event<'static>>> {
        match action {
            Action::Send(bytes) => self.wire.out.extend_from_slice(&bytes),
            Action::SendListing(mut listing) => {
                while !self
                    .session
                    .listing_chunk(&mut listing, &mut self.wire.out, FLUSH_AT)
                {
                    self.flush().await?;
                }
            }
            Action::StartTls => {
                let acceptor = self
                    .ctx
                    .tls
                    .clone()
                    .expect("STLS offered only with TLS configured");
                let s = &self.ctx.settings;
                let (limit, idle) = (s.tls_handshake_timeout, s.idle_timeout);
                self.wire
                    .start_tls(&acceptor, limit, &self.shutdown, idle)
                    .await?;
                return Ok(Some(Event::TlsStarted));
            }
            Action::Login { user, password } => {
                let span = info_span!("pop3", otel.name = "pop3 login", client = %self.peer);
                let result = self.login(&user, &password).instrument(span).await;
                return Ok(Some(Event::Login(result)));
            }
            Action::Stream {
                uid,
                top,
                header,
                ahead,
            } => {
                let name = if top.is_some() {
                    "pop3 TOP"
                } else {
                    "pop3 RETR"
                };
                let span = info_span!("pop3", otel.name = name, client = %self.peer, uid);
                return self.stream(uid, top, header, ahead).instrument(span).await;
            }
            Action::Commit { deleted } => {
                let lease = self.lease.take().expect("commit only with a lease");
                let span = info_span!("pop3", otel.name = "pop3 QUIT", client = %self.peer);
                let commit = self.ctx.backends.commit(&lease, deleted).instrument(span);
                let result = commit.await.map_err(|e| {
                    tracing::warn!(peer = %self.peer, error = %e, "QUIT could not delete messages");
                });
                if result.is_err() {
                    // The back-end may have died in the call: give the maildrop back now, so
                    // the user's next login does not wait for the lease to expire.
                    lease::release(&self.ctx.backends, &lease, self.peer).await;
                }
                return Ok(Some(Event::Committed(result)));
            }
            Action::Release => {
                if let Some(lease) = self.lease.take() {
                    let span = info_span!("pop3", otel.name = "pop3 release", client = %self.peer);
                    let release = lease::release(&self.ctx.backends, &lease, self.peer);
                    release.instrument(span).await;
                }
            }
            Action::Close => {}
        }
        Ok(None)
    }

    async fn login(&mut self, user: &str, password: &str) -> LoginResult {
        let mut lease = Lease {
            account_id: 0,
            token: uuid::Uuid::new_v4().to_string(),
            seconds: self.ctx.settings.lease_seconds,
        };
        let client = self.peer.ip().to_string();
        match self
            .ctx
            .backends
            .open(user, password, &client, &lease)
            .await
        {
            Ok(OpenOutcome::Opened {
                account_id,
                messages,
            }) => {
                tracing::info!(peer = %self.peer, user, messages = messages.len(), "POP3 login");
                lease.account_id = account_id;
                self.ctx
                    .backends
                    .metrics()
                    .logins
                    .get_or_create(&POP3)
                    .inc();
                self.lease = Some(lease);
                // Same layout: collected in place, no second copy of a big listing.
                LoginResult::Opened(
                    messages
                        .into_iter()
                        .map(|m| Listed {
                            uid: m.uid,
                            size: m.size,
                        })
                        .collect(),
                )
            }
            Ok(OpenOutcome::AuthFailed { delay }) => {
                tracing::info!(peer = %self.peer, user, "POP3 login failed");
                self.ctx
                    .backends
                    .metrics()
                    .auth_failures
                    .get_or_create(&POP3)
                    .inc();
                tokio::time::sleep(delay).await;
                LoginResult::AuthFailed
            }
            Ok(OpenOutcome::InUse) => LoginResult::InUse,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "POP3 login: back-end unavailable");
                LoginResult::Unavailable
            }
        }
    }

    /// Sends one message (or its top): header once the first chunk is in hand, the content
    /// stuffed, then the terminator. A failure half-way can only end the connection. A small
    /// message comes from the read-ahead, or is fetched along with the ones after it.
    async fn stream(
        &mut self,
        uid: i64,
        top: Option<u32>,
        header: String,
        ahead: Vec<i64>,
    ) -> io::Result<Option<Event<'static>>> {
        if top.is_none() {
            let (backends, lease) = (&self.ctx.backends, self.lease.as_ref());
            if let Some(data) = self.ahead.take(backends, lease, uid, ahead).await {
                let out = &mut self.wire.out;
                out.extend_from_slice(header.as_bytes());
                let mut stuffer = DotStuffer::default();
                stuffer.push(&data, out);
                stuffer.finish(out);
                self.count_retrieved(data.len() as u64);
                return Ok(None);
            }
        }
        let lease = self.lease.clone().expect("stream only with a lease");
        let mut chunks = match self.ctx.backends.fetch(&lease, uid, top).await {
            Ok(c) => c,
            Err(e) => return Ok(Some(fetch_failed(e))),
        };
        let mut next = match chunks.next().await {
            Ok(first) => first,
            Err(e) => return Ok(Some(fetch_failed(e))),
        };
        self.wire.out.extend_from_slice(header.as_bytes());
        let mut stuffer = DotStuffer::default();
        let mut sent = 0u64;
        while let Some(chunk) = next {
            sent += chunk.len() as u64;
            stuffer.push(&chunk, &mut self.wire.out);
            if self.wire.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
            next = chunks
                .next()
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        stuffer.finish(&mut self.wire.out);
        if top.is_none() {
            self.count_retrieved(sent);
        }
        Ok(None)
    }

    fn count_retrieved(&self, octets: u64) {
        let m = self.ctx.backends.metrics();
        m.messages_retrieved.inc();
        m.bytes_retrieved.inc_by(octets);
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.wire.flush(self.ctx.settings.idle_timeout).await?;
        if self.wire.out.capacity() > FLUSH_AT * 2 {
            self.wire.out.shrink_to(4096);
        }
        Ok(())
    }
}

fn fetch_failed(e: CallError) -> Event<'static> {
    Event::FetchFailed {
        missing: matches!(e, CallError::NotFound(_)),
    }
}

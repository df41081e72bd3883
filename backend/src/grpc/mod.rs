//! The back-end's gRPC adapter: the only module that knows tonic.
//!
//! Proto types become domain types at this boundary (`convert`), and every `StoreError`
//! becomes a `tonic::Status` in one place (`status`). The admin service requires the admin
//! token as `authorization: Bearer <token>`.
mod admin;
mod auth;
mod connectors;
mod console_admin;
mod convert;
mod delivery;
mod directory_admin;
mod dkim_admin;
mod maildrop;
mod quarantine;
mod queue_admin;
mod span;
mod status;
mod tls_report;

use crate::auth::{AuthPolicy, LoginOutcome, Refusal};
use crate::store::Store;
use crate::store::StoreError;
use bridgehead_proto::v1::admin_server::AdminServer;
use bridgehead_proto::v1::auth_server::AuthServer;
use bridgehead_proto::v1::delivery_server::DeliveryServer;
use bridgehead_proto::v1::maildrop_server::MaildropServer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// What the services need besides the store.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub admin_token: String,
    /// Mutual TLS between the tiers (and TLS for the admin API); `None`: plaintext gRPC.
    pub tls: Option<TlsFiles>,
    pub transport: crate::transport::TransportConfig,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub max_message_size: u64,
    pub auth: AuthPolicy,
    pub harvest: crate::harvest::HarvestPolicy,
    /// Checks unauthenticated mail (SPF, DKIM, DMARC); `None`: not checked.
    pub mail_auth: Option<Arc<crate::mailauth::inbound::Checker>>,
    /// Rewrites forwarded mail's envelope sender and reverses bounces to it.
    pub srs: crate::mailauth::srs::Srs,
    /// The DKIM keys of our domains (ARC seals of forwarded mail).
    pub signer: Arc<crate::mailauth::signer::Signer>,
    /// Message tracking's recorder.
    pub events: crate::tracking::Events,
}

#[derive(Clone)]
struct Services {
    store: Store,
    settings: Arc<ServiceSettings>,
}

impl Services {
    /// A login through the shared policy, its refusals counted by reason.
    async fn login(
        &self,
        c: &bridgehead_proto::v1::Credentials,
    ) -> Result<LoginOutcome, StoreError> {
        let settings = &self.settings;
        let (outcome, refusal) = crate::auth::login(
            &self.store,
            &settings.auth,
            &c.username,
            &c.password,
            &c.client_address,
        )
        .await?;
        if let Some(r) = refusal {
            let result = match r {
                Refusal::Wrong => "wrong",
                Refusal::LockedOut => "locked_out",
                Refusal::Throttled => "throttled",
            };
            let label = crate::metrics::Result { result };
            settings.metrics.login_refusals.get_or_create(&label).inc();
        }
        Ok(outcome)
    }
}

/// The metadata naming the console's operator in an in-process Admin call.
pub const OPERATOR_METADATA: &str = console_admin::OPERATOR;

/// The Admin service for a caller in this process (the operator console): the same
/// operations, checks and errors as over gRPC, with no token (the caller has its own
/// sign-in) and no network in between.
pub fn local_admin(
    store: Store,
    settings: Arc<ServiceSettings>,
) -> Arc<dyn bridgehead_proto::v1::admin_server::Admin> {
    Arc::new(Services { store, settings })
}

/// Serves every service on `listener` until `shutdown` is cancelled, then finishes the
/// calls in flight.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    settings: Arc<ServiceSettings>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let services = Services {
        store: store.clone(),
        settings,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuthServer<Services>>().await;
    health.set_serving::<MaildropServer<Services>>().await;
    health.set_serving::<DeliveryServer<Services>>().await;
    tokio::spawn(watch_database(health, store, shutdown.clone()));
    let token = services.settings.admin_token.clone();
    let mtls = services.settings.tls.is_some();
    let front_end_only = move |req: tonic::Request<()>| require_front_end(mtls, req);
    let mut builder = tonic::transport::Server::builder();
    if let Some(files) = &services.settings.tls {
        builder = builder.tls_config(server_tls(files)?)?;
    }
    // TCP_NODELAY on every accepted connection: without it, small HTTP/2 frames (trailers)
    // wait for delayed ACKs, about 40 ms per call.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    builder
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(span::RpcSpanLayer)
        .add_service(health_service)
        .add_service(AuthServer::with_interceptor(
            services.clone(),
            front_end_only,
        ))
        .add_service(MaildropServer::with_interceptor(
            services.clone(),
            front_end_only,
        ))
        .add_service(DeliveryServer::with_interceptor(
            services.clone(),
            front_end_only,
        ))
        .add_service(AdminServer::with_interceptor(services, move |req| {
            admin::check_token(&token, req)
        }))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// Certificate files for mutual TLS between the tiers.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signs front-end client certificates.
    pub client_ca: PathBuf,
}

/// TLS for the gRPC port: our certificate, and front-end client certificates checked against
/// the CA. A client certificate is optional at the handshake (the admin CLI has none: its
/// token is its credential) but required by the mailbox services (`require_front_end`).
fn server_tls(f: &TlsFiles) -> Result<ServerTlsConfig, tonic::transport::Error> {
    let read = |p: &PathBuf| std::fs::read(p).unwrap_or_default();
    let identity = Identity::from_pem(read(&f.cert), read(&f.key));
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(Certificate::from_pem(read(&f.client_ca)))
        .client_auth_optional(true))
}

/// Interceptor: with mutual TLS, the caller must have shown a front-end certificate.
fn require_front_end(
    mtls: bool,
    req: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    if mtls && req.peer_certs().is_none_or(|c| c.is_empty()) {
        return Err(tonic::Status::unauthenticated(
            "this API is for Bridgehead front-ends: present a front-end client certificate",
        ));
    }
    Ok(req)
}

/// Reports NOT_SERVING on the health service while PostgreSQL does not answer.
async fn watch_database(
    health: tonic_health::server::HealthReporter,
    store: Store,
    shutdown: CancellationToken,
) {
    let mut serving = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
                return;
            }
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let up = store.ping().await;
        if up != serving {
            serving = up;
            let status = if up {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
            tracing::warn!(database_up = up, "database availability changed");
        }
    }
}

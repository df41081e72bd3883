//! Configuration of the long-running roles: flags, environment variables, or a TOML file
//! (`--config`), in that order of precedence, then built-in defaults.
//!
//! TOML keys are the flag names with `_` for `-` (e.g. `pop3_listen = "0.0.0.0:110"`,
//! `backends = ["10.0.0.5:7000"]`).
use anyhow::{bail, Context, Result};
use bridgehead_backend::auth::AuthPolicy;
use bridgehead_backend::connector::ConnectorConfig;
use bridgehead_backend::grpc::TlsFiles;
use bridgehead_backend::harvest::HarvestPolicy;
use bridgehead_backend::secrets::Secrets;
use bridgehead_backend::transport::TransportConfig;
use bridgehead_backend::{BackendConfig, BackendHandle};
use bridgehead_frontend::backend_client::ClientTlsFiles;
use bridgehead_frontend::{FrontendConfig, FrontendHandle};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;

#[derive(Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendArgs {
    /// TOML file with any of these settings.
    #[arg(long, env = "BRIDGEHEAD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Back-end gRPC address (host:port); repeat or separate with commas for several.
    #[arg(long = "backend", env = "BRIDGEHEAD_BACKENDS", value_delimiter = ',')]
    #[serde(default)]
    pub backends: Vec<String>,
    /// HTTP endpoint for /metrics, /healthz and /readyz, e.g. 0.0.0.0:9100.
    #[arg(long, env = "BRIDGEHEAD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// POP3 listener (STLS offered when a certificate is configured), e.g. 0.0.0.0:110.
    #[arg(long, env = "BRIDGEHEAD_POP3_LISTEN")]
    pub pop3_listen: Option<SocketAddr>,
    /// POP3S listener (implicit TLS), e.g. 0.0.0.0:995.
    #[arg(long, env = "BRIDGEHEAD_POP3S_LISTEN")]
    pub pop3s_listen: Option<SocketAddr>,
    /// SMTP inbound MX listener (STARTTLS, no AUTH, local recipients only), e.g. 0.0.0.0:25.
    #[arg(long, env = "BRIDGEHEAD_SMTP_LISTEN")]
    pub smtp_listen: Option<SocketAddr>,
    /// SMTP submission listener (STARTTLS, AUTH required), e.g. 0.0.0.0:587.
    #[arg(long, env = "BRIDGEHEAD_SUBMISSION_LISTEN")]
    pub submission_listen: Option<SocketAddr>,
    /// SMTP submissions listener (implicit TLS, AUTH required), e.g. 0.0.0.0:465.
    #[arg(long, env = "BRIDGEHEAD_SUBMISSIONS_LISTEN")]
    pub submissions_listen: Option<SocketAddr>,
    /// Host name in greetings and Received headers (default: the system's host name).
    #[arg(long, env = "BRIDGEHEAD_HOSTNAME")]
    pub hostname: Option<String>,
    /// Largest message accepted over SMTP, in octets (advertised with SIZE).
    #[arg(long, env = "BRIDGEHEAD_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<u64>,
    /// Most recipients per message.
    #[arg(long, env = "BRIDGEHEAD_MAX_RECIPIENTS")]
    pub max_recipients: Option<usize>,
    /// SMTP: seconds to wait for a command (RFC 5321 §4.5.3.2: at least 300).
    #[arg(long, env = "BRIDGEHEAD_SMTP_COMMAND_TIMEOUT_SECS")]
    pub smtp_command_timeout_secs: Option<u64>,
    /// SMTP: seconds to wait for the next block of DATA (at least 180).
    #[arg(long, env = "BRIDGEHEAD_SMTP_DATA_TIMEOUT_SECS")]
    pub smtp_data_timeout_secs: Option<u64>,
    /// Networks of load balancers that send a PROXY protocol header (v1 or v2) first,
    /// comma-separated CIDRs, e.g. 10.0.0.0/8. Only they may; their header gives the client.
    #[arg(long, env = "BRIDGEHEAD_PROXY_PROTOCOL_FROM", value_delimiter = ',')]
    #[serde(default)]
    pub proxy_protocol_from: Vec<String>,
    /// Mutual TLS with the back-ends: the CA that signed their certificates; with
    /// --backend-cert and --backend-key (this front-end's client certificate).
    #[arg(long, env = "BRIDGEHEAD_BACKEND_CA")]
    pub backend_ca: Option<PathBuf>,
    #[arg(long, env = "BRIDGEHEAD_BACKEND_CERT")]
    pub backend_cert: Option<PathBuf>,
    #[arg(long, env = "BRIDGEHEAD_BACKEND_KEY")]
    pub backend_key: Option<PathBuf>,
    /// On SIGTERM, seconds busy sessions may take to finish before the front-end exits.
    #[arg(long, env = "BRIDGEHEAD_DRAIN_SECS")]
    pub drain_secs: Option<u64>,
    /// Seconds a TLS handshake may take (implicit TLS, STARTTLS, STLS) before the
    /// connection is closed (default 30).
    #[arg(long, env = "BRIDGEHEAD_TLS_HANDSHAKE_SECS")]
    pub tls_handshake_secs: Option<u64>,
    /// Seconds a call to a back-end may take before it is given up.
    #[arg(long, env = "BRIDGEHEAD_BACKEND_TIMEOUT_SECS")]
    pub backend_timeout_secs: Option<u64>,
    /// Seconds between lookups of back-end names (a headless Service lists every pod).
    #[arg(long, env = "BRIDGEHEAD_BACKEND_REFRESH_SECS")]
    pub backend_refresh_secs: Option<u64>,
    /// Seconds an accepted mailbox recipient is remembered, so RCPT to it needs no back-end
    /// call (default 5; 0: always ask). The end of DATA checks every recipient again.
    #[arg(long, env = "BRIDGEHEAD_RECIPIENT_CACHE_SECS")]
    pub recipient_cache_secs: Option<u64>,
    /// Most connections at once from one client address.
    #[arg(long, env = "BRIDGEHEAD_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "BRIDGEHEAD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "BRIDGEHEAD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Allow passwords over connections without TLS.
    #[arg(long, env = "BRIDGEHEAD_ALLOW_PLAINTEXT_AUTH", num_args = 0..=1, default_missing_value = "true")]
    pub allow_plaintext_auth: Option<bool>,
    /// Close a POP3 session idle for this many seconds (at least 600 is RFC 1939's advice).
    #[arg(long, env = "BRIDGEHEAD_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Length of the maildrop lease; a dead front-end's lock expires after this.
    #[arg(long, env = "BRIDGEHEAD_LEASE_SECS")]
    pub lease_secs: Option<u32>,
    /// Most client connections at once.
    #[arg(long, env = "BRIDGEHEAD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

#[derive(Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendArgs {
    /// TOML file with any of these settings.
    #[arg(long, env = "BRIDGEHEAD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Mutual TLS with front-ends: this back-end's certificate (PEM); with --tls-key and
    /// --client-ca. The admin API is then served over TLS too.
    #[arg(long = "tls-cert", env = "BRIDGEHEAD_GRPC_TLS_CERT")]
    pub grpc_tls_cert: Option<PathBuf>,
    #[arg(long = "tls-key", env = "BRIDGEHEAD_GRPC_TLS_KEY")]
    pub grpc_tls_key: Option<PathBuf>,
    /// The CA whose client certificates front-ends present.
    #[arg(long, env = "BRIDGEHEAD_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// HTTP endpoint for /metrics, /healthz and /readyz, e.g. 0.0.0.0:9101.
    #[arg(long, env = "BRIDGEHEAD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// gRPC listener, e.g. 0.0.0.0:7000.
    #[arg(long, env = "BRIDGEHEAD_GRPC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// PostgreSQL URL, e.g. postgres://user:pass@db/bridgehead.
    #[arg(long, env = "BRIDGEHEAD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File holding the PostgreSQL URL (for secrets).
    #[arg(long, env = "BRIDGEHEAD_DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Token the admin API requires (prefer --admin-token-file or the environment).
    #[arg(long, env = "BRIDGEHEAD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// File holding the admin token.
    #[arg(long, env = "BRIDGEHEAD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// File holding the key that seals secrets at rest (connector passwords, route AUTH
    /// secrets): 32 random bytes in base64 (`head -c 32 /dev/urandom | base64`), the same on
    /// every back-end. Without it, such secrets cannot be stored.
    #[arg(long, env = "BRIDGEHEAD_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Largest message accepted, in octets.
    #[arg(long, env = "BRIDGEHEAD_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<u64>,
    /// Size of the PostgreSQL connection pool.
    #[arg(long, env = "BRIDGEHEAD_DB_CONNECTIONS")]
    pub db_connections: Option<u32>,
    /// Name used in EHLO, Reporting-MTA and MAILER-DAEMON@ (default: the system's host name).
    #[arg(long, env = "BRIDGEHEAD_HOSTNAME")]
    pub hostname: Option<String>,
    /// Outbound delivery workers; 0 turns outbound delivery off on this back-end.
    #[arg(long, env = "BRIDGEHEAD_TRANSPORT_WORKERS")]
    pub transport_workers: Option<usize>,
    /// First retry after a temporary failure, in seconds (doubles up to --retry-max-secs).
    #[arg(long, env = "BRIDGEHEAD_RETRY_FIRST_SECS")]
    pub retry_first_secs: Option<u64>,
    /// Longest wait between retries, in seconds.
    #[arg(long, env = "BRIDGEHEAD_RETRY_MAX_SECS")]
    pub retry_max_secs: Option<u64>,
    /// How long a message may stay queued before it bounces, in seconds (default 5 days).
    #[arg(long, env = "BRIDGEHEAD_QUEUE_LIFETIME_SECS")]
    pub queue_lifetime_secs: Option<u64>,
    /// Send a delay notice after this many seconds in the queue (0: never; default 4 h).
    #[arg(long, env = "BRIDGEHEAD_DELAY_WARNING_SECS")]
    pub delay_warning_secs: Option<u64>,
    /// Mailbox for reports about bounces (default postmaster@<first domain>).
    #[arg(long, env = "BRIDGEHEAD_POSTMASTER")]
    pub postmaster: Option<String>,
    /// How long a worker's claim on a queued message lasts; after a crash, another back-end
    /// takes the message over once it ends. An attempt must finish within it.
    #[arg(long, env = "BRIDGEHEAD_CLAIM_SECS")]
    pub claim_secs: Option<u64>,
    /// POP3 connector workers; 0 turns connector polling off on this back-end.
    #[arg(long, env = "BRIDGEHEAD_CONNECTOR_WORKERS")]
    pub connector_workers: Option<usize>,
    /// How often idle workers look for due mail, in milliseconds.
    #[arg(long, env = "BRIDGEHEAD_QUEUE_POLL_MS")]
    pub queue_poll_ms: Option<u64>,
    /// Delay after the first failed login from an address, in ms; it doubles per failure.
    #[arg(long, env = "BRIDGEHEAD_AUTH_DELAY_MS")]
    pub auth_delay_ms: Option<u64>,
    /// Failed logins from one client address within 15 minutes that lock it out (0: never).
    #[arg(long, env = "BRIDGEHEAD_AUTH_LOCKOUT_AFTER")]
    pub auth_lockout_after: Option<u32>,
    /// Unknown recipients one unauthenticated client address may ask for within the window
    /// before every RCPT from it is refused with 450 4.7.1 (default 20; 0: no limit).
    #[arg(long, env = "BRIDGEHEAD_UNKNOWN_RECIPIENT_LIMIT")]
    pub unknown_recipient_limit: Option<u32>,
    /// That window, in seconds since the address's last unknown recipient (default 600).
    #[arg(long, env = "BRIDGEHEAD_UNKNOWN_RECIPIENT_WINDOW_SECS")]
    pub unknown_recipient_window_secs: Option<u64>,
}

fn read_toml<T: for<'de> Deserialize<'de> + Default>(path: Option<&Path>) -> Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in {}", path.display()))
}

impl FrontendArgs {
    pub fn resolve(self) -> Result<FrontendConfig> {
        let file: FrontendArgs = read_toml(self.config.as_deref())?;
        let d = FrontendConfig::default();
        let backends = if self.backends.is_empty() {
            file.backends
        } else {
            self.backends
        };
        if backends.is_empty() {
            bail!("no back-end given: use --backend HOST:PORT (or BRIDGEHEAD_BACKENDS)");
        }
        let backend_tls = match (
            self.backend_ca.or(file.backend_ca),
            self.backend_cert.or(file.backend_cert),
            self.backend_key.or(file.backend_key),
        ) {
            (Some(ca), Some(cert), Some(key)) => Some(ClientTlsFiles { ca, cert, key }),
            (None, None, None) => None,
            _ => bail!("mutual TLS needs all of --backend-ca, --backend-cert and --backend-key"),
        };
        let config = FrontendConfig {
            backend_tls,
            pop3_listen: self.pop3_listen.or(file.pop3_listen),
            pop3s_listen: self.pop3s_listen.or(file.pop3s_listen),
            smtp_listen: self.smtp_listen.or(file.smtp_listen),
            submission_listen: self.submission_listen.or(file.submission_listen),
            submissions_listen: self.submissions_listen.or(file.submissions_listen),
            hostname: self
                .hostname
                .or(file.hostname)
                .unwrap_or_else(system_hostname),
            max_message_size: self
                .max_message_size
                .or(file.max_message_size)
                .unwrap_or(d.max_message_size),
            drain_timeout: self
                .drain_secs
                .or(file.drain_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.drain_timeout),
            tls_handshake_timeout: self
                .tls_handshake_secs
                .or(file.tls_handshake_secs)
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(d.tls_handshake_timeout),
            backend_timeout: self
                .backend_timeout_secs
                .or(file.backend_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.backend_timeout),
            backend_refresh: self
                .backend_refresh_secs
                .or(file.backend_refresh_secs)
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(d.backend_refresh),
            recipient_cache_ttl: self
                .recipient_cache_secs
                .or(file.recipient_cache_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.recipient_cache_ttl),
            proxy_protocol_from: if self.proxy_protocol_from.is_empty() {
                file.proxy_protocol_from
            } else {
                self.proxy_protocol_from
            },
            max_recipients: self
                .max_recipients
                .or(file.max_recipients)
                .unwrap_or(d.max_recipients),
            smtp_command_timeout: self
                .smtp_command_timeout_secs
                .or(file.smtp_command_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.smtp_command_timeout),
            smtp_data_timeout: self
                .smtp_data_timeout_secs
                .or(file.smtp_data_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.smtp_data_timeout),
            max_connections_per_ip: self
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(d.max_connections_per_ip),
            backends,
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            allow_plaintext_auth: self
                .allow_plaintext_auth
                .or(file.allow_plaintext_auth)
                .unwrap_or(d.allow_plaintext_auth),
            idle_timeout: self
                .idle_timeout_secs
                .or(file.idle_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.idle_timeout),
            lease_seconds: self
                .lease_secs
                .or(file.lease_secs)
                .unwrap_or(d.lease_seconds),
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(d.max_connections),
            ..d
        };
        let listeners = [
            config.pop3_listen,
            config.pop3s_listen,
            config.smtp_listen,
            config.submission_listen,
            config.submissions_listen,
        ];
        if listeners.iter().all(Option::is_none) {
            bail!("no listener given: use --pop3-listen, --pop3s-listen, --smtp-listen, --submission-listen or --submissions-listen");
        }
        Ok(config)
    }
}

impl BackendArgs {
    pub fn resolve(self) -> Result<BackendConfig> {
        let file: BackendArgs = read_toml(self.config.as_deref())?;
        let transport = self.transport(&file);
        let tls_cert = self.grpc_tls_cert.clone().or(file.grpc_tls_cert.clone());
        let tls_key = self.grpc_tls_key.clone().or(file.grpc_tls_key.clone());
        let client_ca = self.client_ca.clone().or(file.client_ca.clone());
        let token_file = self.admin_token_file.or(file.admin_token_file);
        let admin_token = match (self.admin_token.or(file.admin_token), token_file) {
            (Some(t), _) => t,
            (None, Some(f)) => std::fs::read_to_string(&f)
                .with_context(|| format!("reading the admin token from {}", f.display()))?
                .trim()
                .to_string(),
            (None, None) => String::new(),
        };
        if admin_token.is_empty() {
            tracing::warn!("no admin token configured: the admin API is disabled");
        }
        let url_file = self
            .database_url_file
            .clone()
            .or(file.database_url_file.clone());
        let database_url = match (
            self.database_url.clone().or(file.database_url.clone()),
            url_file,
        ) {
            (Some(url), _) => url,
            (None, Some(f)) => std::fs::read_to_string(&f)
                .with_context(|| format!("reading the database URL from {}", f.display()))?
                .trim()
                .to_string(),
            (None, None) => bail!("no database given: use --database-url or --database-url-file"),
        };
        let delay = self.auth_delay_ms.or(file.auth_delay_ms);
        Ok(BackendConfig {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7000))),
            database_url,
            max_db_connections: self.db_connections.or(file.db_connections).unwrap_or(20),
            admin_token,
            max_message_size: self
                .max_message_size
                .or(file.max_message_size)
                .unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
            auth: AuthPolicy {
                base_delay: delay
                    .map(Duration::from_millis)
                    .unwrap_or(AuthPolicy::default().base_delay),
                lockout_after: self
                    .auth_lockout_after
                    .or(file.auth_lockout_after)
                    .unwrap_or(AuthPolicy::default().lockout_after),
                ..AuthPolicy::default()
            },
            harvest: HarvestPolicy {
                limit: self
                    .unknown_recipient_limit
                    .or(file.unknown_recipient_limit)
                    .unwrap_or(HarvestPolicy::default().limit),
                window: self
                    .unknown_recipient_window_secs
                    .or(file.unknown_recipient_window_secs)
                    .map(Duration::from_secs)
                    .unwrap_or(HarvestPolicy::default().window),
            },
            connector: ConnectorConfig {
                workers: self
                    .connector_workers
                    .or(file.connector_workers)
                    .unwrap_or(1),
                hostname: transport.hostname.clone(),
                postmaster: transport.postmaster.clone(),
                ..ConnectorConfig::default()
            },
            tls: match (tls_cert, tls_key, client_ca) {
                (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
                    cert,
                    key,
                    client_ca,
                }),
                (None, None, None) => None,
                _ => bail!("mutual TLS needs all of --tls-cert, --tls-key and --client-ca"),
            },
            transport,
            secrets: match self.secret_key_file.or(file.secret_key_file) {
                Some(path) => Secrets::from_key_file(&path)?,
                None => Secrets::default(),
            },
        })
    }

    /// Outbound transport settings (flags, then the file, then defaults).
    fn transport(&self, file: &BackendArgs) -> TransportConfig {
        let d = TransportConfig::default();
        let secs = |a: Option<u64>, b: Option<u64>, def: Duration| {
            a.or(b).map(Duration::from_secs).unwrap_or(def)
        };
        TransportConfig {
            workers: self
                .transport_workers
                .or(file.transport_workers)
                .unwrap_or(d.workers),
            hostname: self
                .hostname
                .clone()
                .or(file.hostname.clone())
                .unwrap_or_else(system_hostname),
            first_retry: secs(self.retry_first_secs, file.retry_first_secs, d.first_retry),
            max_retry: secs(self.retry_max_secs, file.retry_max_secs, d.max_retry),
            lifetime: secs(
                self.queue_lifetime_secs,
                file.queue_lifetime_secs,
                d.lifetime,
            ),
            delay_warning: secs(
                self.delay_warning_secs,
                file.delay_warning_secs,
                d.delay_warning,
            ),
            postmaster: self.postmaster.clone().or(file.postmaster.clone()),
            claim: secs(self.claim_secs, file.claim_secs, d.claim),
            poll_interval: self
                .queue_poll_ms
                .or(file.queue_poll_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.poll_interval),
            ..d
        }
    }
}

pub async fn run_frontend(args: FrontendArgs) -> Result<()> {
    let file: FrontendArgs = read_toml(args.config.as_deref())?;
    let metrics = args.metrics_listen.or(file.metrics_listen);
    let handle = FrontendHandle::start(args.resolve()?).await?;
    if let Some(addr) = metrics {
        let token = handle.shutdown_token();
        let ready = token.clone();
        crate::http::serve(
            addr,
            vec![handle.registry.clone()],
            Arc::new(move || !ready.is_cancelled()),
            token,
        )
        .await?;
    }
    crate::shutdown_signal().await;
    tracing::info!("front-end stopping");
    handle.stop().await;
    Ok(())
}

pub async fn run_backend(args: BackendArgs) -> Result<()> {
    let file: BackendArgs = read_toml(args.config.as_deref())?;
    let metrics = args.metrics_listen.or(file.metrics_listen);
    let handle = BackendHandle::start(args.resolve()?).await?;
    let http_stop = tokio_util::sync::CancellationToken::new();
    if let Some(addr) = metrics {
        let ready = http_stop.clone();
        crate::http::serve(
            addr,
            vec![handle.registry.clone()],
            Arc::new(move || !ready.is_cancelled()),
            http_stop.clone(),
        )
        .await?;
    }
    crate::shutdown_signal().await;
    tracing::info!("back-end stopping");
    http_stop.cancel();
    handle.stop().await?;
    Ok(())
}

/// The machine's host name, or "localhost" when it cannot be read.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_file_fills_what_flags_leave_out() {
        let dir = std::env::temp_dir().join(format!("bh-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("frontend.toml");
        std::fs::write(
            &path,
            "backends = [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]\npop3_listen = \"0.0.0.0:110\"\nsmtp_listen = \"0.0.0.0:25\"\nhostname = \"mx.example.org\"\nidle_timeout_secs = 900\n",
        )
        .unwrap();
        let args = FrontendArgs {
            config: Some(path.clone()),
            pop3_listen: Some("127.0.0.1:1110".parse().unwrap()),
            ..FrontendArgs::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.backends, vec!["10.0.0.1:7000", "10.0.0.2:7000"]);
        assert_eq!(
            c.pop3_listen,
            Some("127.0.0.1:1110".parse().unwrap()),
            "the flag wins"
        );
        assert_eq!(c.smtp_listen, Some("0.0.0.0:25".parse().unwrap()));
        assert_eq!(c.hostname, "mx.example.org");
        assert_eq!(c.idle_timeout, Duration::from_secs(900));
        assert_eq!(c.max_recipients, 100, "defaults for the rest");

        std::fs::write(&path, "pop3_listn = \"0.0.0.0:110\"\n").unwrap();
        let err = FrontendArgs {
            config: Some(path),
            ..FrontendArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let err = FrontendArgs::default().resolve().unwrap_err();
        assert!(err.to_string().contains("no back-end given"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! `bridgehead backend`'s settings, and how they become a `BackendConfig` (defaults from the
//! settings' own types: `BackendConfig`'s constants, `TransportConfig`, `ConnectorConfig`,
//! `AuthPolicy`, `HarvestPolicy`).
use super::{secs, system_hostname, Settings, DEFAULT_MAX_MESSAGE_SIZE};
use anyhow::{bail, Context, Result};
use bridgehead_backend::auth::AuthPolicy;
use bridgehead_backend::connector::ConnectorConfig;
use bridgehead_backend::console::ConsoleConfig;
use bridgehead_backend::grpc::TlsFiles;
use bridgehead_backend::harvest::HarvestPolicy;
use bridgehead_backend::secrets::Secrets;
use bridgehead_backend::tracking::TrackingConfig;
use bridgehead_backend::transport::policy::mta_sts::{self, Mode, Policy};
use bridgehead_backend::transport::TransportConfig;
use bridgehead_backend::BackendConfig;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Default, Deserialize, Serialize)]
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
    /// The operator console (HTTP), e.g. 0.0.0.0:8080; off when not given.
    #[arg(long, env = "BRIDGEHEAD_CONSOLE_LISTEN")]
    pub console_listen: Option<SocketAddr>,
    /// The path the console is served under behind a reverse proxy, e.g. /console.
    #[arg(long, env = "BRIDGEHEAD_CONSOLE_PREFIX")]
    pub console_prefix: Option<String>,
    /// TLS on the console's listener: its certificate chain (PEM); with --console-key.
    #[arg(long, env = "BRIDGEHEAD_CONSOLE_CERT")]
    pub console_cert: Option<PathBuf>,
    #[arg(long, env = "BRIDGEHEAD_CONSOLE_KEY")]
    pub console_key: Option<PathBuf>,
    /// Reverse proxies (CIDRs, comma-separated) in front of the console whose
    /// X-Forwarded-For names the client (for sign-in penalties).
    #[arg(
        long,
        env = "BRIDGEHEAD_CONSOLE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub console_trusted_proxies: Option<Vec<String>>,
    /// Record message-tracking events (default true).
    #[arg(long, env = "BRIDGEHEAD_TRACKING")]
    pub tracking: Option<bool>,
    /// Days message-tracking events are kept (default 14).
    #[arg(long, env = "BRIDGEHEAD_TRACKING_DAYS")]
    pub tracking_days: Option<u32>,
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
    /// DNS server to ask for MX and address records instead of the system's resolvers, e.g.
    /// 127.0.0.1:53 (a local validating resolver).
    #[arg(long, env = "BRIDGEHEAD_DNS_SERVER")]
    pub dns_server: Option<SocketAddr>,
    /// DNSSEC-validating resolver (IP:PORT, e.g. a local unbound on 127.0.0.1:53) asked for
    /// the TLSA records of MX hosts: DANE (RFC 7672) is used when given. Its AD bit is
    /// trusted, so it must be reached over a trusted path (loopback or a private network).
    #[arg(long, env = "BRIDGEHEAD_DANE_RESOLVER")]
    pub dane_resolver: Option<SocketAddr>,
    /// CA certificates (a PEM file) trusted beside the Mozilla roots wherever a certificate
    /// is verified: routes with --tls verify, the POP3 connector (a private PKI's root).
    #[arg(long, env = "BRIDGEHEAD_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,
    /// Check mail from unauthenticated clients (SPF, DKIM, DMARC): an Authentication-Results
    /// header on each copy, and DMARC p=reject failures refused with 550 5.7.1 (default true).
    #[arg(long, env = "BRIDGEHEAD_CHECK_MAIL_AUTH")]
    pub check_mail_auth: Option<bool>,
    /// ARC sealers (domains, comma-separated: mailing lists, forwarders) whose valid seal
    /// overrides a DMARC failure of the mail they pass on.
    #[arg(long, env = "BRIDGEHEAD_TRUSTED_ARC_SEALERS", value_delimiter = ',')]
    pub trusted_arc_sealers: Option<Vec<String>>,
    /// The port of MX hosts (25; another only for test setups).
    #[arg(long, env = "BRIDGEHEAD_MX_PORT")]
    pub mx_port: Option<u16>,
    /// Publish an MTA-STS policy for our domains in this mode (enforce, testing or none), served
    /// at /.well-known/mta-sts.txt on --metrics-listen (put it behind the HTTPS server of the
    /// mta-sts.<domain> names) and shown by `admin mta-sts`.
    #[arg(long, env = "BRIDGEHEAD_MTA_STS_MODE", value_parser = ["enforce", "testing", "none"])]
    pub mta_sts_mode: Option<String>,
    /// The MX hosts the published policy lists (default: --hostname); "*.example.org" allowed.
    #[arg(long, env = "BRIDGEHEAD_MTA_STS_MX", value_delimiter = ',')]
    pub mta_sts_mx: Option<Vec<String>>,
    /// The published policy's max_age in seconds (default a week).
    #[arg(long, env = "BRIDGEHEAD_MTA_STS_MAX_AGE")]
    pub mta_sts_max_age: Option<u64>,
    /// The port MTA-STS policies are fetched from (443; another only for test setups).
    #[arg(long, env = "BRIDGEHEAD_MTA_STS_PORT")]
    pub mta_sts_port: Option<u16>,
    /// The TLS-RPT reporting period in seconds (a day, RFC 8460 §4.1; shorter only for
    /// tests): sessions are counted per period, and each ended period's report is sent.
    #[arg(long, env = "BRIDGEHEAD_TLS_REPORT_PERIOD_SECS")]
    pub tls_report_period_secs: Option<u64>,
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

impl Settings for BackendArgs {
    fn config_file(&mut self) -> &mut Option<PathBuf> {
        &mut self.config
    }
}

impl BackendArgs {
    /// The back-end's configuration from settings already layered.
    pub fn resolve(self) -> Result<BackendConfig> {
        let admin_token = secret(
            self.admin_token.clone(),
            self.admin_token_file.clone(),
            "the admin token",
        )?
        .unwrap_or_default();
        if admin_token.is_empty() {
            tracing::warn!("no admin token configured: the admin API is disabled");
        }
        let database_url = secret(
            self.database_url.clone(),
            self.database_url_file.clone(),
            "the database URL",
        )?;
        let Some(database_url) = database_url else {
            bail!("no database given: use --database-url or --database-url-file");
        };
        let tls = match (
            self.grpc_tls_cert.clone(),
            self.grpc_tls_key.clone(),
            self.client_ca.clone(),
        ) {
            (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            _ => bail!("mutual TLS needs all of --tls-cert, --tls-key and --client-ca"),
        };
        let secrets = match &self.secret_key_file {
            Some(path) => Secrets::from_key_file(path)?,
            None => Secrets::default(),
        };
        let transport = self.transport();
        let console = self.console(&admin_token)?;
        Ok(BackendConfig {
            listen: self.listen.unwrap_or(BackendConfig::DEFAULT_LISTEN),
            database_url,
            max_db_connections: self
                .db_connections
                .unwrap_or(BackendConfig::DEFAULT_DB_CONNECTIONS),
            admin_token,
            max_message_size: self.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
            auth: self.auth(),
            harvest: self.harvest(),
            connector: ConnectorConfig {
                workers: self
                    .connector_workers
                    .unwrap_or(ConnectorConfig::default().workers),
                hostname: transport.hostname.clone(),
                postmaster: transport.postmaster.clone(),
                ..ConnectorConfig::default()
            },
            tls,
            transport,
            secrets,
            check_mail_auth: self.check_mail_auth.unwrap_or(true),
            trusted_arc_sealers: self.trusted_arc_sealers.clone().unwrap_or_default(),
            tracking: TrackingConfig {
                enabled: self.tracking.unwrap_or(true),
                retention_days: self
                    .tracking_days
                    .unwrap_or(TrackingConfig::default().retention_days),
            },
            console,
        })
    }

    /// The console, when it listens.
    fn console(&self, admin_token: &str) -> Result<Option<ConsoleConfig>> {
        let Some(listen) = self.console_listen else {
            if self.console_cert.is_some() || self.console_prefix.is_some() {
                bail!("--console-cert and --console-prefix need --console-listen");
            }
            return Ok(None);
        };
        let tls = match (&self.console_cert, &self.console_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => bail!("--console-cert and --console-key go together"),
        };
        Ok(Some(ConsoleConfig {
            listen: Some(listen),
            prefix: self.console_prefix.clone().unwrap_or_default(),
            tls,
            admin_token: admin_token.to_string(),
            trusted_proxies: self.console_trusted_proxies.clone().unwrap_or_default(),
        }))
    }

    fn auth(&self) -> AuthPolicy {
        let d = AuthPolicy::default();
        AuthPolicy {
            base_delay: self
                .auth_delay_ms
                .map_or(d.base_delay, Duration::from_millis),
            lockout_after: self.auth_lockout_after.unwrap_or(d.lockout_after),
            ..d
        }
    }

    fn harvest(&self) -> HarvestPolicy {
        let d = HarvestPolicy::default();
        HarvestPolicy {
            limit: self.unknown_recipient_limit.unwrap_or(d.limit),
            window: secs(self.unknown_recipient_window_secs, d.window),
        }
    }

    /// The MTA-STS policy to publish, when a mode is given (clap checked it).
    fn published_sts(&self) -> Option<Policy> {
        let mode = match self.mta_sts_mode.as_deref()? {
            "enforce" => Mode::Enforce,
            "testing" => Mode::Testing,
            _ => Mode::None,
        };
        let mx = match &self.mta_sts_mx {
            Some(list) => list.iter().map(|m| m.trim().to_ascii_lowercase()).collect(),
            None => vec![self.hostname.clone().unwrap_or_else(system_hostname)],
        };
        Some(Policy {
            mode,
            mx,
            max_age: self
                .mta_sts_max_age
                .unwrap_or(604_800)
                .min(mta_sts::MAX_AGE),
        })
    }

    /// Outbound transport settings.
    fn transport(&self) -> TransportConfig {
        let d = TransportConfig::default();
        TransportConfig {
            workers: self.transport_workers.unwrap_or(d.workers),
            hostname: self.hostname.clone().unwrap_or_else(system_hostname),
            first_retry: secs(self.retry_first_secs, d.first_retry),
            max_retry: secs(self.retry_max_secs, d.max_retry),
            lifetime: secs(self.queue_lifetime_secs, d.lifetime),
            delay_warning: secs(self.delay_warning_secs, d.delay_warning),
            postmaster: self.postmaster.clone(),
            claim: secs(self.claim_secs, d.claim),
            poll_interval: self
                .queue_poll_ms
                .map_or(d.poll_interval, Duration::from_millis),
            dns_server: self.dns_server,
            dane_resolver: self.dane_resolver,
            tls_report_period: self
                .tls_report_period_secs
                .map_or(d.tls_report_period, Duration::from_secs),
            mx_port: self.mx_port.unwrap_or(d.mx_port),
            mta_sts_port: self.mta_sts_port.unwrap_or(d.mta_sts_port),
            publish_sts: self.published_sts(),
            ..d
        }
    }
}

/// A secret given directly or in a file (trimmed); `None` when neither.
fn secret(given: Option<String>, file: Option<PathBuf>, what: &str) -> Result<Option<String>> {
    match (given, file) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(f)) => Ok(Some(
            std::fs::read_to_string(&f)
                .with_context(|| format!("reading {what} from {}", f.display()))?
                .trim()
                .to_string(),
        )),
        (None, None) => Ok(None),
    }
}

//! `bridgehead frontend`'s settings, and how they become a `FrontendConfig` (defaults from
//! `FrontendConfig::default`, next to the settings in the front-end's server module).
use super::{secs, system_hostname, Settings};
use anyhow::{bail, Result};
use bridgehead_frontend::backend_client::ClientTlsFiles;
use bridgehead_frontend::filter::FilterSpec;
use bridgehead_frontend::FrontendConfig;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendArgs {
    /// TOML file with any of these settings.
    #[arg(long, env = "BRIDGEHEAD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Back-end gRPC address (host:port); repeat or separate with commas for several.
    #[arg(long = "backend", env = "BRIDGEHEAD_BACKENDS", value_delimiter = ',')]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// Milters every SMTP message goes through, in order, after DATA and before it is stored:
    /// a comma-separated list of inet:HOST:PORT or unix:/PATH, each optionally followed by
    /// ?default=tempfail|accept (when it is down or slow; tempfail by default) and
    /// &timeout=SECS (see README, Filtering).
    #[arg(long, env = "BRIDGEHEAD_MILTERS")]
    pub milters: Option<String>,
    /// Milters for submission (ports 587 and 465) instead of --milters; empty: none there.
    #[arg(long, env = "BRIDGEHEAD_SUBMISSION_MILTERS")]
    pub submission_milters: Option<String>,
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

impl Settings for FrontendArgs {
    fn config_file(&mut self) -> &mut Option<PathBuf> {
        &mut self.config
    }
}

impl FrontendArgs {
    /// The front-end's configuration from settings already layered.
    pub fn resolve(self) -> Result<FrontendConfig> {
        let d = FrontendConfig::default();
        if self.backends.is_empty() {
            bail!("no back-end given: use --backend HOST:PORT (or BRIDGEHEAD_BACKENDS)");
        }
        let backend_tls = match (self.backend_ca, self.backend_cert, self.backend_key) {
            (Some(ca), Some(cert), Some(key)) => Some(ClientTlsFiles { ca, cert, key }),
            (None, None, None) => None,
            _ => bail!("mutual TLS needs all of --backend-ca, --backend-cert and --backend-key"),
        };
        let listeners = [
            self.pop3_listen,
            self.pop3s_listen,
            self.smtp_listen,
            self.submission_listen,
            self.submissions_listen,
        ];
        if listeners.iter().all(Option::is_none) {
            bail!("no listener given: use --pop3-listen, --pop3s-listen, --smtp-listen, --submission-listen or --submissions-listen");
        }
        let milters = FilterSpec::parse_list(self.milters.as_deref().unwrap_or(""))?;
        let submission_milters = match self.submission_milters.as_deref() {
            Some(list) => Some(FilterSpec::parse_list(list)?),
            None => None,
        };
        Ok(FrontendConfig {
            backend_tls,
            milters,
            submission_milters,
            pop3_listen: self.pop3_listen,
            pop3s_listen: self.pop3s_listen,
            smtp_listen: self.smtp_listen,
            submission_listen: self.submission_listen,
            submissions_listen: self.submissions_listen,
            backends: self.backends,
            hostname: self.hostname.unwrap_or_else(system_hostname),
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            proxy_protocol_from: self.proxy_protocol_from,
            max_message_size: self.max_message_size.unwrap_or(d.max_message_size),
            max_recipients: self.max_recipients.unwrap_or(d.max_recipients),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_connections_per_ip: self
                .max_connections_per_ip
                .unwrap_or(d.max_connections_per_ip),
            allow_plaintext_auth: self.allow_plaintext_auth.unwrap_or(d.allow_plaintext_auth),
            lease_seconds: self.lease_secs.unwrap_or(d.lease_seconds),
            idle_timeout: secs(self.idle_timeout_secs, d.idle_timeout),
            drain_timeout: secs(self.drain_secs, d.drain_timeout),
            tls_handshake_timeout: secs(
                self.tls_handshake_secs.map(|s| s.max(1)),
                d.tls_handshake_timeout,
            ),
            backend_timeout: secs(self.backend_timeout_secs, d.backend_timeout),
            backend_refresh: secs(
                self.backend_refresh_secs.map(|s| s.max(1)),
                d.backend_refresh,
            ),
            recipient_cache_ttl: secs(self.recipient_cache_secs, d.recipient_cache_ttl),
            smtp_command_timeout: secs(self.smtp_command_timeout_secs, d.smtp_command_timeout),
            smtp_data_timeout: secs(self.smtp_data_timeout_secs, d.smtp_data_timeout),
            ..d
        })
    }
}

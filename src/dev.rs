//! `bridgehead dev`: a whole cluster on one machine — a private PostgreSQL, one back-end and
//! one front-end — for trying Bridgehead out and for development.
//!
//! First run: initdb, a self-signed certificate, an admin token, and a demo domain and user
//! (made once). Every run prints the endpoints and writes them to `<data-dir>/endpoints.json`.
//! Ctrl-C or SIGTERM stops the front-end, the back-end, then PostgreSQL.
use crate::certs::{ensure_dev_certificate, write_private};
use crate::config::DEFAULT_MAX_MESSAGE_SIZE;
use anyhow::{Context, Result};
use bridgehead_backend::address::Address;
use bridgehead_backend::auth::AuthPolicy;
use bridgehead_backend::connector::ConnectorConfig;
use bridgehead_backend::console::ConsoleConfig;
use bridgehead_backend::grpc::TlsFiles;
use bridgehead_backend::pgrunner::PgServer;
use bridgehead_backend::pki::ClusterPki;
use bridgehead_backend::secrets::Secrets;
use bridgehead_backend::transport::TransportConfig;
use bridgehead_backend::{password, store, BackendConfig, BackendHandle};
use bridgehead_frontend::backend_client::ClientTlsFiles;
use bridgehead_frontend::filter::FilterSpec;
use bridgehead_frontend::{FrontendConfig, FrontendHandle};
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

const DEMO_DOMAIN: &str = "example.com";
const DEMO_USER: &str = "demo@example.com";

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Where the cluster keeps its data (PostgreSQL, certificate, tokens).
    #[arg(long, env = "BRIDGEHEAD_DATA_DIR", default_value = ".bridgehead")]
    data_dir: PathBuf,
    /// Use this PostgreSQL server instead of starting a private one.
    #[arg(long, env = "BRIDGEHEAD_DATABASE_URL")]
    database_url: Option<String>,
    /// Address every listener binds to.
    #[arg(long, env = "BRIDGEHEAD_DEV_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// POP3 port (STLS); 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_POP3_PORT", default_value_t = 1110)]
    pop3_port: u16,
    /// POP3S port (implicit TLS); 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_POP3S_PORT", default_value_t = 1995)]
    pop3s_port: u16,
    /// SMTP inbound MX port (25 in production); 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_SMTP_PORT", default_value_t = 2525)]
    smtp_port: u16,
    /// SMTP submission port (587 in production, STARTTLS); 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_SUBMISSION_PORT", default_value_t = 1587)]
    submission_port: u16,
    /// SMTP submissions port (465 in production, implicit TLS); 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_SUBMISSIONS_PORT", default_value_t = 1465)]
    submissions_port: u16,
    /// Back-end gRPC (and admin API) port; 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_GRPC_PORT", default_value_t = 7070)]
    grpc_port: u16,
    /// Record message-tracking events (the console's tracking page, `admin track`).
    #[arg(long, env = "BRIDGEHEAD_TRACKING", default_value_t = true, action = clap::ArgAction::Set)]
    tracking: bool,
    /// The operator console's port (HTTP); 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_CONSOLE_PORT", default_value_t = 9190)]
    console_port: u16,
    /// HTTP port for /metrics, /healthz and /readyz of the whole cluster; 0 picks a free port.
    #[arg(long, env = "BRIDGEHEAD_METRICS_PORT", default_value_t = 9180)]
    metrics_port: u16,
    /// Allow passwords over POP3 without TLS (off: clients must use STLS or POP3S).
    #[arg(long, env = "BRIDGEHEAD_ALLOW_PLAINTEXT_AUTH")]
    allow_plaintext_auth: bool,
    /// Seconds the front-end remembers an accepted mailbox recipient (0: always ask).
    #[arg(long, env = "BRIDGEHEAD_RECIPIENT_CACHE_SECS", default_value_t = 5)]
    recipient_cache_secs: u64,
    /// Check mail from unauthenticated clients (SPF, DKIM, DMARC) as a production back-end
    /// does (off: a laptop cluster takes test mail from anywhere).
    #[arg(long, env = "BRIDGEHEAD_CHECK_MAIL_AUTH")]
    check_mail_auth: bool,
    /// DNS server (IP:PORT) for those checks and for MX lookups, instead of the system's.
    #[arg(long, env = "BRIDGEHEAD_DNS_SERVER")]
    dns_server: Option<SocketAddr>,
    /// Milters every SMTP message goes through, as the front-end's --milters.
    #[arg(long, env = "BRIDGEHEAD_MILTERS")]
    milters: Option<String>,
}

pub async fn run(args: DevArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let dir = args
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.data_dir.display()))?;
    let (mut pg, database_url) = database(&args, &dir).await?;
    let admin_token = secret(&dir.join("admin-token"))?;
    let pki = bridgehead_backend::pki::ensure(&dir.join("pki"), &[args.host.to_string()])?;
    let backend = BackendHandle::start(backend_config(&args, &dir, &pki, database_url)?).await?;
    let demo_password = ensure_demo(&backend.store, &dir).await?;
    let frontend = FrontendHandle::start(frontend_config(&args, &dir, &pki, backend.addr)?).await?;
    let ready = frontend.shutdown_token();
    let metrics = crate::http::serve(
        SocketAddr::new(args.host, args.metrics_port),
        vec![frontend.registry.clone(), backend.registry.clone()],
        std::sync::Arc::new(move || !ready.is_cancelled()),
        None,
        frontend.shutdown_token(),
    )
    .await?;
    let endpoints = serde_json::json!({
        "metrics": metrics.to_string(),
        "pop3": frontend.pop3.map(|a| a.to_string()),
        "pop3s": frontend.pop3s.map(|a| a.to_string()),
        "smtp": frontend.smtp.map(|a| a.to_string()),
        "submission": frontend.submission.map(|a| a.to_string()),
        "submissions": frontend.submissions.map(|a| a.to_string()),
        "grpc": backend.addr.to_string(),
        "console": backend.console_addr.map(|a| format!("http://{a}/")),
        "grpc_ca": pki.ca.display().to_string(),
        "admin_token": admin_token,
        "demo_user": DEMO_USER,
        "demo_password": demo_password,
        "postgres_data": pg.as_ref().map(|p| p.data_dir().display().to_string()),
    });
    let path = dir.join("endpoints.json");
    write_private(&path, serde_json::to_string_pretty(&endpoints)?.as_bytes())?;
    print_endpoints(&endpoints, &path, &dir);

    crate::shutdown_signal().await;
    println!("stopping…");
    frontend.stop().await;
    backend.stop().await?;
    if let Some(pg) = pg.as_mut() {
        pg.stop();
    }
    println!("stopped");
    Ok(())
}

/// The dev back-end: mutual TLS with the dev front-end, secrets sealed with the dev key.
fn backend_config(
    args: &DevArgs,
    dir: &Path,
    pki: &ClusterPki,
    database_url: String,
) -> Result<BackendConfig> {
    Ok(BackendConfig {
        listen: SocketAddr::new(args.host, args.grpc_port),
        database_url,
        max_db_connections: BackendConfig::DEFAULT_DB_CONNECTIONS,
        admin_token: secret(&dir.join("admin-token"))?,
        max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        auth: AuthPolicy::default(),
        harvest: Default::default(),
        transport: TransportConfig {
            hostname: crate::config::system_hostname(),
            dns_server: args.dns_server,
            ..TransportConfig::default()
        },
        connector: ConnectorConfig {
            hostname: crate::config::system_hostname(),
            ..ConnectorConfig::default()
        },
        tls: Some(TlsFiles {
            cert: pki.backend_cert.clone(),
            key: pki.backend_key.clone(),
            client_ca: pki.ca.clone(),
        }),
        secrets: dev_secrets(&dir.join("secret-key"))?,
        check_mail_auth: args.check_mail_auth,
        trusted_arc_sealers: Vec::new(),
        tracking: bridgehead_backend::tracking::TrackingConfig {
            enabled: args.tracking,
            ..Default::default()
        },
        console: Some(ConsoleConfig {
            listen: Some(SocketAddr::new(args.host, args.console_port)),
            admin_token: secret(&dir.join("admin-token"))?,
            ..ConsoleConfig::default()
        }),
    })
}

/// The dev front-end: every listener on the dev ports, the dev certificate.
fn frontend_config(
    args: &DevArgs,
    dir: &Path,
    pki: &ClusterPki,
    backend: SocketAddr,
) -> Result<FrontendConfig> {
    let (cert, key) = ensure_dev_certificate(&dir.join("tls"))?;
    let at = |port| Some(SocketAddr::new(args.host, port));
    Ok(FrontendConfig {
        pop3_listen: at(args.pop3_port),
        pop3s_listen: at(args.pop3s_port),
        smtp_listen: at(args.smtp_port),
        submission_listen: at(args.submission_port),
        submissions_listen: at(args.submissions_port),
        hostname: crate::config::system_hostname(),
        backends: vec![backend.to_string()],
        backend_tls: Some(ClientTlsFiles {
            ca: pki.ca.clone(),
            cert: pki.frontend_cert.clone(),
            key: pki.frontend_key.clone(),
        }),
        tls_cert: Some(cert),
        tls_key: Some(key),
        allow_plaintext_auth: args.allow_plaintext_auth,
        recipient_cache_ttl: std::time::Duration::from_secs(args.recipient_cache_secs),
        milters: FilterSpec::parse_list(args.milters.as_deref().unwrap_or(""))?,
        ..FrontendConfig::default()
    })
}

/// The private PostgreSQL (started here) or the one given, and the URL of our database.
async fn database(args: &DevArgs, dir: &Path) -> Result<(Option<PgServer>, String)> {
    if let Some(url) = &args.database_url {
        return Ok((None, url.clone()));
    }
    let pg_dir = dir.join("postgres");
    let pg = tokio::task::spawn_blocking(move || PgServer::start(&pg_dir, 0)).await??;
    store::ensure_database(&pg.url("postgres"), "bridgehead")
        .await
        .context("creating the bridgehead database")?;
    let url = pg.url("bridgehead");
    Ok((Some(pg), url))
}

/// A random secret kept in `path`, made on first use.
fn secret(path: &Path) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        return Ok(s.trim().to_string());
    }
    use rand::distributions::{Alphanumeric, DistString};
    let s = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    write_private(path, format!("{s}\n").as_bytes())?;
    Ok(s)
}

/// The key that seals secrets at rest, made on first use.
fn dev_secrets(path: &Path) -> Result<Secrets> {
    if !path.exists() {
        write_private(path, format!("{}\n", Secrets::new_key_text()).as_bytes())?;
    }
    Ok(Secrets::from_key_file(path)?)
}

/// Creates the demo domain and user once (a marker file remembers it), returns the password.
async fn ensure_demo(store: &store::Store, dir: &Path) -> Result<String> {
    let password = secret(&dir.join("demo-password"))?;
    let marker = dir.join("demo-created");
    if marker.exists() {
        return Ok(password);
    }
    match store.add_domain(DEMO_DOMAIN).await {
        Ok(()) | Err(bridgehead_backend::StoreError::DomainExists(_)) => {}
        Err(e) => return Err(e).context("creating the demo domain"),
    }
    let hash = password::hash(&password)?;
    match store
        .add_user(&Address::parse(DEMO_USER)?, &hash, None)
        .await
    {
        Ok(()) | Err(bridgehead_backend::StoreError::AddressTaken(_)) => {}
        Err(e) => return Err(e).context("creating the demo user"),
    }
    std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    Ok(password)
}

fn print_endpoints(e: &serde_json::Value, path: &Path, dir: &Path) {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    println!(
        "Bridgehead dev cluster is running (data in {})",
        dir.display()
    );
    println!("  pop3      {}   (STLS)", s("pop3"));
    println!(
        "  pop3s     {}   (implicit TLS, self-signed certificate)",
        s("pop3s")
    );
    println!(
        "  smtp      {}   (inbound MX: local recipients, STARTTLS)",
        s("smtp")
    );
    println!(
        "  submission {}  (STARTTLS + AUTH, relays for users)",
        s("submission")
    );
    println!("  submissions {} (implicit TLS + AUTH)", s("submissions"));
    println!(
        "  grpc      {}   (back-end and admin API; mutual TLS, CA {})",
        s("grpc"),
        s("grpc_ca")
    );
    println!(
        "  metrics   http://{}/metrics  (and /healthz, /readyz)",
        s("metrics")
    );
    println!(
        "  console   {}  (operator console; first sign-in: the admin token as the password)",
        s("console")
    );
    println!(
        "  demo user {}  password {}",
        s("demo_user"),
        s("demo_password")
    );
    println!(
        "  admin:    bridgehead admin --data-dir {} user list",
        dir.display()
    );
    if let Some(pg) = e["postgres_data"].as_str() {
        if !Path::new(pg).starts_with(dir) {
            println!(
                "  postgres  data in {pg} (the postgres user cannot enter the data directory)"
            );
        }
    }
    println!(
        "Endpoints written to {}. Ctrl-C stops the cluster.",
        path.display()
    );
}

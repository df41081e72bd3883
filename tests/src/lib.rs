//! The cluster test harness.
//!
//! One private PostgreSQL per test binary (started on first use from the system's binaries,
//! on a free loopback port, stopped and removed when the binary exits), a fresh database per
//! test, and back-ends and front-ends in-process on port 0. No sleeps, no fixed ports, no
//! Docker. Helpers run real clients (Python's poplib, curl) and raw socket transcripts.
use bridgehead_backend::address::Address;
use bridgehead_backend::auth::AuthPolicy;
use bridgehead_backend::connector::ConnectorConfig;
use bridgehead_backend::grpc::TlsFiles;
pub use bridgehead_backend::harvest::HarvestPolicy;
use bridgehead_backend::secrets::Secrets;

/// The test back-ends' key for secrets at rest.
pub const SECRET_KEY: [u8; 32] = [42; 32];
use bridgehead_backend::pgrunner::PgServer;
use bridgehead_backend::pki::{self, ClusterPki};
use bridgehead_backend::transport::TransportConfig;
use bridgehead_backend::{password, store, BackendConfig, BackendHandle, Store};
use bridgehead_frontend::backend_client::ClientTlsFiles;
use bridgehead_frontend::{FrontendConfig, FrontendHandle};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub mod checks;
pub mod compose;
pub mod dns;
pub mod dnssec;
pub mod filters;
pub mod otlp;
pub mod outbound;
pub mod postfix;
pub mod procs;
mod sink;

pub use sink::Sink;

pub const ADMIN_TOKEN: &str = "test-admin-token";

struct SharedPg {
    server: PgServer,
    next_db: AtomicU32,
}

fn shared_pg() -> &'static SharedPg {
    static PG: OnceLock<SharedPg> = OnceLock::new();
    PG.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("bridgehead-test-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let server = PgServer::start_ephemeral(&dir)
            .unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
        SharedPg {
            server,
            next_db: AtomicU32::new(0),
        }
    })
}

/// A new, empty database on the shared test server; returns its URL.
pub async fn fresh_database() -> String {
    let pg = shared_pg();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        pg.next_db.fetch_add(1, Ordering::Relaxed)
    );
    store::ensure_database(&pg.server.url("postgres"), &name)
        .await
        .expect("create test database");
    pg.server.url(&name)
}

/// Options for a test cluster.
#[derive(Clone, Debug)]
pub struct Options {
    pub allow_plaintext_auth: bool,
    pub auth_delay: Duration,
    /// The login-failure window and the lockout threshold (see `AuthPolicy`).
    pub auth_window: Duration,
    pub auth_lockout_after: u32,
    pub idle_timeout: Duration,
    pub lease_seconds: u32,
    /// Extra back-end addresses the front-end is told about (e.g. dead ones).
    pub extra_backends: Vec<String>,
    pub max_message_size: u64,
    pub max_connections_per_ip: usize,
    /// Networks trusted to send a PROXY protocol header.
    pub proxy_protocol_from: Vec<String>,
    /// Mutual TLS between the front-end and the back-end.
    pub mtls: bool,
    pub smtp_command_timeout: Duration,
    /// A database of the test's own (say, on a PostgreSQL it restarts); default: a fresh
    /// one on the shared test server.
    pub database_url: Option<String>,
    /// How long the front-end remembers accepted mailbox recipients (its default: 5 s).
    pub recipient_cache_ttl: Duration,
    /// Outbound transport of the back-end (off by default; fast polling and retries).
    pub transport: TransportConfig,
    /// POP3 connector workers of the back-end (off by default; fast polling).
    pub connector: ConnectorConfig,
    /// The unknown-recipient limit (recipient harvesting).
    pub harvest: HarvestPolicy,
    /// The front-end's TLS handshake deadline.
    pub tls_handshake_timeout: Duration,
    /// Mail authentication checks of unauthenticated mail (off: tests have no DNS unless
    /// they start one and name it in `transport.dns_server`).
    pub check_mail_auth: bool,
    /// ARC sealers whose valid seal overrides a DMARC failure.
    pub trusted_arc_sealers: Vec<String>,
    /// The front-end's milters (all listeners), and for submission instead when given.
    pub milters: Vec<bridgehead_frontend::filter::FilterSpec>,
    pub submission_milters: Option<Vec<bridgehead_frontend::filter::FilterSpec>>,
    /// The back-end's operator console (off by default).
    pub console: Option<bridgehead_backend::console::ConsoleConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_plaintext_auth: false,
            auth_delay: Duration::from_millis(20),
            auth_window: AuthPolicy::default().window,
            auth_lockout_after: AuthPolicy::default().lockout_after,
            idle_timeout: Duration::from_secs(600),
            lease_seconds: 60,
            extra_backends: Vec::new(),
            max_message_size: 50 * 1024 * 1024,
            max_connections_per_ip: 100,
            proxy_protocol_from: Vec::new(),
            mtls: false,
            smtp_command_timeout: Duration::from_secs(300),
            database_url: None,
            recipient_cache_ttl: FrontendConfig::default().recipient_cache_ttl,
            // Off unless a test turns it on: queued mail stays put for inspection.
            transport: TransportConfig {
                workers: 0,
                hostname: "mx.test.example".into(),
                poll_interval: Duration::from_millis(50),
                first_retry: Duration::from_millis(300),
                max_retry: Duration::from_secs(2),
                command_timeout: Duration::from_secs(20),
                ..TransportConfig::default()
            },
            harvest: HarvestPolicy::default(),
            check_mail_auth: false,
            trusted_arc_sealers: Vec::new(),
            milters: Vec::new(),
            submission_milters: None,
            tls_handshake_timeout: FrontendConfig::default().tls_handshake_timeout,
            console: None,
            connector: ConnectorConfig {
                workers: 0,
                hostname: "mx.test.example".into(),
                poll_interval: Duration::from_millis(50),
                timeout: Duration::from_secs(20),
                ..ConnectorConfig::default()
            },
        }
    }
}

/// One back-end and one front-end over a fresh database.
pub struct Cluster {
    pub backend: Option<BackendHandle>,
    pub backend_addr: SocketAddr,
    pub frontend: Option<FrontendHandle>,
    pub pop3: SocketAddr,
    pub pop3s: SocketAddr,
    pub smtp: SocketAddr,
    pub submission: SocketAddr,
    pub submissions: SocketAddr,
    pub database_url: String,
    pub store: Store,
    pub cert: PathBuf,
    /// The private PKI, with `Options::mtls`.
    pub pki: Option<ClusterPki>,
    opts: Options,
    _dir: tempfile::TempDir,
}

fn backend_config(
    database_url: &str,
    listen: SocketAddr,
    opts: &Options,
    pki: Option<&ClusterPki>,
) -> BackendConfig {
    BackendConfig {
        listen,
        database_url: database_url.to_string(),
        max_db_connections: 10,
        admin_token: ADMIN_TOKEN.to_string(),
        max_message_size: 50 * 1024 * 1024,
        auth: AuthPolicy {
            base_delay: opts.auth_delay,
            window: opts.auth_window,
            lockout_after: opts.auth_lockout_after,
            ..AuthPolicy::default()
        },
        harvest: opts.harvest.clone(),
        transport: opts.transport.clone(),
        connector: opts.connector.clone(),
        tls: pki.map(|p| TlsFiles {
            cert: p.backend_cert.clone(),
            key: p.backend_key.clone(),
            client_ca: p.ca.clone(),
        }),
        secrets: Secrets::from_key(&SECRET_KEY).expect("a 32-byte key"),
        check_mail_auth: opts.check_mail_auth,
        trusted_arc_sealers: opts.trusted_arc_sealers.clone(),
        tracking: Default::default(),
        console: opts.console.clone(),
    }
}

impl Cluster {
    pub async fn start() -> Cluster {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Cluster {
        let database_url = match &opts.database_url {
            Some(url) => url.clone(),
            None => fresh_database().await,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = write_certificate(dir.path());
        let pki = opts
            .mtls
            .then(|| pki::ensure(&dir.path().join("pki"), &[]).expect("test PKI"));
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let backend = BackendHandle::start(backend_config(&database_url, any, &opts, pki.as_ref()))
            .await
            .expect("start back-end");
        let mut backends = vec![backend.addr.to_string()];
        backends.extend(opts.extra_backends.iter().cloned());
        let frontend = FrontendHandle::start(FrontendConfig {
            pop3_listen: Some(any),
            pop3s_listen: Some(any),
            smtp_listen: Some(any),
            submission_listen: Some(any),
            submissions_listen: Some(any),
            hostname: "mx.test.example".to_string(),
            max_message_size: opts.max_message_size,
            max_connections_per_ip: opts.max_connections_per_ip,
            proxy_protocol_from: opts.proxy_protocol_from.clone(),
            smtp_command_timeout: opts.smtp_command_timeout,
            recipient_cache_ttl: opts.recipient_cache_ttl,
            drain_timeout: Duration::from_secs(1),
            tls_handshake_timeout: opts.tls_handshake_timeout,
            backend_tls: pki.as_ref().map(|p| ClientTlsFiles {
                ca: p.ca.clone(),
                cert: p.frontend_cert.clone(),
                key: p.frontend_key.clone(),
            }),
            backends,
            tls_cert: Some(cert.clone()),
            tls_key: Some(key),
            allow_plaintext_auth: opts.allow_plaintext_auth,
            idle_timeout: opts.idle_timeout,
            lease_seconds: opts.lease_seconds,
            milters: opts.milters.clone(),
            submission_milters: opts.submission_milters.clone(),
            ..FrontendConfig::default()
        })
        .await
        .expect("start front-end");
        Cluster {
            backend_addr: backend.addr,
            store: backend.store.clone(),
            backend: Some(backend),
            pop3: frontend.pop3.expect("pop3 bound"),
            pop3s: frontend.pop3s.expect("pop3s bound"),
            smtp: frontend.smtp.expect("smtp bound"),
            submission: frontend.submission.expect("submission bound"),
            submissions: frontend.submissions.expect("submissions bound"),
            frontend: Some(frontend),
            database_url,
            cert,
            pki,
            opts,
            _dir: dir,
        }
    }

    /// Stops the back-end (its calls in flight finish) and starts a new one on the same port.
    pub async fn restart_backend(&mut self) {
        self.stop_backend().await;
        self.start_backend().await;
    }

    pub async fn stop_backend(&mut self) {
        if let Some(b) = self.backend.take() {
            b.stop().await.expect("stop back-end");
        }
    }

    pub async fn start_backend(&mut self) {
        let b = BackendHandle::start(backend_config(
            &self.database_url,
            self.backend_addr,
            &self.opts,
            self.pki.as_ref(),
        ))
        .await
        .expect("restart back-end on the same port");
        self.store = b.store.clone();
        self.backend = Some(b);
    }

    /// Creates the domain of `address` (if needed) and the user.
    pub async fn add_user(&self, address: &str, pass: &str) {
        add_user(&self.store, address, pass).await
    }

    /// Delivers `message` to `address`, returns its UID.
    pub async fn deliver(&self, address: &str, message: &[u8]) -> i64 {
        deliver(&self.store, address, message).await
    }

    /// UIDs in the mailbox of `address`, straight from the store.
    pub async fn uids(&self, address: &str) -> Vec<i64> {
        let addr = Address::parse(address).expect("valid address");
        let (id, _) = self
            .store
            .resolve_recipient(&addr)
            .await
            .expect("lookup")
            .expect("exists");
        self.store
            .listing(id)
            .await
            .expect("listing")
            .iter()
            .map(|m| m.uid)
            .collect()
    }

    /// Successful calls of `method` (say "fetch_many") the front-end made to back-ends, from
    /// its metrics.
    pub fn backend_calls(&self, method: &str) -> u64 {
        self.frontend_metric(&format!(
            "bridgehead_frontend_backend_call_seconds_count{{method=\"{method}\",outcome=\"ok\"}}"
        ))
    }

    /// One value of the back-end's metrics: `series` is the name with its labels, as the
    /// text format writes it (0 when absent).
    pub fn backend_metric(&self, series: &str) -> u64 {
        let registry = &self.backend.as_ref().expect("back-end running").registry;
        metric(registry, series)
    }

    /// One value of the front-end's metrics, as `backend_metric`.
    pub fn frontend_metric(&self, series: &str) -> u64 {
        let registry = &self.frontend.as_ref().expect("front-end running").registry;
        metric(registry, series)
    }

    pub async fn stop(mut self) {
        if let Some(f) = self.frontend.take() {
            f.stop().await;
        }
        self.stop_backend().await;
    }
}

/// One value from a registry's text encoding (0 when absent).
fn metric(registry: &prometheus_client::registry::Registry, series: &str) -> u64 {
    let mut metrics = String::new();
    prometheus_client::encoding::text::encode(&mut metrics, registry).expect("metrics");
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().expect("a count"))
}

/// A self-signed certificate for localhost in `dir`.
pub fn write_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    (cert, key)
}

/// One POP3 login (USER/PASS, plaintext allowed) on a connection of its own, from `source`
/// when given (another loopback address); the reply to PASS. A session that logged in quits.
pub async fn pop3_attempt(
    pop3: SocketAddr,
    source: Option<std::net::Ipv4Addr>,
    user: &str,
    password: &str,
) -> String {
    let mut s = match source {
        Some(ip) => RawClient::connect_from(pop3, ip).await,
        None => RawClient::connect(pop3).await,
    };
    s.line().await;
    s.send(format!("USER {user}\r\nPASS {password}\r\n").as_bytes())
        .await;
    s.line().await;
    let reply = s.line().await;
    if reply.starts_with("+OK") {
        s.send(b"QUIT\r\n").await;
        s.line().await;
    }
    reply
}

/// A raw line-oriented client for transcripts.
pub struct RawClient {
    reader: BufReader<TcpStream>,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        RawClient {
            reader: BufReader::new(tcp),
        }
    }

    /// Connects from another loopback address (127.0.0.0/8 is all ours): a client from
    /// `source` as far as the server can tell.
    pub async fn connect_from(addr: SocketAddr, source: std::net::Ipv4Addr) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind a loopback source address");
        let tcp = socket.connect(addr).await.expect("connect");
        RawClient {
            reader: BufReader::new(tcp),
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.reader.get_mut().write_all(data).await.expect("send");
    }

    /// Sends `data`; false when the server has closed the connection.
    pub async fn try_send(&mut self, data: &[u8]) -> bool {
        self.reader.get_mut().write_all(data).await.is_ok()
    }

    /// Sends `data` in pieces of `piece` bytes, each written separately.
    pub async fn send_in_pieces(&mut self, data: &[u8], piece: usize) {
        for chunk in data.chunks(piece) {
            self.send(chunk).await;
            self.reader.get_mut().flush().await.expect("flush");
            tokio::task::yield_now().await;
        }
    }

    /// One reply line, with its CRLF; empty at end of stream.
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(20), self.reader.read_line(&mut line))
            .await
            .expect("reply within 20 s")
            .expect("read");
        line
    }

    /// A multi-line reply up to and including ".\r\n".
    pub async fn multiline(&mut self) -> String {
        let mut all = String::new();
        loop {
            let l = self.line().await;
            assert!(
                !l.is_empty(),
                "connection closed inside a multi-line reply: {all}"
            );
            all.push_str(&l);
            if l == ".\r\n" || (all.len() == l.len() && l.starts_with("-ERR")) {
                return all;
            }
        }
    }

    /// A multi-line SMTP reply ("250-a", "250 b"), up to its last line.
    pub async fn multiline_smtp(&mut self) -> String {
        let mut all = String::new();
        loop {
            let l = self.line().await;
            assert!(l.len() >= 4, "connection closed inside a reply: {all}{l}");
            all.push_str(&l);
            if l.as_bytes()[3] == b' ' {
                return all;
            }
        }
    }

    /// True when the server has closed the connection (EOF, or a reset when it closed with
    /// unread input, within 20 s).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), self.reader.read_to_end(&mut rest))
            .await
            .is_ok()
    }
}

/// The field `name` (e.g. "Authentication-Results") of the newest message in `mailbox`,
/// unfolded to one line; the test fails when there is no message or no such field.
pub async fn last_header(c: &Cluster, mailbox: &str, name: &str) -> String {
    let messages = read_mailbox(&c.store, mailbox, None).await;
    let text = String::from_utf8_lossy(messages.last().expect("a message")).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let head = head.replace("\r\n\t", " ").replace("\r\n ", " ");
    let prefix = format!("{name}:");
    head.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

/// Runs `bridgehead admin ARGS` (the binary at `bin`: the test's `CARGO_BIN_EXE_bridgehead`)
/// against the cluster's back-end; its standard output, the test failing when it fails.
pub fn admin_cli(bin: &str, c: &Cluster, args: &[&str]) -> String {
    let out = std::process::Command::new(bin)
        .args(["admin", "--url", &format!("http://{}", c.backend_addr)])
        .args(["--token", ADMIN_TOKEN])
        .args(args)
        .output()
        .expect("run bridgehead admin");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Runs a Python script (with `args` as sys.argv[1:]), asserts it succeeds, returns stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs curl with `args`; returns (success, stdout bytes, stderr).
pub fn curl(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl is installed");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a blocking client on a thread so the in-process cluster keeps serving.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

/// Creates the domain of `address` (if needed) and the user, in `store`.
pub async fn add_user(store: &Store, address: &str, pass: &str) {
    let addr = Address::parse(address).expect("valid address");
    let _ = store.add_domain(addr.domain()).await;
    let hash = password::hash(pass).expect("hash");
    store.add_user(&addr, &hash, None).await.expect("add user");
}

/// Delivers `message` to `address` straight into `store`; returns its UID.
pub async fn deliver(store: &Store, address: &str, message: &[u8]) -> i64 {
    let addr = Address::parse(address).expect("valid address");
    let (id, mailbox) = store
        .resolve_recipient(&addr)
        .await
        .expect("lookup")
        .expect("recipient exists");
    let mut w = store.begin_content(50 * 1024 * 1024).await.expect("begin");
    w.write(message).await.expect("write");
    let d = w
        .deliver(&[(id, mailbox, Vec::new())], None)
        .await
        .expect("deliver");
    d[0].uid
}

/// Polls `check` every 50 ms until it returns `Some` (or 30 s pass).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Message-IDs (without angle brackets) in the mailbox of `address`, with how often each is
/// there.
pub async fn message_ids(store: &Store, address: &str) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for m in read_mailbox(store, address, Some(0)).await {
        let id = header(&m, "Message-ID").unwrap_or_default();
        *out.entry(id.trim_matches(['<', '>']).to_string())
            .or_default() += 1;
    }
    out
}

/// Every message in the mailbox of `address`, oldest first, as POP3 would send it — whole, or
/// with `top` only the header and that many body lines. Reads under a lease of its own.
pub async fn read_mailbox(store: &Store, address: &str, top: Option<u32>) -> Vec<Vec<u8>> {
    let addr = Address::parse(address).expect("valid address");
    let (account, _) = store
        .resolve_recipient(&addr)
        .await
        .expect("lookup")
        .expect("mailbox exists");
    let token = format!("reader-{}", std::process::id());
    // A front-end gives a maildrop back before it answers the client, but its release may
    // be retried while a killed back-end's connections fail: allow it a few seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while !store
        .acquire_lease(account, &token, 60)
        .await
        .expect("lease")
    {
        assert!(std::time::Instant::now() < deadline, "mailbox is locked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut out = Vec::new();
    for m in store.listing(account).await.expect("listing") {
        let mut s = store
            .fetch(account, &token, m.uid, top)
            .await
            .expect("fetch");
        let mut msg = Vec::new();
        while let Some(chunk) = std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await {
            msg.extend(chunk.expect("chunk"));
        }
        out.push(msg);
    }
    store.release_lease(account, &token).await.expect("release");
    out
}

/// The value of the first header field `name` in a message, if any.
pub fn header(message: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let prefix = format!("{name}: ");
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

//! The operator console in a real browser: Debian's headless Chromium driven through
//! Selenium (`tests/support/console_browser.py`) signs in, creates a domain and a user,
//! delivers a message and finds it in message tracking, holds and releases a queued message,
//! retrieves a connector now, is refused a form without its CSRF token, sees stored
//! `<script>` values as text, signs out; a domain administrator is refused another domain's
//! user. Screenshots of each page are saved in the test's temp dir (the path is printed).
//! Beside it, without a browser: TLS on the console's own listener under a path prefix
//! (curl), and the CLI's operator, overview and track commands.
use bridgehead_backend::console::ConsoleConfig;
use bridgehead_tests::{admin_cli, curl, eventually, Cluster, Options, ADMIN_TOKEN};
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");
const XSS: &str = "<script>alert('xss')</script>";
const ISP_USER: &str = "chris@isp.example";
const ISP_PASS: &str = "isp password";

/// `bridgehead admin ARGS` with `stdin` (passwords): whether it succeeded, and what it said.
fn admin_result(c: &Cluster, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(["admin", "--url", &format!("http://{}", c.backend_addr)])
        .args(["--token", ADMIN_TOKEN])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bridgehead admin");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("bridgehead admin ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `bridgehead admin ARGS` with `stdin`; the test fails when it fails.
fn admin(c: &Cluster, args: &[&str], stdin: &str) -> String {
    let (ok, text) = admin_result(c, args, stdin);
    assert!(ok, "{args:?}: {text}");
    text
}

fn console(prefix: &str, tls: Option<(std::path::PathBuf, std::path::PathBuf)>) -> ConsoleConfig {
    ConsoleConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        prefix: prefix.to_string(),
        tls,
        admin_token: ADMIN_TOKEN.to_string(),
        trusted_proxies: Vec::new(),
    }
}

fn console_addr(c: &Cluster) -> SocketAddr {
    c.backend
        .as_ref()
        .and_then(|b| b.console_addr)
        .expect("the console listens")
}

/// A port nothing listens on (mail routed there is deferred).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_the_console_in_chromium() {
    let mut opts = Options {
        console: Some(console("", None)),
        allow_plaintext_auth: true,
        ..Options::default()
    };
    opts.transport.workers = 1;
    opts.transport.first_retry = std::time::Duration::from_secs(3600);
    opts.connector.workers = 1;
    let c = Cluster::start_with(opts).await;
    for (u, p) in [
        ("alice@example.com", "alice password"),
        ("postmaster@example.com", "pm password"),
        ("victim@other.test", "victim password"),
        (ISP_USER, ISP_PASS),
    ] {
        c.add_user(u, p).await;
    }
    let server = c.pop3s.to_string();
    let connector = [
        "connector",
        "add",
        "chris",
        "--server",
        &server,
        "--tls",
        "implicit",
        "--no-verify",
    ];
    let rest = [
        "--user",
        ISP_USER,
        "--interval",
        "3600",
        "--to",
        "alice@example.com",
    ];
    admin(
        &c,
        &[&connector[..], &rest[..]].concat(),
        &format!("{ISP_PASS}\n"),
    );
    // Its first poll (due at once) finds nothing; the browser's "retrieve now" finds this.
    eventually("the connector's first poll", || async {
        let k = c.store.get_connector("chris").await.unwrap();
        k.status.last_poll_at.is_some().then_some(())
    })
    .await;
    c.deliver(
        ISP_USER,
        b"Subject: from the ISP\r\nMessage-ID: <isp-1@isp.example>\r\n\r\nfetched\r\n",
    )
    .await;
    let evil = [
        "connector",
        "add",
        "evil",
        "--server",
        "127.0.0.1:9",
        "--tls",
        "none",
    ];
    let evil_rest = [
        "--user",
        XSS,
        "--interval",
        "3600",
        "--to",
        "alice@example.com",
        "--disabled",
    ];
    admin(&c, &[&evil[..], &evil_rest[..]].concat(), "x\n");
    let dead = format!("127.0.0.1:{}", closed_port());
    admin(
        &c,
        &["route", "set", "outside.test", &dead, "--tls", "none"],
        "",
    );
    admin(
        &c,
        &[
            "route",
            "set",
            "evil.test",
            &format!("{XSS}:25"),
            "--tls",
            "none",
        ],
        "",
    );
    let out = admin(
        &c,
        &["operator", "add", "dadmin", "--role", "domain:example.com"],
        "dadmin password\n",
    );
    assert!(out.contains("operator dadmin added"), "{out}");

    let shots = tempfile::Builder::new()
        .prefix("console-screenshots-")
        .tempdir()
        .unwrap()
        .keep();
    let config = serde_json::json!({
        "url": format!("http://{}", console_addr(&c)),
        "token": ADMIN_TOKEN,
        "smtp": c.smtp.to_string(),
        "submission": c.submission.to_string(),
        "sender": "alice@example.com",
        "sender_password": "alice password",
        "outside": "bob@outside.test",
        "connector": "chris",
        "domain_admin": "dadmin",
        "domain_admin_password": "dadmin password",
        "foreign_user": "victim@other.test",
        "shots": shots.display().to_string(),
    });
    let config_file = shots.join("config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/console_browser.py"
    );
    let run = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(&config_file)
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    println!("{said}{}", String::from_utf8_lossy(&run.stderr));
    println!("console screenshots: {}", shots.display());
    assert!(
        run.status.success() && said.contains("\nOK"),
        "the browser run failed"
    );

    // What the browser did is what the store holds.
    let users = admin_cli(BIN, &c, &["user", "list", "--domain", "console.test"]);
    assert!(
        users.contains("carol@console.test") && !users.contains("mallory"),
        "{users}"
    );
    assert_eq!(
        c.uids("carol@console.test").await.len(),
        1,
        "the delivered message"
    );
    assert_eq!(
        c.uids("alice@example.com").await.len(),
        1,
        "the connector's message"
    );
    let evil = c.store.get_connector("evil").await.unwrap();
    assert!(
        evil.server == "127.0.0.2" && !evil.enabled,
        "edited, still off: {evil:?}"
    );
    let queued = c.store.queue_list().await.unwrap();
    assert!(
        queued.len() == 1 && !queued[0].held,
        "queued and released: {queued:?}"
    );
    for page in [
        "01-sign-in",
        "02-overview",
        "05-queue-message",
        "06-tracking",
        "07-connectors-scheduling",
    ] {
        let png = std::fs::read(shots.join(format!("{page}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "{page}.png"
        );
    }
    // The CLI sees the same record and nodes.
    let track = admin_cli(BIN, &c, &["track", "tracked-1@sender.example"]);
    assert!(
        track.contains("accepted") && track.contains("carol@console.test"),
        "{track}"
    );
    let overview = admin_cli(BIN, &c, &["overview"]);
    assert!(
        overview.contains("backend") && overview.contains("frontend"),
        "{overview}"
    );
    let ops = admin_cli(BIN, &c, &["operator", "list"]);
    assert!(ops.contains("dadmin\tdomain:example.com"), "{ops}");
    c.stop().await;
}

/// The console with TLS on its own listener, under a path prefix: the sign-in page and its
/// links carry the prefix, cookies are Secure, a form without its CSRF token is refused,
/// and a wrong password waits the shared penalty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_tls_under_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = bridgehead_tests::write_certificate(dir.path());
    let opts = Options {
        console: Some(console("/ops", Some((cert.clone(), key)))),
        ..Options::default()
    };
    let c = Cluster::start_with(opts).await;
    let base = format!("https://localhost:{}/ops", console_addr(&c).port());
    let jar = dir.path().join("cookies");
    let jar = jar.to_str().unwrap();
    let resolve = format!("localhost:{}:127.0.0.1", console_addr(&c).port());
    let get = |path: &str, extra: &[&str]| {
        let url = format!("{base}{path}");
        let mut args = vec!["--cacert", cert.to_str().unwrap(), "--resolve", &resolve];
        args.extend(["-c", jar, "-b", jar, "-i"]);
        args.extend(extra);
        args.push(&url);
        let (ok, out, err) = curl(&args);
        assert!(ok, "{path}: {err}");
        String::from_utf8_lossy(&out).into_owned()
    };
    let page = get("/login", &[]);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(r#"action="/ops/login""#), "{page}");
    let cookie = page
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: bh_login="))
        .expect("a sign-in token cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/ops"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the form's token")
        .to_string();
    let wrong = get(
        "/login",
        &[
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "password=nope",
        ],
    );
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let counted = c
        .store
        .recent_auth_failures("ip:127.0.0.1", 900)
        .await
        .unwrap();
    assert_eq!(counted, 1, "the failure counts with mail logins' failures");
    let page = get("/login", &[]);
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let signed = get(
        "/login",
        &[
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            &format!("password={ADMIN_TOKEN}"),
        ],
    );
    assert!(signed.starts_with("HTTP/1.1 303"), "{signed}");
    assert!(signed.contains("location: /ops/"), "{signed}");
    let overview = get("", &[]);
    assert!(
        overview.contains("<h1>Overview</h1>") && overview.contains(r#"href="/ops/queue""#),
        "{overview}"
    );
    let forged = get("/domains/add", &["--data-urlencode", "name=forged.test"]);
    assert!(
        forged.starts_with("HTTP/1.1 403") && forged.contains("CSRF"),
        "{forged}"
    );
    let domains = admin_cli(BIN, &c, &["domain", "list"]);
    assert!(!domains.contains("forged.test"), "{domains}");
    let url = format!("{base}/");
    let cacert = cert.to_str().unwrap();
    let args = [
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        "-b",
        "bh_session=forged",
    ];
    let (_, out, _) = curl(&[&args[..], &["-o", "/dev/null", "-w", "%{http_code}", &url]].concat());
    assert_eq!(out, b"303", "a made-up session signs nobody in");
    eventually("the nodes' heartbeats", || async {
        let nodes = c.store.list_nodes().await.unwrap();
        (nodes.iter().any(|n| n.role == "backend") && nodes.iter().any(|n| n.role == "frontend"))
            .then_some(())
    })
    .await;
    c.stop().await;
}

/// Sessions end after their idle time and at their absolute end, however busy; signing out
/// ends them at once; an operator's changed password ends theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_expire() {
    use bridgehead_backend::store::{SessionLife, SessionRow};
    let c = Cluster::start().await;
    let row = SessionRow {
        operator: "op".into(),
        role: "admin".into(),
        csrf: "t".into(),
    };
    let idle = SessionLife {
        idle_secs: 1,
        absolute_secs: 3600,
    };
    c.store.create_session(b"idle", &row, idle).await.unwrap();
    assert_eq!(
        c.store.session(b"idle", idle).await.unwrap(),
        Some(row.clone())
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        c.store.session(b"idle", idle).await.unwrap(),
        None,
        "idle too long"
    );
    let short = SessionLife {
        idle_secs: 3600,
        absolute_secs: 2,
    };
    c.store.create_session(b"busy", &row, short).await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert!(
            c.store.session(b"busy", short).await.unwrap().is_some(),
            "in use"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        c.store.session(b"busy", short).await.unwrap(),
        None,
        "past its end"
    );
    c.store.create_session(b"out", &row, idle).await.unwrap();
    c.store.end_session(b"out").await.unwrap();
    assert_eq!(
        c.store.session(b"out", idle).await.unwrap(),
        None,
        "signed out"
    );
    admin(
        &c,
        &["operator", "add", "op", "--role", "readonly"],
        "op password\n",
    );
    let long = SessionLife {
        idle_secs: 3600,
        absolute_secs: 3600,
    };
    c.store.create_session(b"op", &row, long).await.unwrap();
    admin(&c, &["operator", "passwd", "op"], "new op password\n");
    assert_eq!(
        c.store.session(b"op", long).await.unwrap(),
        None,
        "password changed"
    );
    let bad = ["operator", "add", "Bad Name!", "--role", "admin"];
    let (ok, said) = admin_result(&c, &bad, "a password\n");
    assert!(!ok && said.contains("operator name"), "{said}");
    let bad = [
        "operator",
        "add",
        "ok-name",
        "--role",
        "domain:nowhere.test",
    ];
    let (ok, said) = admin_result(&c, &bad, "a password\n");
    assert!(!ok && said.contains("nowhere.test"), "{said}");
    let bad = ["operator", "add", "ok-name", "--role", "root"];
    let (ok, said) = admin_result(&c, &bad, "a password\n");
    assert!(!ok && said.contains("admin, readonly or domain:"), "{said}");
    c.stop().await;
}

/// Tracking names who acted on a queued message; a caller over gRPC cannot pass itself off
/// as a console operator (the metadata the console uses in process is dropped at the door).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_actions_are_tracked_with_who_did_them() {
    use bridgehead_proto::v1 as pb;
    let c = Cluster::start().await;
    c.add_user("alice@example.com", "alice password").await;
    let dead = format!("127.0.0.1:{}", closed_port());
    admin(
        &c,
        &["route", "set", "outside.test", &dead, "--tls", "none"],
        "",
    );
    let mut envelope = bridgehead_backend::submit::Envelope {
        mail_from: "alice@example.com".into(),
        auth_user: "alice@example.com".into(),
        submit_token: "t1".into(),
        ..Default::default()
    };
    envelope
        .recipients
        .push(bridgehead_backend::envelope::Recipient::new(
            "bob@outside.test",
            0,
            String::new(),
        ));
    let srs = bridgehead_backend::mailauth::srs::Srs::new(&[7; 32]);
    let mut sub = bridgehead_backend::submit::Submission::begin(&c.store, envelope, 1 << 20, &srs)
        .await
        .unwrap();
    sub.write(b"Subject: q\r\n\r\nq\r\n").await.unwrap();
    sub.finish().await.unwrap();
    let id = c.store.queue_list().await.unwrap()[0].queue_id.clone();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", c.backend_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::admin_client::AdminClient::new(channel);
    let mut hold = tonic::Request::new(pb::QueueRequest {
        queue_id: id.clone(),
    });
    let auth = format!("Bearer {ADMIN_TOKEN}");
    hold.metadata_mut()
        .insert("authorization", auth.parse().unwrap());
    hold.metadata_mut()
        .insert("x-bridgehead-operator", "mallory".parse().unwrap());
    client.hold_queued(hold).await.unwrap();
    let track = eventually("the hold in tracking", || async {
        let out = admin_cli(BIN, &c, &["track", &id]);
        out.contains("held by").then_some(out)
    })
    .await;
    assert!(
        track.contains("held by the admin token (CLI or API)") && !track.contains("mallory"),
        "{track}"
    );
    c.stop().await;
}

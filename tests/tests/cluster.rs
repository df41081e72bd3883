//! The cluster as operators run it, on loopback: real `bridgehead` processes, HAProxy with
//! PROXY v2 in front of one front-end, an in-test OTLP receiver, Prometheus scrapes.
//!
//! - One SMTP transaction is one trace across front-end and back-end; so is one POP3 RETR.
//! - Two front-ends over two back-ends: SMTP and POP3 load through both paths while a
//!   back-end is SIGKILLed; no acknowledged message is lost or doubled, clients see only
//!   temporary errors; then a front-end drained with SIGTERM tells its clients `421 4.3.2`
//!   and exits within its deadline.
use bridgehead_backend::Store;
use bridgehead_tests::checks::{assert_exactly_once, assert_quits_kept};
use bridgehead_tests::otlp::{OtlpReceiver, SpanRecord};
use bridgehead_tests::procs::{free_port, haproxy, wait_port, Node, Proc};
use bridgehead_tests::{
    add_user, blocking, curl, deliver, eventually, fresh_database, message_ids, RawClient,
};
use prometheus_client::registry::Registry;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");
const ALICE: &str = "alice@cluster.test";

fn traced(node: Node<'_>, otlp: &OtlpReceiver) -> Proc {
    node.env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .spawn()
}

async fn smtp_transaction(port: u16, rcpt: &str) {
    let mut s = RawClient::connect(([127, 0, 0, 1], port).into()).await;
    assert!(s.line().await.starts_with("220 "));
    s.send(b"EHLO client.example\r\n").await;
    while s.line().await.starts_with("250-") {}
    let script = format!(
        "MAIL FROM:<bob@outside.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n\
         Subject: traced\r\n\r\nhello\r\n.\r\nQUIT\r\n"
    );
    s.send(script.as_bytes()).await;
    for want in ["250 ", "250 ", "354 ", "250 ", "221 "] {
        let line = s.line().await;
        assert!(line.starts_with(want), "wanted {want}, got {line}");
    }
}

async fn pop3_retr(port: u16) -> String {
    let mut p = RawClient::connect(([127, 0, 0, 1], port).into()).await;
    assert!(p.line().await.starts_with("+OK"));
    p.send(format!("USER {ALICE}\r\nPASS pw\r\n").as_bytes())
        .await;
    assert!(p.line().await.starts_with("+OK"));
    assert!(p.line().await.starts_with("+OK"), "logged in");
    p.send(b"RETR 1\r\n").await;
    let message = p.multiline().await;
    p.send(b"QUIT\r\n").await;
    assert!(p.line().await.starts_with("+OK"));
    message
}

/// The spans of the trace that holds a front-end span named `root`, once the back-end span
/// `server` has arrived in it too.
async fn trace_of(otlp: &OtlpReceiver, root: &str, server: &str) -> Vec<SpanRecord> {
    eventually(&format!("a trace with {root} and {server}"), || async {
        let spans = otlp.spans();
        let root = spans
            .iter()
            .find(|s| s.service == "bridgehead-frontend" && s.name == root)?;
        let trace: Vec<SpanRecord> = spans
            .iter()
            .filter(|s| s.trace_id == root.trace_id)
            .cloned()
            .collect();
        trace.iter().any(|s| s.name == server).then_some(trace)
    })
    .await
}

/// The back-end span `server` hangs under a front-end span of the same trace.
fn assert_joined(trace: &[SpanRecord], server: &str) {
    let s = trace.iter().find(|s| s.name == server).unwrap();
    assert_eq!(s.service, "bridgehead-backend", "{s:?}");
    let parent = trace
        .iter()
        .find(|p| p.span_id == s.parent_span_id)
        .unwrap_or_else(|| panic!("{server}'s parent is in the trace: {trace:#?}"));
    assert_eq!(parent.service, "bridgehead-frontend", "{parent:?}");
}

fn scrape(port: u16) -> String {
    let (ok, body, err) = curl(&["-sS", &format!("http://127.0.0.1:{port}/metrics")]);
    assert!(ok, "scrape :{port}: {err}");
    String::from_utf8(body).unwrap()
}

/// The value of one sample line (`name{labels} value`), 0 when absent.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_smtp_transaction_is_one_trace_across_the_tiers() {
    let otlp = OtlpReceiver::start().await;
    let url = fresh_database().await;
    let store = Store::open(&url, 2).await.unwrap();
    add_user(&store, ALICE, "pw").await;
    let (b, bm, smtp, pop3, fm) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let _back = traced(
        Node::backend(BIN, &url, b).arg(format!("--metrics-listen=127.0.0.1:{bm}")),
        &otlp,
    );
    blocking(move || wait_port(b)).await;
    // The back-end by name, as a Kubernetes Service would be given: resolved and called by
    // address.
    let by_name = Node {
        bin: BIN,
        args: vec!["frontend".into(), format!("--backend=localhost:{b}")],
        env: Vec::new(),
    };
    let _front = traced(
        by_name
            .arg(format!("--smtp-listen=127.0.0.1:{smtp}"))
            .arg(format!("--pop3-listen=127.0.0.1:{pop3}"))
            .arg(format!("--metrics-listen=127.0.0.1:{fm}"))
            .arg("--allow-plaintext-auth"),
        &otlp,
    );
    blocking(move || wait_port(smtp)).await;

    smtp_transaction(smtp, ALICE).await;
    let trace = trace_of(
        &otlp,
        "smtp transaction",
        "bridgehead.v1.Delivery/SubmitWhole",
    )
    .await;
    assert_joined(&trace, "bridgehead.v1.Delivery/SubmitWhole");
    let checked = eventually("the RCPT check in the same trace", || async {
        let spans = otlp.spans();
        let root = &trace[0].trace_id;
        spans
            .iter()
            .find(|s| &s.trace_id == root && s.name == "bridgehead.v1.Delivery/CheckRecipient")
            .cloned()
    })
    .await;
    assert_joined(
        &[trace.clone(), vec![checked]].concat(),
        "bridgehead.v1.Delivery/CheckRecipient",
    );

    let message = pop3_retr(pop3).await;
    assert!(message.contains("Subject: traced"), "{message}");
    let retr = trace_of(&otlp, "pop3 RETR", "bridgehead.v1.Maildrop/Fetch").await;
    assert_joined(&retr, "bridgehead.v1.Maildrop/Fetch");
    assert_ne!(retr[0].trace_id, trace[0].trace_id, "a trace per command");

    let front = blocking(move || scrape(fm)).await;
    assert_eq!(
        sample(&front, "bridgehead_frontend_messages_accepted_total"),
        1.0
    );
    assert_eq!(
        sample(&front, "bridgehead_frontend_messages_retrieved_total"),
        1.0
    );
    assert!(sample(&front, "bridgehead_frontend_backend_call_seconds_count") >= 5.0);
    let back = blocking(move || scrape(bm)).await;
    assert_eq!(
        sample(&back, "bridgehead_backend_messages_stored_total"),
        1.0
    );
    store.close().await;
}

/// A back-end entry that is a name stands for every address it resolves to, and is looked
/// up again; addresses stay as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_end_names_are_resolved_and_refreshed() {
    use bridgehead_frontend::backend_client::Backends;
    use bridgehead_frontend::metrics::Metrics;
    let metrics = Arc::new(Metrics::new(&mut Registry::default()));
    let entries = ["localhost:7999".to_string(), "127.0.0.2:7000".into()];
    let backends =
        Arc::new(Backends::new(&entries, Duration::from_secs(1), metrics, None).unwrap());
    assert_eq!(backends.targets(), ["localhost:7999", "127.0.0.2:7000"]);
    let stop = CancellationToken::new();
    backends.discover(Duration::from_millis(100), stop.clone());
    let resolved = eventually("localhost resolved", || async {
        let mut t = backends.targets();
        t.sort();
        (!t.contains(&"localhost:7999".to_string())).then_some(t)
    })
    .await;
    assert!(
        resolved.contains(&"127.0.0.2:7000".to_string()),
        "{resolved:?}"
    );
    assert!(
        resolved
            .iter()
            .any(|t| t == "127.0.0.1:7999" || t == "[::1]:7999"),
        "{resolved:?}"
    );
    stop.cancel();
}

/// Runs one of the Python load scripts in tests/support (`args` name `out`, where it writes
/// its JSON result); returns the result.
fn python_load(script: &str, args: Vec<String>, out: std::path::PathBuf) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let status = Command::new("python3")
        .arg(path)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// Every error an SMTP load saw was temporary: a 4xx reply or a dropped connection.
fn only_temporary(errors: &serde_json::Value) {
    for (kind, n) in errors.as_object().unwrap() {
        let code = kind.trim_start_matches("rcpt ");
        let temporary = code.starts_with('4') || !code.starts_with(|c: char| c.is_ascii_digit());
        assert!(
            temporary,
            "{n} × {kind}: a permanent error under a node failure"
        );
    }
}

const RCPTS: [&str; 2] = ["r1@cluster.test", "r2@cluster.test"];

/// SMTP load on `port` for `seconds` to `rcpts`, in a thread. The same address twice makes
/// one-recipient messages (stored by the one-statement path).
fn smtp_load(
    port: u16,
    seconds: f64,
    rcpts: [&str; 2],
    out: std::path::PathBuf,
) -> std::thread::JoinHandle<serde_json::Value> {
    let mut args: Vec<String> = vec![
        "127.0.0.1".into(),
        port.to_string(),
        seconds.to_string(),
        "2".into(),
    ];
    args.extend(rcpts.iter().map(|r| r.to_string()));
    args.push(out.display().to_string());
    args.push(format!("p{port}-")); // Message-IDs unique across loads
    std::thread::spawn(move || python_load("smtp_load.py", args, out))
}

/// POP3 sessions (mark all, QUIT or drop) for `accounts` on `port`, in a thread.
fn pop3_load(
    port: u16,
    accounts: &[String],
    out: std::path::PathBuf,
) -> std::thread::JoinHandle<serde_json::Value> {
    let mut args: Vec<String> = vec!["127.0.0.1".into(), port.to_string(), "pw".into()];
    args.push(out.display().to_string());
    args.extend(accounts.iter().cloned());
    std::thread::spawn(move || python_load("pop3_load.py", args, out))
}

/// How many messages POP3 STAT reports for `user` on `port`.
fn stat(port: u16, user: &str) -> usize {
    let script = "import poplib, sys\n\
        c = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)\n\
        c.user(sys.argv[2]); c.pass_('pw'); print(c.stat()[0]); c.quit()\n";
    bridgehead_tests::python(script, &[&port.to_string(), user])
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_front_ends_over_two_back_ends_survive_a_back_end_kill_and_a_drain() {
    if bridgehead_tests::procs::haproxy_binary().is_none() {
        panic!("haproxy is not installed (apt-get install haproxy)");
    }
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database().await;
    let store = Store::open(&url, 4).await.unwrap();
    for r in RCPTS {
        add_user(&store, r, "pw").await;
    }
    let readers: Vec<String> = (0..8).map(|n| format!("u{n}@cluster.test")).collect();
    for r in &readers {
        add_user(&store, r, "pw").await;
        for n in 0..5 {
            deliver(
                &store,
                r,
                format!("Subject: {n}\r\n\r\nbody\r\n").as_bytes(),
            )
            .await;
        }
    }
    let [pa, pb, s1, p1, m1, s2, p2, hs, hp] = [(); 9].map(|_| free_port());
    let mut a = Node::backend(BIN, &url, pa).spawn();
    let _b = Node::backend(BIN, &url, pb).spawn();
    blocking(move || [pa, pb].map(wait_port)).await;
    let common = |n: Node<'static>| n.arg("--allow-plaintext-auth").arg("--lease-secs=10");
    let mut f1 = common(Node::frontend(BIN, &[pa, pb]))
        .arg(format!("--smtp-listen=127.0.0.1:{s1}"))
        .arg(format!("--pop3-listen=127.0.0.1:{p1}"))
        .arg(format!("--metrics-listen=127.0.0.1:{m1}"))
        .arg("--drain-secs=2")
        .spawn();
    let _f2 = common(Node::frontend(BIN, &[pa, pb]))
        .arg(format!("--smtp-listen=127.0.0.1:{s2}"))
        .arg(format!("--pop3-listen=127.0.0.1:{p2}"))
        .arg("--proxy-protocol-from=127.0.0.1/32")
        .spawn();
    blocking(move || [s1, p1, s2, p2].map(wait_port)).await;
    let _haproxy = haproxy(dir.path(), &[(hs, s2), (hp, p2)]);

    // Load through both paths; a back-end dies in the middle of it.
    let single = [RCPTS[0], RCPTS[0]];
    let direct = smtp_load(s1, 4.0, single, dir.path().join("direct.json"));
    let balanced = smtp_load(hs, 4.0, RCPTS, dir.path().join("balanced.json"));
    let pop3 = pop3_load(hp, &readers, dir.path().join("pop3.json"));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.kill9();
    let (direct, balanced, pop3) = blocking(move || {
        (
            direct.join().unwrap(),
            balanced.join().unwrap(),
            pop3.join().unwrap(),
        )
    })
    .await;
    let mut accepted = direct["accepted"].as_array().unwrap().clone();
    accepted.extend(balanced["accepted"].as_array().unwrap().iter().cloned());
    assert!(
        direct["accepted"].as_array().unwrap().len() > 5
            && balanced["accepted"].as_array().unwrap().len() > 5,
        "both paths carried mail: {direct} {balanced}"
    );
    eprintln!(
        "accepted {} direct, {} balanced; errors {} {}",
        direct["accepted"].as_array().unwrap().len(),
        balanced["accepted"].as_array().unwrap().len(),
        direct["errors"],
        balanced["errors"]
    );
    only_temporary(&direct["errors"]);
    only_temporary(&balanced["errors"]);
    assert_exactly_once(&store, &RCPTS, &accepted).await;
    assert_quits_kept(&store, &readers, &pop3, 5).await;

    // Read through every path: the surviving back-end serves both front-ends.
    let in_store = message_ids(&store, RCPTS[0]).await.len();
    assert_eq!(blocking(move || stat(p1, RCPTS[0])).await, in_store);
    assert_eq!(blocking(move || stat(hp, RCPTS[0])).await, in_store);
    let metrics = blocking(move || scrape(m1)).await;
    assert_eq!(
        sample(&metrics, "bridgehead_frontend_messages_accepted_total") as usize,
        direct["accepted"].as_array().unwrap().len(),
        "the direct front-end counted what it accepted"
    );

    // Drain: an idle client is told, readiness goes, the process exits within its deadline.
    let mut idle = RawClient::connect(([127, 0, 0, 1], s1).into()).await;
    assert!(idle.line().await.starts_with("220 "));
    f1.terminate();
    assert_eq!(
        idle.line().await,
        "421 4.3.2 Service shutting down, try again later\r\n"
    );
    let ready = blocking(move || {
        curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{m1}/readyz"),
        ])
    })
    .await;
    assert_ne!(
        String::from_utf8_lossy(&ready.1),
        "200",
        "not ready while draining"
    );
    let status = blocking(move || f1.wait_exit(Duration::from_secs(6))).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "drained and exited: {status:?}"
    );
    store.close().await;
}

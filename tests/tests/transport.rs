//! Outbound transport against real SMTP peers on loopback (Python aiosmtpd): delivery through
//! routes, failures injected (550, 451, connection refused, TLS required but not offered),
//! time compressed by configuration, and every report parsed with Python's `email` package.
use bridgehead_backend::envelope::Recipient;
use bridgehead_backend::mailauth::srs::Srs;
use bridgehead_backend::store::Route;
use bridgehead_backend::submit::{Envelope, Submission};
use bridgehead_tests::outbound::{self, parse_dsn, queue_empty};
use bridgehead_tests::{blocking, eventually, read_mailbox, Cluster, Options, Sink, ADMIN_TOKEN};
use std::process::Command;
use std::time::Duration;

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

async fn cluster_with(mut opts: Options) -> Cluster {
    opts.transport.workers = 2;
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    c
}

async fn route(c: &Cluster, port: u16, tls: &str) {
    outbound::route(c, "outside.example", port, tls).await
}

async fn send(c: &Cluster, rcpts: &[&str]) {
    send_notify(c, rcpts, "FAILURE,DELAY").await
}

async fn send_notify(c: &Cluster, rcpts: &[&str], notify: &'static str) {
    outbound::submit(c, ALICE, PASS, rcpts, notify).await
}

/// The messages in a mailbox, straight from the store (prefix + content).
async fn mailbox(c: &Cluster, address: &str) -> Vec<Vec<u8>> {
    read_mailbox(&c.store, address, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_through_a_route_and_reports_a_refusal() {
    let c = cluster_with(Options::default()).await;
    let sink = blocking(|| Sink::start(&["--reject", "nobody"], true)).await;
    route(&c, sink.port, "opportunistic").await;

    send(&c, &["friend@outside.example"]).await;
    let got = sink.wait_for(1).await;
    let m: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(m["from"], ALICE);
    assert_eq!(m["to"][0], "friend@outside.example");
    assert_eq!(m["tls"], true, "STARTTLS was used when offered");
    let data = m["data"].as_str().unwrap();
    assert!(data.starts_with("Received: from "), "{data}");
    assert!(data.ends_with("Subject: outbound test\r\nMessage-ID: <out1@client.example>\r\n\r\nHello out there.\r\n"), "{data}");
    queue_empty(&c).await;

    // One refused and one accepted recipient: one delivery, one report naming only the refused.
    send(&c, &["nobody@outside.example", "friend2@outside.example"]).await;
    let got = sink.wait_for(2).await;
    let m: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(m["to"], serde_json::json!(["friend2@outside.example"]));
    let reports = eventually("the report", || async {
        let mb = mailbox(&c, ALICE).await;
        (!mb.is_empty()).then_some(mb)
    })
    .await;
    assert_eq!(reports.len(), 1);
    assert!(reports[0].starts_with(b"Return-Path: <>\r\n"));
    let dsn = parse_dsn(reports[0].clone()).await;
    assert_eq!(dsn["report_type"], "delivery-status");
    assert_eq!(
        dsn["types"],
        serde_json::json!(["text/plain", "message/delivery-status", "message/rfc822"])
    );
    assert_eq!(dsn["auto"], "auto-replied");
    assert_eq!(dsn["in_reply_to"], "<out1@client.example>");
    assert_eq!(dsn["reporting_mta"], "dns; mx.test.example");
    assert_eq!(dsn["recipients"].as_array().unwrap().len(), 1);
    assert_eq!(
        dsn["recipients"][0]["final"],
        "rfc822; nobody@outside.example"
    );
    assert_eq!(dsn["recipients"][0]["action"], "failed");
    assert_eq!(dsn["recipients"][0]["status"], "5.1.1");
    assert!(dsn["recipients"][0]["diagnostic"]
        .as_str()
        .unwrap()
        .contains("550 5.1.1"));
    assert_eq!(dsn["defects"], serde_json::json!([]));
    queue_empty(&c).await;
    c.stop().await;
}

fn admin(c: &Cluster, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bridgehead"))
        .arg("admin")
        .args([
            "--url",
            &format!("http://{}", c.backend_addr),
            "--token",
            ADMIN_TOKEN,
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_defers_then_retry_delivers() {
    let c = cluster_with(Options::default()).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    route(&c, dead, "opportunistic").await;
    send(&c, &["friend@outside.example"]).await;
    let entry = eventually("a failed attempt", || async {
        let q = c.store.queue_list().await.unwrap();
        q.into_iter()
            .find(|e| e.attempts >= 1 && e.last_error.is_some())
    })
    .await;
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("connect to 127.0.0.1"),
        "{entry:?}"
    );
    let listing = blocking({
        let url = format!("http://{}", c.backend_addr);
        move || {
            let out = Command::new(env!("CARGO_BIN_EXE_bridgehead"))
                .args([
                    "admin",
                    "--url",
                    &url,
                    "--token",
                    ADMIN_TOKEN,
                    "queue",
                    "list",
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    })
    .await;
    assert!(
        listing.contains(&entry.queue_id) && listing.contains("next attempt"),
        "{listing}"
    );
    assert!(
        listing.contains("last error: connect to 127.0.0.1"),
        "{listing}"
    );
    assert!(
        listing.contains("<friend@outside.example> pending"),
        "{listing}"
    );

    // Hold it, point the route at a live peer, release and retry: delivered once.
    admin(&c, &["queue", "hold", &entry.queue_id]);
    let sink = blocking(|| Sink::start(&[], false)).await;
    let hop = format!("127.0.0.1:{}", sink.port);
    assert!(admin(
        &c,
        &[
            "route",
            "set",
            "outside.example",
            &hop,
            "--tls",
            "opportunistic"
        ]
    )
    .contains("goes to"));
    let routes = admin(&c, &["route", "list"]);
    assert_eq!(
        routes,
        format!("outside.example\t{hop}\ttls opportunistic\n")
    );
    admin(&c, &["queue", "release", &entry.queue_id]);
    assert!(admin(&c, &["queue", "retry", "--all"]).contains("will be tried now"));
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    queue_empty(&c).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "sent exactly once");
    assert!(
        mailbox(&c, ALICE).await.is_empty(),
        "no report for a delayed-then-delivered message"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_but_not_offered_and_451_defer() {
    let c = cluster_with(Options::default()).await;
    let sink = blocking(|| Sink::start(&["--defer", "later"], false)).await;
    route(&c, sink.port, "required").await;
    send(&c, &["friend@outside.example"]).await;
    let entry = eventually("a deferral", || async {
        c.store
            .queue_list()
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.last_error.is_some())
    })
    .await;
    assert!(entry.last_error.unwrap().contains("TLS is required"));
    assert!(sink.received().is_empty(), "nothing is sent in the clear");
    c.store.queue_delete(&entry.queue_id).await.unwrap();

    route(&c, sink.port, "none").await;
    send(&c, &["later@outside.example"]).await;
    let entry = eventually("a 451", || async {
        c.store
            .queue_list()
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.last_error.is_some())
    })
    .await;
    assert!(entry.last_error.unwrap().contains("451 4.3.0"));
    assert_eq!(
        entry.recipients[0].status,
        bridgehead_backend::store::DeliveryStatus::Pending
    );
    // The administrator gives up on it: the sender gets a failure report.
    admin(&c, &["queue", "delete", &entry.queue_id, "--bounce"]);
    let reports = eventually("the report", || async {
        let mb = mailbox(&c, ALICE).await;
        (!mb.is_empty()).then_some(mb)
    })
    .await;
    let dsn = parse_dsn(reports[0].clone()).await;
    assert_eq!(
        dsn["recipients"][0]["final"],
        "rfc822; later@outside.example"
    );
    assert_eq!(dsn["recipients"][0]["action"], "failed");
    queue_empty(&c).await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_notice_then_expiry_report() {
    let mut opts = Options::default();
    opts.transport.delay_warning = Duration::from_millis(500);
    opts.transport.lifetime = Duration::from_secs(3);
    opts.transport.first_retry = Duration::from_millis(200);
    opts.transport.max_retry = Duration::from_millis(400);
    let c = cluster_with(opts).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    route(&c, dead, "opportunistic").await;
    send(&c, &["friend@outside.example"]).await;
    let reports = eventually("a delay notice and a failure report", || async {
        let mb = mailbox(&c, ALICE).await;
        (mb.len() >= 2).then_some(mb)
    })
    .await;
    let delayed = parse_dsn(reports[0].clone()).await;
    assert_eq!(delayed["recipients"][0]["action"], "delayed");
    let failed = parse_dsn(reports[1].clone()).await;
    assert_eq!(failed["recipients"][0]["action"], "failed");
    assert_eq!(failed["recipients"][0]["status"], "4.4.7");
    queue_empty(&c).await;
    assert_eq!(
        mailbox(&c, ALICE).await.len(),
        2,
        "one delay notice, one failure report"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_is_never_bounced_out() {
    let c = cluster_with(Options::default()).await;
    c.add_user("postmaster@example.com", "pm").await;
    let sink = blocking(|| Sink::start(&["--reject", "nobody"], false)).await;
    route(&c, sink.port, "none").await;
    // A message with the null sender (as a report to an outside sender is), to a refusing peer.
    let env = Envelope {
        mail_from: String::new(),
        recipients: vec![Recipient::new("nobody@outside.example", 0, "")],
        auth_user: "system".into(),
        received_by: "mx.test.example".into(),
        ..Envelope::default()
    };
    let mut s = Submission::begin(&c.store, env, 1 << 20, &Srs::new(b"test"))
        .await
        .unwrap();
    s.write(b"Subject: a report\r\n\r\nreport body\r\n")
        .await
        .unwrap();
    s.finish().await.unwrap();
    let got = eventually("the postmaster's copy", || async {
        let mb = mailbox(&c, "postmaster@example.com").await;
        (!mb.is_empty()).then_some(mb)
    })
    .await;
    let dsn = parse_dsn(got[0].clone()).await;
    assert_eq!(dsn["recipients"][0]["action"], "failed");
    queue_empty(&c).await;
    assert!(sink.received().is_empty());
    c.stop().await;
}

/// The smart host ('*') with AUTH over STARTTLS, and a success report for NOTIFY=SUCCESS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_host_with_auth_and_success_report() {
    let c = cluster_with(Options::default()).await;
    let sink = blocking(|| Sink::start(&["--auth", "relay:s3cret"], true)).await;
    c.store
        .set_route(&Route {
            domain: "*".into(),
            host: "127.0.0.1".into(),
            port: sink.port,
            tls: "required".into(),
            auth_user: Some("relay".into()),
            auth_secret: Some("s3cret".into()),
        })
        .await
        .unwrap();
    send_notify(&c, &["someone@anywhere.example"], "SUCCESS").await;
    let got = sink.wait_for(1).await;
    let m: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["tls"], true);
    let reports = eventually("the success report", || async {
        let mb = mailbox(&c, ALICE).await;
        (!mb.is_empty()).then_some(mb)
    })
    .await;
    let dsn = parse_dsn(reports[0].clone()).await;
    assert_eq!(dsn["recipients"][0]["action"], "relayed");
    assert_eq!(dsn["recipients"][0]["status"], "2.0.0");
    queue_empty(&c).await;
    c.stop().await;
}

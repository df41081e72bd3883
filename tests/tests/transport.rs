//! Outbound transport against real SMTP peers on loopback (Python aiosmtpd): delivery through
//! routes, failures injected (550, 451, connection refused, TLS required but not offered),
//! time compressed by configuration, and every report parsed with Python's `email` package.
use bridgehead_backend::store::Route;
use bridgehead_backend::submit::{Envelope, Submission};
use bridgehead_tests::{
    blocking, eventually, python, read_mailbox, Cluster, Options, Sink, ADMIN_TOKEN,
};
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
    c.store
        .set_route(&Route {
            domain: "outside.example".into(),
            host: "127.0.0.1".into(),
            port,
            tls: tls.into(),
            auth_user: None,
            auth_secret: None,
        })
        .await
        .unwrap();
}

const SEND: &str = r#"
import smtplib, ssl, sys
host, port, user, password = sys.argv[1:5]
rcpts = sys.argv[5].split(",")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
s.login(user, password)
msg = "From: <%s>\r\nTo: <%s>\r\nSubject: outbound test\r\nMessage-ID: <out1@client.example>\r\n\r\nHello out there.\r\n" % (user, rcpts[0])
notify = sys.argv[6] if len(sys.argv) > 6 else "FAILURE,DELAY"
s.sendmail(user, rcpts, msg, rcpt_options=["NOTIFY=" + notify])
s.quit()
"#;

async fn send(c: &Cluster, rcpts: &[&str]) {
    send_notify(c, rcpts, "FAILURE,DELAY").await
}

async fn send_notify(c: &Cluster, rcpts: &[&str], notify: &'static str) {
    let (host, port) = (
        c.submissions.ip().to_string(),
        c.submissions.port().to_string(),
    );
    let rcpts = rcpts.join(",");
    blocking(move || python(SEND, &[&host, &port, ALICE, PASS, &rcpts, notify])).await;
}

/// Parses a report with Python's email package: content type, report type, and per recipient
/// (Final-Recipient, Action, Status), plus the type of the returned original.
const PARSE_DSN: &str = r#"
import email, json, sys
from email import policy
msg = email.message_from_string(sys.stdin.read() if False else open(sys.argv[1]).read(), policy=policy.compat32)
assert msg.get_content_type() == "multipart/report", msg.get_content_type()
parts = msg.get_payload()
status = [p for p in parts if p.get_content_type() == "message/delivery-status"][0]
blocks = status.get_payload()
recipients = [{"final": b["Final-Recipient"], "action": b["Action"], "status": b["Status"],
               "diagnostic": b.get("Diagnostic-Code", "")} for b in blocks[1:]]
print(json.dumps({
    "report_type": msg.get_param("report-type"),
    "from": msg["From"], "auto": msg["Auto-Submitted"], "in_reply_to": msg["In-Reply-To"],
    "reporting_mta": blocks[0]["Reporting-MTA"],
    "recipients": recipients,
    "types": [p.get_content_type() for p in parts],
    "defects": [str(d) for d in msg.defects],
}))
"#;

async fn parse_dsn(stored: Vec<u8>) -> serde_json::Value {
    blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dsn.eml");
        std::fs::write(&path, &stored).unwrap();
        let out = python(PARSE_DSN, &[path.to_str().unwrap()]);
        serde_json::from_str(&out).unwrap()
    })
    .await
}

/// The messages in a mailbox, straight from the store (prefix + content).
async fn mailbox(c: &Cluster, address: &str) -> Vec<Vec<u8>> {
    read_mailbox(&c.store, address, None).await
}

async fn queue_empty(c: &Cluster) {
    eventually("the queue to empty", || async {
        c.store.queue_list().await.unwrap().is_empty().then_some(())
    })
    .await;
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
    assert_eq!(entry.recipients[0].status, "pending");
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
        recipients: vec![("nobody@outside.example".into(), 0, String::new())],
        auth_user: "system".into(),
        received_by: "mx.test.example".into(),
        ..Envelope::default()
    };
    let mut s = Submission::begin(&c.store, env, 1 << 20).await.unwrap();
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

/// A back-end process killed in the middle of a delivery loses nothing: another back-end takes
/// the message over once the dead one's claim has ended — never while it could still be
/// sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_end_killed_mid_delivery_loses_nothing() {
    let c = Cluster::start().await; // its own back-end sends nothing
    c.add_user(ALICE, PASS).await;
    let sink = blocking(|| Sink::start(&["--slow", "2"], false)).await;
    route(&c, sink.port, "none").await;
    let spawn_backend = || {
        Command::new(env!("CARGO_BIN_EXE_bridgehead"))
            .args([
                "backend",
                "--listen",
                "127.0.0.1:0",
                "--transport-workers",
                "1",
                "--claim-secs",
                "4",
            ])
            .args([
                "--queue-poll-ms",
                "50",
                "--retry-first-secs",
                "1",
                "--hostname",
                "mx.test.example",
            ])
            .args(["--database-url", &c.database_url])
            .env_remove("BRIDGEHEAD_ADMIN_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start a back-end process")
    };
    let mut first = spawn_backend();
    send(&c, &["friend@outside.example"]).await;
    eventually("the first back-end to be sending", || async {
        (sink.data_started() >= 1).then_some(())
    })
    .await;
    first.kill().unwrap(); // SIGKILL, mid-DATA
    first.wait().unwrap();
    let mut second = spawn_backend();
    queue_empty(&c).await;
    let got = sink.received();
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(!got.is_empty(), "the message reached the peer");
    let starts: Vec<f64> = got
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["started"]
                .as_f64()
                .unwrap()
        })
        .collect();
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 3.0,
            "sent again within the first claim: {starts:?}"
        );
    }
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

/// A stopping back-end gives back the queue claims it did not get to: another back-end
/// claims those entries at once, and the attempt that never happened is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_not_attempted_are_given_back() {
    let c = Cluster::start().await;
    c.add_user(ALICE, PASS).await;
    let env = Envelope {
        mail_from: ALICE.into(),
        recipients: vec![("someone@outside.example".into(), 0, String::new())],
        auth_user: ALICE.into(),
        received_by: "mx.test.example".into(),
        ..Envelope::default()
    };
    let mut s = Submission::begin(&c.store, env, 1 << 20).await.unwrap();
    s.write(b"Subject: out\r\n\r\nbody\r\n").await.unwrap();
    s.finish().await.unwrap();
    let first = c.store.claim_due("stopping", 300, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        c.store
            .claim_due("other", 300, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed"
    );
    let ids: Vec<i64> = first.iter().map(|m| m.id).collect();
    assert_eq!(
        c.store.release_claims("other", &ids).await.unwrap(),
        0,
        "not its claim"
    );
    assert_eq!(c.store.release_claims("stopping", &ids).await.unwrap(), 1);
    let again = c.store.claim_due("other", 300, 10).await.unwrap();
    assert_eq!(again.len(), 1, "free at once");
    assert_eq!(
        again[0].attempts, first[0].attempts,
        "the given-back claim counted no attempt"
    );
    c.stop().await;
}

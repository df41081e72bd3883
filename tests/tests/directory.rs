//! Directory and coexistence against a real peer: a second Bridgehead cluster plays the other
//! mail system (the seed's Windows POP3 service beside Exchange). Shared address space both
//! ways, a non-existent shared user ending in exactly one NDR and no loop, a relay domain,
//! nested and cyclic groups, a contact, group sender policies, and Delivered-To.
use bridgehead_backend::store::Route;
use bridgehead_tests::{
    blocking, eventually, python, read_mailbox, Cluster, Options, Sink, ADMIN_TOKEN,
};
use std::net::SocketAddr;
use std::process::Command;

async fn cluster() -> Cluster {
    let mut opts = Options::default();
    opts.transport.workers = 2;
    Cluster::start_with(opts).await
}

async fn route(c: &Cluster, domain: &str, to: SocketAddr) {
    c.store
        .set_route(&Route {
            domain: domain.into(),
            host: to.ip().to_string(),
            port: to.port(),
            tls: "none".into(),
            auth_user: None,
            auth_secret: None,
        })
        .await
        .unwrap();
}

fn admin(c: &Cluster, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bridgehead"))
        .args([
            "admin",
            "--url",
            &format!("http://{}", c.backend_addr),
            "--token",
            ADMIN_TOKEN,
        ])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}: {text}");
    text
}

/// Sends over the MX port from 127.0.0.5 (not the peer's address); returns each RCPT reply
/// code and the final reply.
const SEND: &str = r#"
import smtplib, sys, json
host, port, sender = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rcpts = sys.argv[4].split(",")
s = smtplib.SMTP(host, port, source_address=("127.0.0.5", 0), timeout=20)
s.ehlo("client.example")
s.mail(sender)
codes = [s.rcpt(r)[0] for r in rcpts]
final = None
if any(c == 250 for c in codes):
    final = s.data("From: <%s>\r\nSubject: coexistence\r\nMessage-ID: <co1@client.example>\r\n\r\nhello\r\n" % sender)[0]
s.quit()
print(json.dumps({"rcpt": codes, "data": final}))
"#;

async fn send(c: &Cluster, sender: &str, rcpts: &[&str]) -> serde_json::Value {
    let (host, port) = (c.smtp.ip().to_string(), c.smtp.port().to_string());
    let (sender, rcpts) = (sender.to_string(), rcpts.join(","));
    let out = blocking(move || python(SEND, &[&host, &port, &sender, &rcpts])).await;
    serde_json::from_str(&out).unwrap()
}

async fn count(c: &Cluster, user: &str) -> usize {
    c.uids(user).await.len()
}

async fn wait_count(c: &Cluster, user: &str, n: usize) {
    eventually(&format!("{n} message(s) for {user}"), || async {
        (count(c, user).await >= n).then_some(())
    })
    .await;
}

async fn queue_empty(c: &Cluster) {
    eventually("an empty queue", || async {
        c.store.queue_list().await.unwrap().is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_domain_both_ways_and_one_ndr_for_a_missing_user() {
    let (a, b) = (cluster().await, cluster().await);
    a.add_user("a1@shared.example", "a1").await;
    b.add_user("b1@shared.example", "b1").await;
    route(&a, "shared.example", b.smtp).await;
    route(&b, "shared.example", a.smtp).await;
    admin(&a, &["domain", "kind", "shared.example", "shared"]);
    admin(&b, &["domain", "kind", "shared.example", "shared"]);
    assert!(admin(&a, &["domain", "list"]).contains("shared.example\tshared\t1 users"));

    // A user of the other system, reached through this one — and the other way round.
    let r = send(&a, "someone@outside.example", &["b1@shared.example"]).await;
    assert_eq!(r["rcpt"][0], 250);
    wait_count(&b, "b1@shared.example", 1).await;
    let r = send(&b, "someone@outside.example", &["a1@shared.example"]).await;
    assert_eq!(r["data"], 250);
    wait_count(&a, "a1@shared.example", 1).await;

    // Nobody has this user: A forwards to B, B refuses it (it came from A, its next hop),
    // and the sender gets exactly one NDR. No loop.
    let r = send(&a, "a1@shared.example", &["nobody@shared.example"]).await;
    assert_eq!(r["data"], 250);
    wait_count(&a, "a1@shared.example", 2).await;
    queue_empty(&a).await;
    queue_empty(&b).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(count(&a, "a1@shared.example").await, 2, "exactly one NDR");
    assert_eq!(count(&b, "b1@shared.example").await, 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_domain_goes_to_the_other_system() {
    let (a, b) = (cluster().await, cluster().await);
    a.add_user("admin@corp.example", "x").await;
    a.store.add_domain("pop.example").await.unwrap();
    b.add_user("p1@pop.example", "p1").await;
    route(&a, "pop.example", b.smtp).await;
    admin(&a, &["domain", "kind", "pop.example", "relay"]);
    let r = send(&a, "someone@outside.example", &["p1@pop.example"]).await;
    assert_eq!(r["data"], 250);
    wait_count(&b, "p1@pop.example", 1).await;
    queue_empty(&a).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_contacts_policies_and_delivered_to() {
    let c = cluster().await;
    for u in ["a1@example.com", "a2@example.com", "a3@example.com"] {
        c.add_user(u, "pw").await;
    }
    let sink = blocking(|| Sink::start(&[], false)).await;
    route(
        &c,
        "outside.example",
        SocketAddr::from(([127, 0, 0, 1], sink.port)),
    )
    .await;
    // team: a1, sub, outside; sub: a2, a1 (again), team (a cycle), contact
    admin(&c, &["group", "add", "team@example.com"]);
    admin(&c, &["group", "add", "sub@example.com"]);
    admin(
        &c,
        &[
            "contact",
            "add",
            "partner@example.com",
            "partner@outside.example",
        ],
    );
    for (g, m) in [
        ("team@example.com", "a1@example.com"),
        ("team@example.com", "sub@example.com"),
        ("team@example.com", "friend@outside.example"),
        ("sub@example.com", "a2@example.com"),
        ("sub@example.com", "a1@example.com"),
        ("sub@example.com", "team@example.com"),
        ("sub@example.com", "partner@example.com"),
    ] {
        admin(&c, &["group", "member", "add", g, m]);
    }
    let listed = admin(&c, &["group", "list"]);
    assert!(listed.contains("sub@example.com\tsenders: anyone\tmembers: a1@example.com, a2@example.com, partner@example.com, team@example.com"), "{listed}");

    let r = send(&c, "someone@outside.example", &["team@example.com"]).await;
    assert_eq!(r["data"], 250);
    assert_eq!(
        count(&c, "a1@example.com").await,
        1,
        "one copy per final recipient"
    );
    assert_eq!(count(&c, "a2@example.com").await, 1);
    assert_eq!(count(&c, "a3@example.com").await, 0);
    let got = sink.wait_for(1).await;
    let m: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    let mut to: Vec<String> = serde_json::from_value(m["to"].clone()).unwrap();
    to.sort();
    assert_eq!(
        to,
        vec!["friend@outside.example", "partner@outside.example"]
    );

    // A contact on its own: the local directory address forwards outside.
    let r = send(&c, "someone@outside.example", &["partner@example.com"]).await;
    assert_eq!(r["data"], 250);
    assert_eq!(sink.wait_for(2).await.len(), 2);

    // Sender policies, enforced at RCPT.
    admin(&c, &["group", "policy", "team@example.com", "members"]);
    let r = send(&c, "someone@outside.example", &["team@example.com"]).await;
    assert_eq!(r["rcpt"][0], 550, "not a member");
    let r = send(&c, "a2@example.com", &["team@example.com"]).await;
    assert_eq!(r["rcpt"][0], 250, "a nested member may send");
    admin(&c, &["group", "policy", "sub@example.com", "authenticated"]);
    let r = send(&c, "a1@example.com", &["sub@example.com"]).await;
    assert_eq!(r["rcpt"][0], 550, "the MX port is not authenticated");

    // Each final delivery names its mailbox.
    let first = &read_mailbox(&c.store, "a2@example.com", Some(0)).await[0];
    assert!(String::from_utf8_lossy(first)
        .starts_with("Return-Path: <someone@outside.example>\r\nDelivered-To: a2@example.com\r\n"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_all_and_unique_names() {
    let c = cluster().await;
    c.add_user("catch@example.com", "pw").await;
    admin(
        &c,
        &[
            "domain",
            "kind",
            "example.com",
            "authoritative",
            "--catch-all",
            "catch@example.com",
        ],
    );
    let r = send(&c, "someone@outside.example", &["whoever@example.com"]).await;
    assert_eq!(r["data"], 250);
    assert_eq!(count(&c, "catch@example.com").await, 1);
    // A name is one thing only.
    let out = Command::new(env!("CARGO_BIN_EXE_bridgehead"))
        .args([
            "admin",
            "--url",
            &format!("http://{}", c.backend_addr),
            "--token",
            ADMIN_TOKEN,
        ])
        .args(["group", "add", "catch@example.com"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken already"));
    // A shared domain needs its next hop first.
    let out = Command::new(env!("CARGO_BIN_EXE_bridgehead"))
        .args([
            "admin",
            "--url",
            &format!("http://{}", c.backend_addr),
            "--token",
            ADMIN_TOKEN,
        ])
        .args(["domain", "kind", "example.com", "shared"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs its next hop first"));
    c.stop().await;
}

/// Submission as a logged-in user, from 127.0.0.1 — the address the other system's route
/// points at (clients and the on-site server behind one NAT); returns the RCPT and final codes.
const SUBMIT_FROM_NEXT_HOP: &str = r#"
import smtplib, ssl, sys, json
host, port, user, password, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP(host, port, source_address=("127.0.0.1", 0), timeout=20)
s.starttls(context=ctx)
s.login(user, password)
s.mail(user)
code = s.rcpt(rcpt)[0]
final = s.data("Subject: from the office\r\n\r\nhello\r\n")[0] if code == 250 else None
s.quit()
print(json.dumps({"rcpt": code, "data": final}))
"#;

/// Unauthenticated MX from 127.0.0.1: this is the other system by its address.
const MX_FROM_NEXT_HOP: &str = r#"
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), source_address=("127.0.0.1", 0), timeout=20)
s.ehlo("other.example")
s.mail("x@outside.example")
print(s.rcpt(sys.argv[3])[0])
s.quit()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_user_at_the_other_systems_address_reaches_its_users() {
    let (a, b) = (cluster().await, cluster().await);
    a.add_user("a1@shared.example", "a1 password").await;
    b.add_user("b1@shared.example", "b1").await;
    route(&a, "shared.example", b.smtp).await;
    route(&b, "shared.example", a.smtp).await;
    admin(&a, &["domain", "kind", "shared.example", "shared"]);
    admin(&b, &["domain", "kind", "shared.example", "shared"]);
    // Unauthenticated from the other system's address: mail for a name we do not have came
    // from the other system, and is refused rather than sent back (no loop).
    let (host, port) = (a.smtp.ip().to_string(), a.smtp.port().to_string());
    let code =
        blocking(move || python(MX_FROM_NEXT_HOP, &[&host, &port, "b1@shared.example"])).await;
    assert_eq!(code.trim(), "550");
    // Logged in from that same address: a user of ours, writing to a user of the other system.
    let port = a.submission.port().to_string();
    let out = blocking(move || {
        let args = [
            "127.0.0.1",
            &port,
            "a1@shared.example",
            "a1 password",
            "b1@shared.example",
        ];
        python(SUBMIT_FROM_NEXT_HOP, &args)
    })
    .await;
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["rcpt"], 250, "{r}");
    assert_eq!(r["data"], 250, "{r}");
    wait_count(&b, "b1@shared.example", 1).await;
    a.stop().await;
    b.stop().await;
}

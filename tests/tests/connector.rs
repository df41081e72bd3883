//! The POP3 connector against a real POP3 server on loopback: Bridgehead's own POP3S
//! front-end plays the ISP (a separate domain in the same cluster, reached over the network
//! like any outside server). User and global mailboxes, routing rules, Bcc, leave-on-server,
//! a connection cut mid-download, a back-end restart, and a wrong password.
use bridgehead_tests::{blocking, eventually, header, read_mailbox, Cluster, Options, ADMIN_TOKEN};
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ISP_USER: &str = "chris@isp.example";
const ISP_PASS: &str = "isp password";

async fn cluster() -> Cluster {
    let mut opts = Options::default();
    opts.connector.workers = 1;
    let c = Cluster::start_with(opts).await;
    // example.com comes first: it is the primary domain, whose postmaster is the default
    // undeliverable mailbox.
    for (u, p) in [
        ("alice@example.com", "a"),
        ("bob@example.com", "b"),
        ("postmaster@example.com", "pm"),
    ] {
        c.add_user(u, p).await;
    }
    c.add_user(ISP_USER, ISP_PASS).await;
    c
}

/// Runs `bridgehead admin` with `stdin`; returns (success, stdout + stderr).
async fn admin(c: &Cluster, args: &[&str], stdin: &str) -> (bool, String) {
    let url = format!("http://{}", c.backend_addr);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.to_string();
    blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bridgehead"))
            .args(["admin", "--url", &url, "--token", ADMIN_TOKEN])
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
}

async fn add_connector(
    c: &Cluster,
    name: &str,
    server: SocketAddr,
    extra: &[&str],
    password: &str,
) {
    let server = server.to_string();
    let mut args = vec![
        "connector",
        "add",
        name,
        "--server",
        &server,
        "--tls",
        "implicit",
        "--no-verify",
    ];
    args.extend(["--user", ISP_USER, "--interval", "3600"]);
    args.extend(extra);
    let (ok, out) = admin(c, &args, &format!("{password}\n")).await;
    assert!(ok, "{out}");
}

/// Asks for a poll and waits until it has happened; returns the connector afterwards.
async fn poll_now(c: &Cluster, name: &str) -> bridgehead_backend::store::Connector {
    let before = c
        .store
        .get_connector(name)
        .await
        .unwrap()
        .status
        .last_poll_at;
    let (ok, out) = admin(c, &["connector", "retrieve-now", name], "").await;
    assert!(ok, "{out}");
    eventually("a poll", || async {
        let now = c.store.get_connector(name).await.unwrap();
        (now.status.last_poll_at != before).then_some(now)
    })
    .await
}

fn msg(subject: &str, headers: &str) -> Vec<u8> {
    format!("{headers}Subject: {subject}\r\nMessage-ID: <{subject}@isp.example>\r\n\r\nbody of {subject}\r\n").into_bytes()
}

async fn subjects(c: &Cluster, user: &str) -> Vec<String> {
    let mut out: Vec<String> = read_mailbox(&c.store, user, Some(0))
        .await
        .iter()
        .map(|m| header(m, "Subject").unwrap_or_default())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_mailbox_brought_in_once_and_deleted_on_the_server() {
    let c = cluster().await;
    c.deliver(ISP_USER, &msg("one", "To: chris@isp.example\r\n"))
        .await;
    c.deliver(ISP_USER, &msg("two", "To: chris@isp.example\r\n"))
        .await;
    add_connector(
        &c,
        "chris",
        c.pop3s,
        &["--to", "alice@example.com"],
        ISP_PASS,
    )
    .await;
    let after = poll_now(&c, "chris").await;
    assert_eq!(after.status.last_error, None);
    assert_eq!(after.status.last_fetched, 2);
    assert_eq!(subjects(&c, "alice@example.com").await, vec!["one", "two"]);
    assert!(
        c.uids(ISP_USER).await.is_empty(),
        "deleted on the server after delivery"
    );
    // Nothing new: nothing happens.
    poll_now(&c, "chris").await;
    assert_eq!(subjects(&c, "alice@example.com").await.len(), 2);
    // A distribution group as the target: each local member gets a copy.
    let staff = bridgehead_backend::address::Address::parse("staff@example.com").unwrap();
    c.store.add_group(&staff, "anyone").await.unwrap();
    for m in ["alice@example.com", "bob@example.com"] {
        let m = bridgehead_backend::address::Address::parse(m).unwrap();
        c.store.add_group_member(&staff, &m).await.unwrap();
    }
    let (ok, out) = admin(
        &c,
        &["connector", "edit", "chris", "--to", "staff@example.com"],
        "",
    )
    .await;
    assert!(ok, "{out}");
    c.deliver(ISP_USER, &msg("three", "To: chris@isp.example\r\n"))
        .await;
    poll_now(&c, "chris").await;
    assert_eq!(
        subjects(&c, "alice@example.com").await,
        vec!["one", "three", "two"]
    );
    assert_eq!(subjects(&c, "bob@example.com").await, vec!["three"]);
    let (ok, show) = admin(&c, &["connector", "show", "chris"], "").await;
    assert!(
        ok && show.contains("fetched:         1 last poll, 3 in all"),
        "{show}"
    );
    assert!(!show.contains(ISP_PASS), "the password is never shown");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_mailbox_routes_by_to_cc_rules_and_sends_bcc_to_postmaster() {
    let c = cluster().await;
    c.deliver(
        ISP_USER,
        &msg(
            "both",
            "To: Alice <alice@example.com>\r\nCc: =?utf-8?q?B=C3=B6b?= <BOB@example.com>\r\n",
        ),
    )
    .await;
    c.deliver(
        ISP_USER,
        &msg(
            "list",
            "To: Trey Research <mailinglist@treyresearch.net>\r\n",
        ),
    )
    .await;
    c.deliver(ISP_USER, &msg("bcc", "To: someone@elsewhere.example\r\n"))
        .await;
    c.deliver(ISP_USER, &msg("unknown", "To: nobody@example.com\r\n"))
        .await;
    add_connector(
        &c,
        "company",
        c.pop3s,
        &["--global", "example.com", "--disabled"],
        ISP_PASS,
    )
    .await;
    let (ok, out) = admin(
        &c,
        &[
            "connector",
            "rule",
            "add",
            "company",
            "mailinglist@treyresearch.net",
            "bob@example.com",
        ],
        "",
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = admin(&c, &["connector", "edit", "company", "--enable"], "").await;
    assert!(ok, "{out}");
    let after = poll_now(&c, "company").await;
    assert_eq!(after.status.last_error, None);
    assert_eq!(subjects(&c, "alice@example.com").await, vec!["both"]);
    assert_eq!(subjects(&c, "bob@example.com").await, vec!["both", "list"]);
    assert_eq!(
        subjects(&c, "postmaster@example.com").await,
        vec!["bcc", "unknown"]
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_on_server_never_duplicates() {
    let c = cluster().await;
    c.deliver(ISP_USER, &msg("kept", "To: chris@isp.example\r\n"))
        .await;
    add_connector(
        &c,
        "keep",
        c.pop3s,
        &["--to", "alice@example.com", "--leave-on-server"],
        ISP_PASS,
    )
    .await;
    for _ in 0..3 {
        poll_now(&c, "keep").await;
    }
    assert_eq!(subjects(&c, "alice@example.com").await, vec!["kept"]);
    assert_eq!(c.uids(ISP_USER).await.len(), 1, "left on the server");
    c.deliver(ISP_USER, &msg("newer", "To: chris@isp.example\r\n"))
        .await;
    poll_now(&c, "keep").await;
    assert_eq!(
        subjects(&c, "alice@example.com").await,
        vec!["kept", "newer"]
    );
    // Delete after 0 days: both go from the server, nothing is delivered again.
    let (ok, out) = admin(
        &c,
        &["connector", "edit", "keep", "--delete-after-days", "0"],
        "",
    )
    .await;
    assert!(ok, "{out}");
    poll_now(&c, "keep").await;
    assert!(c.uids(ISP_USER).await.is_empty());
    assert_eq!(subjects(&c, "alice@example.com").await.len(), 2);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported() {
    let c = cluster().await;
    add_connector(
        &c,
        "bad",
        c.pop3s,
        &["--to", "alice@example.com"],
        "not the password",
    )
    .await;
    let after = poll_now(&c, "bad").await;
    let error = after.status.last_error.expect("an error");
    assert!(error.contains("authentication failed"), "{error}");
    let (_, list) = admin(&c, &["connector", "list"], "").await;
    assert!(list.contains("error: authentication failed"), "{list}");
    // The unreachable server is reported too.
    let dead: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    add_connector(&c, "gone", dead, &["--to", "alice@example.com"], ISP_PASS).await;
    let after = poll_now(&c, "gone").await;
    assert!(after
        .status
        .last_error
        .unwrap()
        .contains("server unreachable"));
    c.stop().await;
}

/// A TCP proxy whose first connection is cut after `limit` bytes from the server.
async fn cutting_proxy(upstream: SocketAddr, limit: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut client, _)) = listener.accept().await {
            let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
            let cut = std::mem::replace(&mut first, false);
            tokio::spawn(async move {
                if !cut {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = async {
                    let mut sent = 0;
                    let mut buf = vec![0u8; 4096];
                    while sent < limit {
                        let n = sr.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let n = n.min(limit - sent);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
                // Both halves drop here: the connection is cut.
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_and_backend_restart_lose_and_repeat_nothing() {
    let mut c = cluster().await;
    c.deliver(ISP_USER, &msg("small", "To: chris@isp.example\r\n"))
        .await;
    let mut big = msg("big", "To: chris@isp.example\r\n");
    big.extend(
        b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
            .repeat(4000),
    );
    c.deliver(ISP_USER, &big).await;
    let proxy = cutting_proxy(c.pop3s, 60_000).await;
    add_connector(&c, "flaky", proxy, &["--to", "alice@example.com"], ISP_PASS).await;
    let first = poll_now(&c, "flaky").await;
    assert!(
        first.status.last_error.is_some(),
        "the first poll was cut: {first:?}"
    );
    assert_eq!(
        subjects(&c, "alice@example.com").await,
        vec!["small"],
        "what arrived before the cut is kept"
    );
    assert_eq!(
        c.uids(ISP_USER).await.len(),
        2,
        "no QUIT, so the server deleted nothing"
    );

    // The ISP's side of the cut session gives its maildrop lock back; then restart our back-end.
    let (isp, _) = c
        .store
        .resolve_recipient(&bridgehead_backend::address::Address::parse(ISP_USER).unwrap())
        .await
        .unwrap()
        .unwrap();
    eventually("the ISP's lock to be free", || async {
        let free = c.store.acquire_lease(isp, "probe", 10).await.unwrap();
        if free {
            c.store.release_lease(isp, "probe").await.unwrap();
        }
        free.then_some(())
    })
    .await;
    c.restart_backend().await;
    // The ISP may still hold the cut session's lock for a moment ([IN-USE]): poll again.
    let mut second = poll_now(&c, "flaky").await;
    for _ in 0..20 {
        if second.status.last_error.is_none() {
            break;
        }
        assert!(
            second
                .status
                .last_error
                .as_deref()
                .unwrap()
                .contains("IN-USE"),
            "{second:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        second = poll_now(&c, "flaky").await;
    }
    assert_eq!(second.status.last_error, None);
    assert_eq!(
        subjects(&c, "alice@example.com").await,
        vec!["big", "small"],
        "each exactly once"
    );
    assert!(c.uids(ISP_USER).await.is_empty());
    c.stop().await;
}

/// The outside account's password is sealed in PostgreSQL (never stored in the clear), still
/// works for polling, and one stored in the clear before sealing existed is sealed when a
/// back-end starts with a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_sealed_at_rest() {
    let mut c = cluster().await;
    c.deliver(ISP_USER, &msg("one", "To: chris@isp.example\r\n"))
        .await;
    add_connector(
        &c,
        "chris",
        c.pop3s,
        &["--to", "alice@example.com"],
        ISP_PASS,
    )
    .await;
    let stored = c.store.get_connector("chris").await.unwrap();
    assert!(stored.secret.starts_with("bh1:"), "{}", stored.secret);
    assert!(!stored.secret.contains(ISP_PASS));
    assert_eq!(poll_now(&c, "chris").await.status.last_error, None);
    // As a back-end before sealing existed would have stored it: in the clear.
    let mut legacy = stored.clone();
    legacy.secret = ISP_PASS.to_string();
    c.store.update_connector(&legacy).await.unwrap();
    assert_eq!(
        c.store.get_connector("chris").await.unwrap().secret,
        ISP_PASS
    );
    c.restart_backend().await;
    let resealed = c.store.get_connector("chris").await.unwrap().secret;
    assert!(resealed.starts_with("bh1:") && !resealed.contains(ISP_PASS));
    c.deliver(ISP_USER, &msg("two", "To: chris@isp.example\r\n"))
        .await;
    assert_eq!(poll_now(&c, "chris").await.status.last_error, None);
    assert_eq!(subjects(&c, "alice@example.com").await, vec!["one", "two"]);
    c.stop().await;
}

//! Abuse limits that bind across connections: TLS handshakes with a deadline (and counted
//! against the per-address limit, and never holding a shutdown), guesses at one account
//! bounded by time whatever the number of connections and addresses, recipient harvesting
//! refused past a limit, and the refusals of bad UTF-8 and bad SASL.
use bridgehead_backend::store::PenaltyCurve;
use bridgehead_tests::{Cluster, HarvestPolicy, Options, RawClient};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The first bytes of a TLS ClientHello, and then nothing.
const HALF_HELLO: &[u8] = b"\x16\x03\x01\x00\xc8\x01";

fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// How long the server keeps a connection open after `s` stalls.
async fn time_to_close(s: &mut RawClient) -> Duration {
    let start = Instant::now();
    assert!(s.closed().await, "the server never closed the connection");
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_are_cut_counted_and_do_not_hold_a_shutdown() {
    let mut c = Cluster::start_with(Options {
        tls_handshake_timeout: Duration::from_secs(1),
        max_connections_per_ip: 2,
        ..Options::default()
    })
    .await;
    // STARTTLS, then half a ClientHello; STLS, then nothing; implicit TLS, then nothing.
    let mut smtp = RawClient::connect(c.smtp).await;
    smtp.line().await;
    smtp.send(b"EHLO x\r\n").await;
    smtp.multiline_smtp().await;
    smtp.send(b"STARTTLS\r\n").await;
    assert_eq!(smtp.line().await, "220 2.0.0 Ready to start TLS\r\n");
    smtp.send(HALF_HELLO).await;
    let mut pop3 = RawClient::connect(c.pop3).await;
    pop3.line().await;
    pop3.send(b"STLS\r\n").await;
    assert!(pop3.line().await.starts_with("+OK"));
    // Both places are taken by handshakes in progress: a third connection is refused.
    let mut third = RawClient::connect(c.smtp).await;
    assert_eq!(
        third.line().await,
        "421 4.7.0 Too many connections, try again later\r\n"
    );
    for (name, s) in [("SMTP STARTTLS", &mut smtp), ("POP3 STLS", &mut pop3)] {
        let took = time_to_close(s).await;
        assert!(took < Duration::from_secs(4), "{name}: open for {took:?}");
    }
    let mut implicit = RawClient::connect(c.pop3s).await;
    let took = time_to_close(&mut implicit).await;
    assert!(took < Duration::from_secs(4), "POP3S: open for {took:?}");

    // A stalled handshake does not hold a shutdown for the drain deadline (1 s here).
    let mut stalled = RawClient::connect(c.smtp).await;
    stalled.line().await;
    stalled.send(b"EHLO x\r\nSTARTTLS\r\n").await;
    stalled.multiline_smtp().await;
    assert_eq!(stalled.line().await, "220 2.0.0 Ready to start TLS\r\n");
    stalled.send(HALF_HELLO).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    c.frontend.take().unwrap().stop().await;
    let took = start.elapsed();
    assert!(took < Duration::from_millis(600), "shutdown took {took:?}");
    c.stop().await;
}

/// One POP3 login from `source`; true when it got in.
async fn pop3_login(c: &Cluster, source: Ipv4Addr, user: &str, password: &str) -> bool {
    bridgehead_tests::pop3_attempt(c.pop3, Some(source), user, password)
        .await
        .starts_with("+OK")
}

/// The back-end's count of failed logins by reason.
fn refusals(c: &Cluster, reason: &str) -> u64 {
    c.backend_metric(&format!(
        "bridgehead_backend_login_refusals_total{{result=\"{reason}\"}}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_at_one_account_are_checked_once_per_interval() {
    const USER: &str = "alice@example.com";
    let c = Cluster::start_with(Options {
        allow_plaintext_auth: true,
        auth_delay: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    c.add_user(USER, "right").await;
    // The user's usual place: a login from 127.0.0.20 makes it known to the account.
    assert!(pop3_login(&c, loopback(20), USER, "right").await);
    // One guess from outside starts the account's penalty (2 s before the next check).
    assert!(!pop3_login(&c, loopback(2), USER, "guess").await);
    assert_eq!(refusals(&c, "wrong"), 1);
    // 40 guesses at once over 20 addresses, 2 connections each.
    let mut guesses = Vec::new();
    for n in 0..40u8 {
        let c = &c;
        guesses.push(async move { pop3_login(c, loopback(30 + n % 20), USER, "guess").await });
    }
    let started = Instant::now();
    let results = futures::future::join_all(guesses).await;
    assert!(results.iter().all(|ok| !ok));
    let checked = refusals(&c, "wrong") - 1;
    let unchecked = refusals(&c, "throttled");
    // Within the 2 s interval at most one more check (the turn after it); all others fail
    // without their password being looked at.
    let intervals = 1 + started.elapsed().as_secs() / 2;
    assert!(
        checked <= intervals,
        "{checked} guesses checked in {:?}",
        started.elapsed()
    );
    assert_eq!(checked + unchecked, 40);
    // While the account's turn is taken (here: a minute's penalty), even the right password
    // is not checked from an unknown address...
    let curve = PenaltyCurve {
        base_secs: 60.0,
        max_secs: 60.0,
        window_secs: 900,
    };
    let key = format!("user:{USER}");
    c.store.record_auth_failures(&[&key], curve).await.unwrap();
    assert!(!pop3_login(&c, loopback(99), USER, "right").await);
    assert_eq!(refusals(&c, "throttled"), unchecked + 1);
    // ...but the user gets in from their usual place, under attack or not.
    assert!(pop3_login(&c, loopback(20), USER, "right").await);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harvesting_recipients_is_refused_past_the_limit() {
    let c = Cluster::start_with(Options {
        harvest: HarvestPolicy {
            limit: 5,
            window: Duration::from_secs(60),
        },
        ..Options::default()
    })
    .await;
    c.add_user("alice@example.com", "pw").await;
    let rcpt = async |s: &mut RawClient, to: &str| {
        s.send(format!("RCPT TO:<{to}>\r\n").as_bytes()).await;
        s.line().await
    };
    // A sender with typos below the limit is not affected, from one address...
    let mut honest = RawClient::connect_from(c.smtp, loopback(5)).await;
    honest.line().await;
    honest
        .send(b"HELO honest\r\nMAIL FROM:<a@outside.example>\r\n")
        .await;
    honest.line().await;
    honest.line().await;
    for n in 0..4 {
        let r = rcpt(&mut honest, &format!("typo{n}@example.com")).await;
        assert!(r.starts_with("550 5.1.1"), "{r}");
    }
    assert!(rcpt(&mut honest, "alice@example.com")
        .await
        .starts_with("250"));
    // ...while a harvester from another address, over several connections, is stopped.
    let mut answers = Vec::new();
    for conn in 0..4 {
        let mut h = RawClient::connect_from(c.smtp, loopback(6)).await;
        h.line().await;
        h.send(b"HELO harvester\r\nMAIL FROM:<h@outside.example>\r\n")
            .await;
        h.line().await;
        h.line().await;
        for n in 0..3 {
            answers.push(rcpt(&mut h, &format!("name{conn}{n}@example.com")).await);
        }
        answers.push(rcpt(&mut h, "alice@example.com").await);
    }
    let unknown = answers
        .iter()
        .filter(|a| a.starts_with("550 5.1.1"))
        .count();
    assert_eq!(unknown, 5, "the limit's worth of answers: {answers:?}");
    let tail = &answers[answers.len() - 6..];
    assert!(
        tail.iter().all(|a| a.starts_with("450 4.7.1")),
        "then every RCPT is refused, the real mailbox included: {answers:?}"
    );
    let refused = "bridgehead_frontend_harvest_refusals_total";
    let throttled = answers
        .iter()
        .filter(|a| a.starts_with("450 4.7.1"))
        .count();
    assert_eq!(throttled, 10, "{answers:?}");
    assert_eq!(
        c.frontend_metric(refused),
        10,
        "refused from the front-end's memory, without a back-end call"
    );
    // The honest sender's address still gets its answers.
    assert!(rcpt(&mut honest, "alice@example.com")
        .await
        .starts_with("250"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_bad_sasl_get_their_standard_refusals() {
    let c = Cluster::start().await;
    c.add_user("alice@example.com", "pw").await;
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(b"EHLO x\r\n").await;
    s.multiline_smtp().await;
    s.send(b"MAIL FROM:<\xff\xfe\x80@example.net> SMTPUTF8\r\n")
        .await;
    assert!(s.line().await.starts_with("553 5.1.7"));
    s.send(b"MAIL FROM:<\xff\xfe\x80@example.net>\r\n").await;
    assert!(s.line().await.starts_with("553 5.1.7"));
    s.send(b"MAIL FROM:<a@outside.example>\r\n").await;
    assert!(s.line().await.starts_with("250"));
    s.send("RCPT TO:<démo@example.com>\r\n".as_bytes()).await;
    assert!(s.line().await.starts_with("553 5.6.7"));
    s.send(b"RCPT TO:<a\xc3@example.com>\r\n").await;
    assert!(s.line().await.starts_with("553 5.1.3"));
    s.send(b"RCPT TO:<alice@example.com>\r\nDATA\r\n").await;
    assert!(s.line().await.starts_with("250"));
    assert!(s.line().await.starts_with("354"));
    s.send(b"Subject: ok\r\n\r\nok\r\n.\r\n").await;
    assert!(s.line().await.starts_with("250"));
    // Nothing was stored with replaced bytes: only the good message arrived.
    let stored = bridgehead_tests::read_mailbox(&c.store, "alice@example.com", None).await;
    assert_eq!(stored.len(), 1);
    assert!(!String::from_utf8_lossy(&stored[0]).contains('\u{fffd}'));

    // AUTH PLAIN with an empty or malformed message is a syntax error, not a failed login.
    let script = "import smtplib, ssl, sys\n\
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
        s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)\n\
        s.ehlo('x')\n\
        print(s.docmd('AUTH', 'PLAIN =')[0])\n\
        print(s.docmd('AUTH', 'PLAIN AGFsaWNlQGV4YW1wbGUuY29tAA==')[0])\n\
        s.quit()\n";
    let codes = bridgehead_tests::python(script, &[&c.submissions.port().to_string()]);
    assert_eq!(codes.split_whitespace().collect::<Vec<_>>(), ["501", "501"]);
    c.stop().await;
}

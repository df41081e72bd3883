//! SMTP's defences end to end over raw transcripts: no address form relays without AUTH, no
//! byte sequence smuggles a second message, STARTTLS drops pipelined plaintext, recipients
//! refused at RCPT (unknown, over quota, too many), a back-end failure during DATA stores
//! nothing, connections per address and failed logins per account are limited.
use bridgehead_tests::{blocking, python, Cluster, Options, RawClient};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PASS: &str = "alice's password";

async fn cluster() -> Cluster {
    let c = Cluster::start().await;
    c.add_user(ALICE, PASS).await;
    c.add_user(BOB, "bob's password").await;
    c
}

/// Every address form that might sneak an outside recipient past the relay check.
const RELAY_FORMS: &[&str] = &[
    "victim@outside.example",
    "VICTIM@OUTSIDE.EXAMPLE",
    "victim%outside.example@example.com",
    "outside.example!victim@example.com",
    "@example.com:victim@outside.example",
    "\"victim@outside.example\"@example.com",
    "\"victim%outside.example\"@example.com",
    "victim@outside.example@example.com",
    "victim@[192.0.2.1]",
    "victim@example.com.",
    "victim@outside.example.",
    "alice@example.com@outside.example",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_address_form_relays_without_auth() {
    let c = cluster().await;
    for port in [c.smtp, c.submission] {
        for form in RELAY_FORMS {
            // A fresh connection each time: a run of refusals would otherwise end the session.
            let mut s = RawClient::connect(port).await;
            s.line().await;
            s.send(b"HELO attacker.example\r\n").await;
            s.line().await;
            s.send(b"MAIL FROM:<spammer@outside.example>\r\n").await;
            let mail = s.line().await;
            s.send(format!("RCPT TO:<{form}>\r\n").as_bytes()).await;
            let rcpt = s.line().await;
            assert!(rcpt.starts_with('5'), "{form} on {port}: {rcpt}");
            if port == c.smtp {
                assert!(mail.starts_with("250"), "{mail}");
            } else {
                assert!(mail.starts_with("530 5.7.0"), "{mail}");
            }
        }
    }
    assert!(
        c.store.queue_entries().await.unwrap().is_empty(),
        "nothing was queued for the outside"
    );
    assert!(c.uids(ALICE).await.is_empty() && c.uids(BOB).await.is_empty());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_sequences_never_yield_a_second_message() {
    let c = cluster().await;
    for bad in [&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r.\r"] {
        let mut s = RawClient::connect(c.smtp).await;
        s.line().await;
        let mut script =
            format!("HELO c\r\nMAIL FROM:<a@outside.example>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n")
                .into_bytes();
        s.send(&script).await;
        for _ in 0..4 {
            s.line().await;
        }
        script = b"Subject: first\r\n\r\nfirst".to_vec();
        script.extend_from_slice(bad);
        script.extend_from_slice(
            format!("MAIL FROM:<a@outside.example>\r\nRCPT TO:<{BOB}>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nQUIT\r\n").as_bytes(),
        );
        s.send(&script).await;
        let reply = s.line().await;
        assert!(reply.starts_with("550 5.6.0"), "{bad:?}: {reply}");
        assert_eq!(s.line().await, "221 2.0.0 Bye\r\n");
    }
    assert!(
        c.uids(ALICE).await.is_empty(),
        "the first message is refused"
    );
    assert!(c.uids(BOB).await.is_empty(), "no smuggled message");
    c.stop().await;
}

const STARTTLS_INJECTION: &str = r#"
import socket, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection((host, port), timeout=20)
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO c\r\n")
while True:
    l = f.readline()
    if l[3:4] == b" ": break
# STARTTLS with a command pipelined in the same packet: it must be discarded.
s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@outside.example>\r\n")
assert f.readline().startswith(b"220 "), "STARTTLS accepted"
t = ctx.wrap_socket(s, server_hostname="localhost")
tf = t.makefile("rb")
t.sendall(b"MAIL FROM:<after@outside.example>\r\n")
print(tf.readline().decode().strip())
t.sendall(b"EHLO c\r\n")
ehlo = []
while True:
    l = tf.readline().decode().strip()
    ehlo.append(l)
    if l[3:4] == " ": break
print("|".join(ehlo))
t.sendall(b"QUIT\r\n")
print(tf.readline().decode().strip())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_discards_pipelined_plaintext() {
    let c = cluster().await;
    let (host, port) = (c.smtp.ip().to_string(), c.smtp.port().to_string());
    let out = blocking(move || python(STARTTLS_INJECTION, &[&host, &port])).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "503 5.5.1 Send HELO/EHLO first",
        "the injected MAIL was dropped and HELO forgotten"
    );
    assert!(!lines[1].contains("STARTTLS"), "{}", lines[1]);
    assert_eq!(lines[2], "221 2.0.0 Bye");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_unknown_over_quota_and_too_many() {
    let c = Cluster::start_with(Options::default()).await;
    c.add_user(ALICE, PASS).await;
    c.store
        .set_quota(
            &bridgehead_backend::address::Address::parse(ALICE).unwrap(),
            Some(10),
        )
        .await
        .unwrap();
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(b"EHLO c\r\nMAIL FROM:<a@outside.example> SIZE=100\r\n")
        .await;
    while !s.line().await.starts_with("250 ") {}
    s.line().await;
    s.send(
        format!(
            "RCPT TO:<nobody@example.com>\r\nRCPT TO:<{ALICE}>\r\nRCPT TO:<{}@example.com>\r\n",
            "l".repeat(65)
        )
        .as_bytes(),
    )
    .await;
    assert!(s.line().await.starts_with("550 5.1.1 <nobody@example.com>"));
    assert!(
        s.line().await.starts_with("452 4.2.2"),
        "over quota is a temporary refusal"
    );
    let long = s.line().await;
    assert!(
        long.starts_with("554 5.7.1") || long.starts_with("553"),
        "{long}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_end_failure_during_data_is_a_temporary_error_and_stores_nothing() {
    let mut c = cluster().await;
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(
        format!("HELO c\r\nMAIL FROM:<a@outside.example>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n")
            .as_bytes(),
    )
    .await;
    for _ in 0..4 {
        s.line().await;
    }
    c.stop_backend().await;
    s.send(b"Subject: lost?\r\n\r\nbody\r\n.\r\n").await;
    assert!(s.line().await.starts_with("451 4.3.0"));
    c.start_backend().await;
    assert!(c.uids(BOB).await.is_empty());
    // The client tries again and succeeds.
    s.send(format!("MAIL FROM:<a@outside.example>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n").as_bytes())
        .await;
    for _ in 0..3 {
        s.line().await;
    }
    s.send(b"Subject: again\r\n\r\nbody\r\n.\r\n").await;
    assert!(s.line().await.starts_with("250 2.0.0 Ok "));
    assert_eq!(c.uids(BOB).await.len(), 1);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_limited() {
    let c = Cluster::start_with(Options {
        max_connections_per_ip: 2,
        ..Options::default()
    })
    .await;
    let mut a = RawClient::connect(c.smtp).await;
    let mut b = RawClient::connect(c.pop3).await;
    assert!(a.line().await.starts_with("220 "));
    assert!(b.line().await.starts_with("+OK"));
    let mut third = RawClient::connect(c.smtp).await;
    assert_eq!(
        third.line().await,
        "421 4.7.0 Too many connections, try again later\r\n"
    );
    assert!(third.closed().await);
    let mut fourth = RawClient::connect(c.pop3).await;
    assert!(fourth
        .line()
        .await
        .starts_with("-ERR [SYS/TEMP] Too many connections"));
    a.send(b"QUIT\r\n").await;
    assert!(a.closed().await);
    // The place is free again once a connection has ended.
    let mut again = RawClient::connect(c.smtp).await;
    let mut greeting = again.line().await;
    for _ in 0..50 {
        if greeting.starts_with("220 ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        again = RawClient::connect(c.smtp).await;
        greeting = again.line().await;
    }
    assert!(greeting.starts_with("220 "), "{greeting}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_counted_per_account_across_addresses() {
    use bridgehead_backend::auth::{login, AuthPolicy, LoginOutcome};
    use std::time::Duration;
    let c = cluster().await;
    let policy = AuthPolicy {
        base_delay: Duration::from_millis(100),
        ..AuthPolicy::default()
    };
    let mut delays = Vec::new();
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        match login(&c.store, &policy, ALICE, "guess", client)
            .await
            .unwrap()
            .0
        {
            LoginOutcome::Failed { delay } => {
                delays.push(delay);
                // As a front-end does: the reply waits out the delay.
                tokio::time::sleep(delay).await;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        delays,
        [100, 200, 400].map(Duration::from_millis),
        "each new address still pays more"
    );
    // A success from another address forgives only its own failures (none): the guesses
    // made from elsewhere still count against the account.
    assert!(matches!(
        login(&c.store, &policy, ALICE, PASS, "192.0.2.9")
            .await
            .unwrap()
            .0,
        LoginOutcome::Ok { .. }
    ));
    match login(&c.store, &policy, ALICE, "guess", "192.0.2.4")
        .await
        .unwrap()
        .0
    {
        LoginOutcome::Failed { delay } => assert_eq!(delay, Duration::from_millis(800)),
        other => panic!("{other:?}"),
    }
    c.stop().await;
}

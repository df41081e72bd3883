//! The PROXY protocol on the front-end's listeners: v1 and v2 from trusted networks set the
//! client address (as logs, limits and Received headers see it); an untrusted PROXY header is
//! refused; and HAProxy in front of SMTP passes the real client through.
use bridgehead_tests::{
    blocking, header, procs, python, read_mailbox, Cluster, Options, RawClient,
};

const ALICE: &str = "alice@example.com";

async fn cluster(trusted: bool) -> Cluster {
    let c = Cluster::start_with(Options {
        proxy_protocol_from: if trusted {
            vec!["127.0.0.0/8".into()]
        } else {
            Vec::new()
        },
        max_connections_per_ip: 1,
        ..Options::default()
    })
    .await;
    c.add_user(ALICE, "pw").await;
    c
}

async fn received_from(c: &Cluster) -> String {
    let messages = read_mailbox(&c.store, ALICE, Some(0)).await;
    format!(
        "Received: {}",
        header(messages.last().unwrap(), "Received").unwrap_or_default()
    )
}

async fn send_after(c: &Cluster, header: &[u8]) {
    let mut s = RawClient::connect(c.smtp).await;
    s.send(header).await;
    assert!(s.line().await.starts_with("220 "));
    s.send(
        format!("HELO c\r\nMAIL FROM:<x@outside.example>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n")
            .as_bytes(),
    )
    .await;
    for _ in 0..4 {
        s.line().await;
    }
    s.send(b"Subject: proxied\r\n\r\nhi\r\n.\r\nQUIT\r\n").await;
    assert!(s.line().await.starts_with("250 2.0.0 Ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_v1_and_v2_headers_set_the_client() {
    let c = cluster(true).await;
    send_after(&c, b"PROXY TCP4 192.0.2.9 198.51.100.1 40000 25\r\n").await;
    assert_eq!(received_from(&c).await, "Received: from c ([192.0.2.9])");
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend([
        0x21, 0x11, 0, 12, 203, 0, 113, 7, 198, 51, 100, 1, 0x9c, 0x40, 0, 25,
    ]);
    send_after(&c, &v2).await;
    assert_eq!(received_from(&c).await, "Received: from c ([203.0.113.7])");

    // Limits count the real client: one connection per address here.
    let mut first = RawClient::connect(c.pop3).await;
    first
        .send(b"PROXY TCP4 192.0.2.50 198.51.100.1 1 110\r\n")
        .await;
    assert!(first.line().await.starts_with("+OK"));
    let mut second = RawClient::connect(c.pop3).await;
    second
        .send(b"PROXY TCP4 192.0.2.50 198.51.100.1 2 110\r\n")
        .await;
    assert!(second
        .line()
        .await
        .starts_with("-ERR [SYS/TEMP] Too many connections"));
    let mut other = RawClient::connect(c.pop3).await;
    other
        .send(b"PROXY TCP4 192.0.2.51 198.51.100.1 3 110\r\n")
        .await;
    assert!(
        other.line().await.starts_with("+OK"),
        "another client address has its own limit"
    );

    // From a trusted network, a connection without a header is dropped.
    let mut bare = RawClient::connect(c.smtp).await;
    bare.send(b"EHLO sneaky\r\n").await;
    assert!(bare.closed().await);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_proxy_header_is_refused() {
    let c = cluster(false).await;
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(b"PROXY TCP4 192.0.2.9 198.51.100.1 40000 25\r\n")
        .await;
    assert_eq!(
        s.line().await,
        "554 5.7.0 PROXY protocol header from an untrusted address\r\n"
    );
    assert!(s.closed().await);
    // One connection per address: the closed one's place is given back just after its close.
    let mut p = RawClient::connect(c.pop3).await;
    for _ in 0..50 {
        if p.line().await.starts_with("+OK") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        p = RawClient::connect(c.pop3).await;
    }
    p.send(b"PROXY TCP4 192.0.2.9 198.51.100.1 40000 110\r\n")
        .await;
    assert_eq!(
        p.line().await,
        "-ERR PROXY protocol header from an untrusted address\r\n"
    );
    c.stop().await;
}

const SEND_FROM: &str = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=("127.0.0.7", 0), timeout=20)
s.sendmail("x@outside.example", [sys.argv[2]], "Subject: via haproxy\r\n\r\nhi\r\n")
s.quit()
"#;

/// HAProxy (from Debian) in TCP mode with PROXY v2 in front of the MX port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_passes_the_real_client() {
    assert!(
        procs::haproxy_binary().is_some(),
        "haproxy is not installed (apt-get install haproxy)"
    );
    let c = cluster(true).await;
    let port = procs::free_port();
    let dir = tempfile::tempdir().unwrap();
    let _haproxy = procs::haproxy(dir.path(), &[(port, c.smtp.port())]);
    blocking(move || python(SEND_FROM, &[&port.to_string(), ALICE])).await;
    let received = received_from(&c).await;
    assert!(received.ends_with(" ([127.0.0.7])"), "{received}");
    c.stop().await;
}

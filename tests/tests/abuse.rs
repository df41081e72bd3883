//! Abuse resistance: clients that trickle bytes (slowloris), clients that never read their
//! replies, and endless lines, on both protocols.
use bridgehead_tests::{Cluster, Options, RawClient};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

async fn cluster() -> Cluster {
    let c = Cluster::start_with(Options {
        allow_plaintext_auth: true,
        idle_timeout: Duration::from_millis(600),
        smtp_command_timeout: Duration::from_millis(600),
        ..Options::default()
    })
    .await;
    c.add_user("alice@example.com", "pw").await;
    c
}

/// Sends one byte every 100 ms, never ending the line; returns when the server closes.
async fn trickle(s: &mut RawClient) -> Duration {
    let start = Instant::now();
    for b in b"NOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOP"
        .iter()
        .cycle()
        .take(100)
    {
        if !s.try_send(&[*b]).await || start.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.closed().await);
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_time_out() {
    let c = cluster().await;
    let mut p = RawClient::connect(c.pop3).await;
    p.line().await;
    let took = trickle(&mut p).await;
    assert!(
        took < Duration::from_millis(2500),
        "POP3 slowloris cut after {took:?}"
    );

    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    let took = trickle(&mut s).await;
    assert!(
        took < Duration::from_millis(2500),
        "SMTP slowloris cut after {took:?}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped() {
    let c = cluster().await;
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.extend(b"x".repeat(998).iter().chain(b"\r\n").cycle().take(4 << 20));
    c.deliver("alice@example.com", &big).await;
    let mut tcp = tokio::net::TcpStream::connect(c.pop3).await.unwrap();
    tcp.write_all(b"USER alice@example.com\r\nPASS pw\r\n")
        .await
        .unwrap();
    // Ask for 16 MiB of replies and read none of them.
    for _ in 0..4 {
        tcp.write_all(b"RETR 1\r\n").await.unwrap();
    }
    let start = Instant::now();
    // The server gives up writing after its idle timeout and closes; our reads then end.
    let mut sink = Vec::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let read = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut sink),
    )
    .await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(
        sink.len() < 16 << 20,
        "not everything was sent: the server stopped"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    // The mailbox is free again for a well-behaved client.
    let mut ok = RawClient::connect(c.pop3).await;
    ok.line().await;
    ok.send(b"USER alice@example.com\r\nPASS pw\r\n").await;
    ok.line().await;
    assert!(ok.line().await.starts_with("+OK Logged in"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_line_is_refused_without_keeping_it() {
    let c = cluster().await;
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..50 {
        s.send(&chunk).await;
    }
    s.send(b"\r\nNOOP\r\n").await;
    assert_eq!(s.line().await, "500 5.5.2 Line too long\r\n");
    assert_eq!(s.line().await, "250 2.0.0 Ok\r\n");
    c.stop().await;
}

/// SIGTERM-like stop: idle sessions are told at once, readiness turns false first, and a
/// session stuck in DATA cannot keep the front-end from exiting past the drain deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_clients_and_respects_the_drain_deadline() {
    let mut c = cluster().await;
    let mut idle_pop3 = RawClient::connect(c.pop3).await;
    idle_pop3.line().await;
    let mut idle_smtp = RawClient::connect(c.smtp).await;
    idle_smtp.line().await;
    let mut busy = RawClient::connect(c.smtp).await;
    busy.line().await;
    busy.send(
        b"HELO c\r\nMAIL FROM:<a@outside.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
    )
    .await;
    for _ in 0..4 {
        busy.line().await;
    }
    busy.send(b"Subject: half a message\r\n").await;
    let frontend = c.frontend.take().unwrap();
    assert!(frontend.is_ready());
    let token = frontend.shutdown_token();
    let start = Instant::now();
    let stopping = tokio::spawn(frontend.stop());
    assert_eq!(
        idle_smtp.line().await,
        "421 4.3.2 Service shutting down, try again later\r\n"
    );
    assert_eq!(
        idle_pop3.line().await,
        "-ERR [SYS/TEMP] Server shutting down, please reconnect\r\n"
    );
    assert!(token.is_cancelled(), "not ready any more");
    stopping.await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    c.stop().await;
}

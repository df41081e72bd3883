//! PostgreSQL restarts under a running cluster: the back-end's pooled connections to the old
//! server are found dead and replaced, so mail flows again at once — at worst a temporary
//! 4xx that a retry gets past — and nothing is answered 250 that was not stored.
use bridgehead_backend::pgrunner::PgServer;
use bridgehead_backend::store;
use bridgehead_tests::{Cluster, Options, RawClient};

const BOB: &str = "bob@example.com";

/// One message to bob; the reply that ended it (the DATA reply, or an earlier refusal).
async fn send(c: &Cluster, n: usize) -> String {
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(format!("HELO c\r\nMAIL FROM:<a@outside.example>\r\nRCPT TO:<{BOB}>\r\n").as_bytes())
        .await;
    s.line().await;
    for _ in 0..2 {
        let reply = s.line().await;
        if !reply.starts_with("250") {
            return reply;
        }
    }
    s.send(format!("DATA\r\nSubject: {n}\r\n\r\nbody\r\n.\r\nQUIT\r\n").as_bytes())
        .await;
    assert!(s.line().await.starts_with("354"));
    s.line().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_flows_again_after_postgres_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = PgServer::start(dir.path(), 0).expect("start PostgreSQL");
    store::ensure_database(&pg.url("postgres"), "restart")
        .await
        .unwrap();
    let c = Cluster::start_with(Options {
        database_url: Some(pg.url("restart")),
        // Every RCPT goes to the back-end (and so to PostgreSQL).
        recipient_cache_ttl: std::time::Duration::ZERO,
        ..Options::default()
    })
    .await;
    c.add_user(BOB, "pw").await;
    let mut accepted = 0;
    for n in 0..3 {
        let reply = send(&c, n).await;
        assert!(reply.starts_with("250"), "{reply}");
        accepted += 1;
    }

    let port = pg.port();
    pg.stop();
    let mut pg = PgServer::start(dir.path(), port).expect("restart PostgreSQL");
    // At once, then again: every attempt is stored (250) or a temporary refusal, and a
    // retry gets through.
    let mut replies = Vec::new();
    for n in 3..9 {
        let reply = send(&c, n).await;
        assert!(
            reply.starts_with("250") || reply.starts_with('4'),
            "{reply}"
        );
        if reply.starts_with("250") {
            accepted += 1;
        }
        replies.push(reply);
    }
    assert!(
        replies[1..].iter().all(|r| r.starts_with("250")),
        "only the first attempt after the restart may be refused: {replies:?}"
    );
    assert_eq!(
        c.uids(BOB).await.len(),
        accepted,
        "stored exactly what got 250"
    );
    c.stop().await;
    pg.stop();
}

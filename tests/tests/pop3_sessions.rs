//! POP3 end to end as raw transcripts over real sockets: pipelining, odd splits, bad input,
//! the maildrop lock, dropped connections, back-end restarts and failures.
use bridgehead_backend::address::Address;
use bridgehead_tests::{Cluster, Options, RawClient};
use std::time::{Duration, Instant};

const USER: &str = "alice@example.com";
const PASS: &str = "s3cret pass";
const MSG: &[u8] = b"Subject: test\r\n\r\nhello\r\n";

async fn plaintext_cluster() -> Cluster {
    let c = Cluster::start_with(Options {
        allow_plaintext_auth: true,
        ..Options::default()
    })
    .await;
    c.add_user(USER, PASS).await;
    c
}

async fn login(c: &Cluster) -> RawClient {
    let mut s = RawClient::connect(c.pop3).await;
    assert!(s.line().await.starts_with("+OK"));
    s.send(format!("USER {USER}\r\nPASS {PASS}\r\n").as_bytes())
        .await;
    assert!(s.line().await.starts_with("+OK"));
    let reply = s.line().await;
    assert!(reply.starts_with("+OK Logged in"), "{reply}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_in_one_write() {
    let c = plaintext_cluster().await;
    c.deliver(USER, MSG).await;
    c.deliver(USER, MSG).await;
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    s.send(
        format!(
            "USER {USER}\r\nPASS {PASS}\r\nSTAT\r\nRETR 2\r\nDELE 1\r\nDELE 2\r\nSTAT\r\nQUIT\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(s.line().await, "+OK Send your password\r\n");
    assert!(s.line().await.starts_with("+OK Logged in, 2 messages"));
    assert_eq!(s.line().await, format!("+OK 2 {}\r\n", 2 * MSG.len()));
    assert_eq!(
        s.multiline().await,
        format!(
            "+OK {} octets\r\n{}.\r\n",
            MSG.len(),
            String::from_utf8_lossy(MSG)
        )
    );
    assert_eq!(s.line().await, "+OK Message 1 deleted\r\n");
    assert_eq!(s.line().await, "+OK Message 2 deleted\r\n");
    assert_eq!(s.line().await, "+OK 0 0\r\n");
    assert!(s
        .line()
        .await
        .starts_with("+OK Bridgehead POP3 server signing off (2 messages deleted)"));
    assert!(s.closed().await);
    assert!(
        c.uids(USER).await.is_empty(),
        "QUIT answered +OK only after the deletions committed"
    );
    c.stop().await;
}

/// A client reading its mailbox in order gets small messages read ahead in batches (the next
/// one asked for while it reads the current one); each
/// arrives exactly and dot-stuffed, whether it came from a batch, from the read-ahead or (a
/// big one) streamed on its own, and a deletion in between changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_read_ahead_arrive_exactly() {
    let c = plaintext_cluster().await;
    let big = format!("Subject: big\r\n\r\n{}", ".dot line\r\n".repeat(8000));
    let bodies: Vec<String> = (0..40)
        .map(|i| match i {
            7 => big.clone(),
            _ => format!("Subject: {i}\r\n\r\n.starts with a dot\r\nline {i}\r\n"),
        })
        .collect();
    for b in &bodies {
        c.deliver(USER, b.as_bytes()).await;
    }
    let mut s = login(&c).await;
    s.send(b"DELE 3\r\n").await;
    assert!(s.line().await.starts_with("+OK"));
    for (i, body) in bodies.iter().enumerate().filter(|(i, _)| *i != 2) {
        s.send(format!("RETR {}\r\n", i + 1).as_bytes()).await;
        let got = s.multiline().await;
        let stuffed = body.replace("\r\n.", "\r\n..");
        let want = format!("+OK {} octets\r\n{stuffed}.\r\n", body.len());
        assert!(got == want, "message {} differs", i + 1);
    }
    // Four batches — 1 with 2, 4 and 5 (the deleted 3 left out), then 6-7 asked for in the
    // background while the client read those; 9 with 10-25, then 26-40 in the background —
    // and the big one on its own.
    assert_eq!(c.backend_calls("fetch_many"), 4);
    assert_eq!(c.backend_calls("fetch"), 1);
    s.send(b"RETR 3\r\n").await;
    assert!(s.line().await.starts_with("-ERR"), "deleted");
    s.send(b"QUIT\r\n").await;
    assert!(s.line().await.starts_with("+OK"));
    assert_eq!(c.uids(USER).await.len(), 39);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_split_at_odd_boundaries() {
    let c = plaintext_cluster().await;
    c.deliver(USER, MSG).await;
    for piece in [1, 2, 3, 7, 13] {
        let mut s = RawClient::connect(c.pop3).await;
        s.line().await;
        let script = format!("USER {USER}\r\nPASS {PASS}\r\nLIST\r\nUIDL 1\r\nQUIT\r\n");
        s.send_in_pieces(script.as_bytes(), piece).await;
        assert_eq!(
            s.line().await,
            "+OK Send your password\r\n",
            "piece {piece}"
        );
        assert!(s.line().await.starts_with("+OK Logged in"));
        assert_eq!(
            s.multiline().await,
            format!("+OK 1 messages ({0} octets)\r\n1 {0}\r\n.\r\n", MSG.len())
        );
        assert!(s.line().await.starts_with("+OK 1 "));
        assert!(s
            .line()
            .await
            .starts_with("+OK Bridgehead POP3 server signing off"));
    }
    assert_eq!(c.uids(USER).await.len(), 1);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_long_lines_and_disconnect() {
    let c = plaintext_cluster().await;
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    s.send(format!("NOOP {}\r\n", "x".repeat(400)).as_bytes())
        .await;
    assert_eq!(s.line().await, "-ERR Command line too long\r\n");
    s.send(b"APOP alice 0123456789abcdef\r\n").await;
    assert_eq!(
        s.line().await,
        "-ERR Unknown command\r\n",
        "APOP is not offered"
    );
    for _ in 0..7 {
        s.send(b"BOGUS\r\n").await;
        assert_eq!(s.line().await, "-ERR Unknown command\r\n");
    }
    s.send(b"BOGUS\r\n").await;
    assert_eq!(
        s.line().await,
        "-ERR Too many bad commands, closing connection\r\n"
    );
    assert!(s.closed().await);

    // A line that never ends is dropped as it arrives, not buffered.
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    for _ in 0..64 {
        s.send(&[b'A'; 16 * 1024]).await;
    }
    s.send(b"\r\nNOOP\r\n").await;
    assert_eq!(s.line().await, "-ERR Command line too long\r\n");
    assert_eq!(s.line().await, "-ERR Not valid before login\r\n");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_session_gets_in_use_until_the_first_quits() {
    let c = plaintext_cluster().await;
    let mut first = login(&c).await;
    let mut second = RawClient::connect(c.pop3).await;
    second.line().await;
    second
        .send(format!("USER {USER}\r\nPASS {PASS}\r\n").as_bytes())
        .await;
    second.line().await;
    assert_eq!(
        second.line().await,
        "-ERR [IN-USE] Mailbox is in use by another POP3 session\r\n"
    );
    first.send(b"QUIT\r\n").await;
    assert!(first.line().await.starts_with("+OK"));
    second
        .send(format!("USER {USER}\r\nPASS {PASS}\r\n").as_bytes())
        .await;
    second.line().await;
    assert!(second.line().await.starts_with("+OK Logged in"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_deletes_nothing_and_frees_the_lock() {
    let c = plaintext_cluster().await;
    let uid = c.deliver(USER, MSG).await;
    let mut s = login(&c).await;
    s.send(b"DELE 1\r\n").await;
    assert_eq!(s.line().await, "+OK Message 1 deleted\r\n");
    drop(s); // no QUIT
             // The lease is given back on disconnect; a new session may have to wait for that.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        let mut s = RawClient::connect(c.pop3).await;
        s.line().await;
        s.send(format!("USER {USER}\r\nPASS {PASS}\r\n").as_bytes())
            .await;
        s.line().await;
        let reply = s.line().await;
        if reply.starts_with("+OK Logged in") {
            break s;
        }
        assert!(
            reply.contains("[IN-USE]") && Instant::now() < deadline,
            "{reply}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    s.send(b"UIDL\r\n").await;
    assert_eq!(
        s.multiline().await,
        format!("+OK 1 messages ({} octets)\r\n1 {uid}\r\n.\r\n", MSG.len())
    );
    assert_eq!(c.uids(USER).await, vec![uid]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_of_a_dead_front_end_expires() {
    let c = plaintext_cluster().await;
    let (account, _) = c
        .store
        .resolve_recipient(&Address::parse(USER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(c
        .store
        .acquire_lease(account, "front-end-that-died", 1)
        .await
        .unwrap());
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    s.send(format!("USER {USER}\r\nPASS {PASS}\r\n").as_bytes())
        .await;
    s.line().await;
    assert!(s.line().await.contains("[IN-USE]"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    login(&c).await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_a_back_end_restart() {
    let mut c = plaintext_cluster().await;
    c.deliver(USER, MSG).await;
    c.deliver(USER, b"Subject: two\r\n\r\nsecond\r\n").await;
    let mut s = login(&c).await;
    s.send(b"DELE 1\r\n").await;
    assert!(s.line().await.starts_with("+OK"));
    c.restart_backend().await;
    s.send(b"RETR 2\r\n").await;
    assert!(
        s.multiline().await.contains("second\r\n"),
        "a new back-end serves the same session"
    );
    s.send(b"QUIT\r\n").await;
    assert!(s
        .line()
        .await
        .starts_with("+OK Bridgehead POP3 server signing off (1 messages deleted)"));
    assert_eq!(c.uids(USER).await.len(), 1, "the mail survived the restart");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_end_down_gives_a_temporary_error_then_recovers() {
    let mut c = plaintext_cluster().await;
    c.deliver(USER, MSG).await;
    c.stop_backend().await;
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    s.send(format!("USER {USER}\r\nPASS {PASS}\r\n").as_bytes())
        .await;
    s.line().await;
    assert!(s.line().await.starts_with("-ERR [SYS/TEMP]"));
    c.start_backend().await;
    s.send(format!("USER {USER}\r\nPASS {PASS}\r\nSTAT\r\n").as_bytes())
        .await;
    s.line().await;
    assert!(s.line().await.starts_with("+OK Logged in"));
    assert_eq!(s.line().await, format!("+OK 1 {}\r\n", MSG.len()));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_end_skips_a_dead_back_end() {
    // A port nothing listens on: bind, note the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = Cluster::start_with(Options {
        allow_plaintext_auth: true,
        extra_backends: vec![dead.to_string()],
        ..Options::default()
    })
    .await;
    c.add_user(USER, PASS).await;
    c.deliver(USER, MSG).await;
    for _ in 0..4 {
        let mut s = login(&c).await;
        s.send(b"RETR 1\r\nQUIT\r\n").await;
        assert!(s.multiline().await.contains("hello"));
        assert!(s.line().await.starts_with("+OK"));
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_vague_and_slowed_more_each_time() {
    let c = Cluster::start_with(Options {
        allow_plaintext_auth: true,
        auth_delay: Duration::from_millis(150),
        ..Options::default()
    })
    .await;
    c.add_user(USER, PASS).await;
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    let mut took = Vec::new();
    for user in [USER, "nobody@example.com", USER] {
        let start = Instant::now();
        s.send(format!("USER {user}\r\nPASS wrong\r\n").as_bytes())
            .await;
        s.line().await;
        assert_eq!(
            s.line().await,
            "-ERR [AUTH] Authentication failed\r\n",
            "same answer for {user}"
        );
        took.push(start.elapsed());
    }
    assert!(took[0] >= Duration::from_millis(150), "{took:?}");
    assert!(took[1] >= Duration::from_millis(300), "{took:?}");
    assert!(took[2] >= Duration::from_millis(600), "{took:?}");
    // A success clears the count.
    s.send(format!("USER {USER}\r\nPASS {PASS}\r\nQUIT\r\n").as_bytes())
        .await;
    s.line().await;
    assert!(s.line().await.starts_with("+OK Logged in"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_need_tls_unless_configured() {
    let c = Cluster::start().await;
    c.add_user(USER, PASS).await;
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    s.send(format!("USER {USER}\r\nAUTH PLAIN\r\nCAPA\r\n").as_bytes())
        .await;
    assert!(s
        .line()
        .await
        .starts_with("-ERR [AUTH] Plaintext authentication disallowed"));
    assert!(s
        .line()
        .await
        .starts_with("-ERR [AUTH] Plaintext authentication disallowed"));
    let capa = s.multiline().await;
    assert!(
        capa.contains("STLS\r\n") && !capa.contains("USER\r\n") && !capa.contains("SASL"),
        "{capa}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_closed() {
    let c = Cluster::start_with(Options {
        allow_plaintext_auth: true,
        idle_timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    c.add_user(USER, PASS).await;
    let mut s = login(&c).await;
    assert_eq!(s.line().await, "-ERR Autologout; idle for too long\r\n");
    assert!(s.closed().await);
    login(&c).await; // the lease was released
    c.stop().await;
}

/// A mailbox bigger than one listing page (65,536 messages) opens whole: the back-end sends
/// the first page with the login and the front-end asks for the rest (`ListMore`); STAT, UIDL
/// and LIST count every message, in order, and QUIT deletes from the far end of the listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_bigger_than_a_listing_page_is_listed_whole() {
    let c = plaintext_cluster().await;
    c.deliver(USER, b"Subject: one\r\n\r\nbody\r\n").await;
    // 70,000 more rows that share the first message's content (the store's bulk path).
    let db = sqlx::PgPool::connect(&c.database_url).await.unwrap();
    sqlx::raw_sql(&format!(
        "INSERT INTO messages (account_id, uid, content_id, prefix, size)
         SELECT m.account_id, m.uid + g, m.content_id, m.prefix, m.size
         FROM messages m, generate_series(1, 70000) g
         WHERE m.account_id = (SELECT id FROM accounts WHERE address = '{USER}');
         UPDATE accounts SET next_uid = next_uid + 70000, message_count = 70001
         WHERE address = '{USER}'"
    ))
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let first = c.uids(USER).await[0];
    let mut s = login(&c).await;
    s.send(b"STAT\r\n").await;
    assert!(s.line().await.starts_with("+OK 70001 "));
    s.send(b"UIDL\r\n").await;
    let uidl = s.multiline().await;
    let lines: Vec<&str> = uidl.split("\r\n").collect();
    assert_eq!(lines.len(), 70001 + 3, "+OK, every message, \".\", the end");
    for (i, line) in lines[1..70002].iter().enumerate() {
        assert_eq!(*line, format!("{} {}", i + 1, first + i as i64));
    }
    s.send(b"LIST 70001\r\n").await;
    assert!(s.line().await.starts_with("+OK 70001 "));
    s.send(b"DELE 70001\r\n").await;
    assert!(s.line().await.starts_with("+OK"));
    s.send(b"QUIT\r\n").await;
    assert!(s.line().await.contains("(1 messages deleted)"));
    let left = c.uids(USER).await;
    assert_eq!((left.len(), left.last()), (70000, Some(&(first + 69999))));
    c.stop().await;
}

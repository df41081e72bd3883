//! Login penalties end to end over POP3: an address locked out after repeated failures for a
//! while; a valid account of one's own does not reset the count of guesses at others; users
//! behind one address (a NAT) who mistype and then log in do not lock it out; expired counts
//! are pruned.
use bridgehead_backend::store::PenaltyCurve;
use bridgehead_tests::{Cluster, Options, RawClient};
use std::time::{Duration, Instant};

const USER: &str = "alice@example.com";
const PASS: &str = "s3cret pass";

async fn cluster(lockout_after: u32, window: Duration) -> Cluster {
    Cluster::start_with(Options {
        allow_plaintext_auth: true,
        auth_delay: Duration::from_millis(10),
        auth_window: window,
        auth_lockout_after: lockout_after,
        ..Options::default()
    })
    .await
}

/// One login on a connection of its own; its reply to PASS (a session that logged in quits).
async fn attempt(c: &Cluster, user: &str, password: &str) -> String {
    bridgehead_tests::pop3_attempt(c.pop3, None, user, password).await
}

/// After `lockout_after` failures from one address even the right password is refused, without
/// extending the lockout; once the window has passed since the last failure, it works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_is_locked_out_after_repeated_failures_for_a_while() {
    let window = Duration::from_secs(3);
    let c = cluster(3, window).await;
    c.add_user(USER, PASS).await;
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    let try_login = async |s: &mut RawClient, password: &str| {
        s.send(format!("USER {USER}\r\nPASS {password}\r\n").as_bytes())
            .await;
        s.line().await;
        s.line().await
    };
    for _ in 0..3 {
        assert!(try_login(&mut s, "wrong").await.starts_with("-ERR [AUTH]"));
    }
    let last_failure = Instant::now();
    assert_eq!(
        try_login(&mut s, PASS).await,
        "-ERR [AUTH] Authentication failed\r\n",
        "the right password got through a lockout"
    );
    drop(s);
    // Wait out the window (counted from the last failure, not from the refused right password).
    tokio::time::sleep(
        (window + Duration::from_millis(500)).saturating_sub(last_failure.elapsed()),
    )
    .await;
    let mut s = RawClient::connect(c.pop3).await;
    s.line().await;
    assert!(try_login(&mut s, PASS).await.starts_with("+OK Logged in"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_account_does_not_reset_the_count_of_guesses_at_others() {
    let c = cluster(3, Duration::from_secs(60)).await;
    c.add_user("mallory@example.com", "mine").await;
    c.add_user(USER, PASS).await;
    for round in 0..3 {
        let guess = attempt(&c, USER, "guess").await;
        assert!(guess.starts_with("-ERR [AUTH]"), "{guess}");
        let own = attempt(&c, "mallory@example.com", "mine").await;
        if round < 2 {
            assert!(own.starts_with("+OK Logged in"), "round {round}: {own}");
        } else {
            assert_eq!(
                own, "-ERR [AUTH] Authentication failed\r\n",
                "three guesses at alice lock the address out, logins to mallory between them or not"
            );
        }
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_who_mistype_then_log_in_do_not_lock_their_address_out() {
    let c = cluster(3, Duration::from_secs(60)).await;
    let users: Vec<String> = (0..4).map(|n| format!("u{n}@example.com")).collect();
    for u in &users {
        c.add_user(u, "right").await;
    }
    // Eight failures from one address in all, but each user's two are forgiven by their login.
    for u in &users {
        for _ in 0..2 {
            assert!(attempt(&c, u, "typo").await.starts_with("-ERR [AUTH]"));
        }
        let reply = attempt(&c, u, "right").await;
        assert!(reply.starts_with("+OK Logged in"), "{u}: {reply}");
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_failure_counts_are_pruned() {
    let c = cluster(3, Duration::from_secs(60)).await;
    let s = &c.store;
    let curve = PenaltyCurve {
        base_secs: 0.1,
        max_secs: 1.0,
        window_secs: 1,
    };
    s.record_auth_failures(&["user:old@example.com"], curve)
        .await
        .unwrap();
    s.record_unknown_recipient("192.0.2.1", 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.record_auth_failures(&["user:new@example.com"], curve)
        .await
        .unwrap();
    s.record_unknown_recipient("192.0.2.2", 1).await.unwrap();
    assert_eq!(
        s.prune_penalties(1, 1).await.unwrap(),
        2,
        "only the old counts"
    );
    assert_eq!(
        s.record_unknown_recipient("192.0.2.2", 1).await.unwrap(),
        2,
        "the recent unknown-recipient count stays"
    );
    assert_eq!(
        s.recent_auth_failures("user:old@example.com", 3600)
            .await
            .unwrap(),
        0,
        "its row is gone, not just out of the window"
    );
    assert_eq!(
        s.recent_auth_failures("user:new@example.com", 1)
            .await
            .unwrap(),
        1
    );
    c.stop().await;
}

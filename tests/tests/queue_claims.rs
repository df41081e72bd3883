//! Queue claims across back-ends: one worker per queued message at a time. A back-end killed
//! mid-delivery loses nothing (another takes over once its claim has ended); a next hop that
//! stalls past the claim's length does not make a second back-end send the message again
//! (the claim is renewed while the attempt runs); a stopping back-end gives back what it did
//! not attempt.
use bridgehead_backend::envelope::Recipient;
use bridgehead_backend::mailauth::srs::Srs;
use bridgehead_backend::submit::{Envelope, Submission};
use bridgehead_tests::outbound::{queue_empty, route, spawn_backend, submit};
use bridgehead_tests::{blocking, eventually, Cluster, Sink};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";
const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");

/// When the peer started receiving each copy of a message (seconds since the epoch).
fn starts(sink: &Sink) -> Vec<f64> {
    sink.received()
        .iter()
        .map(|l| {
            let m: serde_json::Value = serde_json::from_str(l).unwrap();
            m["started"].as_f64().unwrap()
        })
        .collect()
}

/// A back-end process killed in the middle of a delivery loses nothing: another back-end takes
/// the message over once the dead one's claim has ended — never while it could still be
/// sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_end_killed_mid_delivery_loses_nothing() {
    let c = Cluster::start().await; // its own back-end sends nothing
    c.add_user(ALICE, PASS).await;
    let sink = blocking(|| Sink::start(&["--slow", "2"], false)).await;
    route(&c, "outside.example", sink.port, "none").await;
    let mut first = spawn_backend(BIN, &c.database_url, 4);
    submit(&c, ALICE, PASS, &["friend@outside.example"], "FAILURE").await;
    eventually("the first back-end to be sending", || async {
        (sink.data_started() >= 1).then_some(())
    })
    .await;
    first.kill9(); // mid-DATA
    let _second = spawn_backend(BIN, &c.database_url, 4);
    queue_empty(&c).await;
    let starts = starts(&sink);
    assert!(!starts.is_empty(), "the message reached the peer");
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 3.0,
            "sent again within the first claim: {starts:?}"
        );
    }
    c.stop().await;
}

/// A next hop that takes longer than the claim lasts: the claim is renewed while the first
/// back-end still talks to it, so a second back-end never sends the message meanwhile, and it
/// is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_hop_stalling_past_the_claim_gets_the_message_once() {
    let c = Cluster::start().await;
    c.add_user(ALICE, PASS).await;
    let sink = blocking(|| Sink::start(&["--slow", "7"], false)).await;
    route(&c, "outside.example", sink.port, "none").await;
    let _first = spawn_backend(BIN, &c.database_url, 2);
    submit(&c, ALICE, PASS, &["friend@outside.example"], "FAILURE").await;
    eventually("the first back-end to be sending", || async {
        (sink.data_started() >= 1).then_some(())
    })
    .await;
    // A second back-end, polling every 50 ms, while the first waits for the peer's answer for
    // three and a half claims.
    let _second = spawn_backend(BIN, &c.database_url, 2);
    queue_empty(&c).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        sink.data_started(),
        1,
        "the peer was sent the message again"
    );
    assert_eq!(starts(&sink).len(), 1, "delivered once");
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
        recipients: vec![Recipient::new("someone@outside.example", 0, "")],
        auth_user: ALICE.into(),
        received_by: "mx.test.example".into(),
        ..Envelope::default()
    };
    let mut s = Submission::begin(&c.store, env, 1 << 20, &Srs::new(b"test"))
        .await
        .unwrap();
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
    // A claim is renewed only by its holder, and only while it has not ended.
    assert!(c
        .store
        .renew_claim("other", again[0].id, 300)
        .await
        .unwrap());
    assert!(!c
        .store
        .renew_claim("stopping", again[0].id, 300)
        .await
        .unwrap());
    c.stop().await;
}

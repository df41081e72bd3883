//! The front-end's memory of accepted recipients, end to end: RCPT to a mailbox accepted a
//! moment ago needs no back-end call; a mailbox removed or filled meanwhile is still caught
//! at the end of DATA (a temporary 451/452, nothing stored); a larger SIZE is asked afresh;
//! the memory ends after its time; with it off, every RCPT is asked.
use bridgehead_backend::address::Address;
use bridgehead_tests::{Cluster, Options, RawClient};
use std::time::Duration;

const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// One SMTP transaction to `rcpt`: the RCPT reply and, when it was accepted, the reply to
/// the end of DATA.
async fn send(c: &Cluster, rcpt: &str, size: Option<u64>) -> (String, Option<String>) {
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    let size = size.map(|n| format!(" SIZE={n}")).unwrap_or_default();
    s.send(
        format!("HELO c\r\nMAIL FROM:<a@outside.example>{size}\r\nRCPT TO:<{rcpt}>\r\n").as_bytes(),
    )
    .await;
    s.line().await;
    assert!(s.line().await.starts_with("250"), "MAIL accepted");
    let rcpt_reply = s.line().await;
    if !rcpt_reply.starts_with("250") {
        return (rcpt_reply, None);
    }
    s.send(b"DATA\r\n").await;
    assert!(s.line().await.starts_with("354"));
    s.send(b"Subject: remembered?\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        .await;
    (rcpt_reply, Some(s.line().await))
}

/// Back-end CheckRecipient calls the front-end made so far.
fn checks(c: &Cluster) -> u64 {
    c.backend_calls("check_recipient")
}

fn addr(a: &str) -> Address {
    Address::parse(a).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_recipients_are_still_judged_at_the_end_of_data() {
    let c = Cluster::start_with(Options {
        recipient_cache_ttl: Duration::from_secs(5),
        ..Options::default()
    })
    .await;
    c.add_user(BOB, "pw").await;
    c.add_user(CAROL, "pw").await;

    let (rcpt, data) = send(&c, BOB, None).await;
    assert!(rcpt.starts_with("250") && data.unwrap().starts_with("250"));
    let (rcpt, data) = send(&c, BOB, None).await;
    assert!(rcpt.starts_with("250") && data.unwrap().starts_with("250"));
    assert_eq!(
        checks(&c),
        1,
        "the second RCPT to bob was answered from memory"
    );
    assert_eq!(c.uids(BOB).await.len(), 2);

    // Removed meanwhile: RCPT is answered from memory, the end of DATA refuses for now.
    c.store.remove_user(&addr(BOB)).await.unwrap();
    let (rcpt, data) = send(&c, BOB, None).await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    let data = data.unwrap();
    assert!(data.starts_with("451 4.3.0"), "{data}");

    // Filled meanwhile: the same, with the quota's own reply, and nothing stored.
    let (_, data) = send(&c, CAROL, Some(100)).await;
    assert!(data.unwrap().starts_with("250"));
    c.store.set_quota(&addr(CAROL), Some(10)).await.unwrap();
    let (rcpt, data) = send(&c, CAROL, Some(50)).await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    let data = data.unwrap();
    assert!(data.starts_with("452 4.2.2"), "{data}");
    assert_eq!(c.uids(CAROL).await.len(), 1, "nothing stored over quota");
    let before = checks(&c);
    // A larger message than the one remembered is asked about, and refused at RCPT.
    let (rcpt, _) = send(&c, CAROL, Some(1000)).await;
    assert!(rcpt.starts_with("452 4.2.2"), "{rcpt}");
    assert_eq!(checks(&c), before + 1);

    // The memory ends: bob is unknown at RCPT again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rcpt, _) = send(&c, BOB, None).await;
    assert!(rcpt.starts_with("550 5.1.1"), "{rcpt}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_memory_off_every_rcpt_is_asked() {
    let c = Cluster::start_with(Options {
        recipient_cache_ttl: Duration::ZERO,
        ..Options::default()
    })
    .await;
    c.add_user(BOB, "pw").await;
    let (rcpt, data) = send(&c, BOB, None).await;
    assert!(rcpt.starts_with("250") && data.unwrap().starts_with("250"));
    c.store.remove_user(&addr(BOB)).await.unwrap();
    let (rcpt, _) = send(&c, BOB, None).await;
    assert!(rcpt.starts_with("550 5.1.1"), "{rcpt}");
    assert_eq!(checks(&c), 2);
    c.stop().await;
}

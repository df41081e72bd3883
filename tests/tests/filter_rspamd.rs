//! Spam filtering with the real rspamd through its milter-speaking proxy worker: the GTUBE
//! test string (rspamd's standard spam test) is refused with rspamd's own reply at end of
//! DATA and never stored; a clean message is stored with the headers rspamd added
//! (`X-Spamd-Result`, `X-Spam-Status`). Two milters in order — rspamd, then one that is down
//! with `default=accept` — show the chain going on past a filter that cannot be asked.
use bridgehead_frontend::filter::FilterSpec;
use bridgehead_tests::filters::{smtp_send, Rspamd};
use bridgehead_tests::procs::free_port;
use bridgehead_tests::{blocking, read_mailbox, Cluster, Options};

const ALICE: &str = "alice@example.com";
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn message(subject: &str, body: &str) -> String {
    format!("From: friend@sender.test\nTo: {ALICE}\nSubject: {subject}\nMessage-ID: <{subject}@sender.test>\n\n{body}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rspamd_refuses_gtube_and_marks_what_it_passes() {
    let rspamd = blocking(Rspamd::start).await;
    let dead = format!("inet:127.0.0.1:{}?default=accept&timeout=5", free_port());
    let c = Cluster::start_with(Options {
        milters: vec![
            FilterSpec::parse(&format!("inet:{}?timeout=60", rspamd.milter)).unwrap(),
            FilterSpec::parse(&dead).unwrap(),
        ],
        ..Options::default()
    })
    .await;
    c.add_user(ALICE, "alice's password").await;
    let mx = c.smtp.port();
    let from = "friend@sender.test";

    let spam = message("offer", &format!("Buy now.\n{GTUBE}"));
    let reply = smtp_send(mx, from, ALICE, None, &spam).await;
    assert!(reply.starts_with("554 5.7.1"), "{reply}\n{}", rspamd.log());
    assert!(
        reply.contains("Gtube pattern"),
        "rspamd's own words: {reply}"
    );
    assert!(read_mailbox(&c.store, ALICE, None).await.is_empty());

    let ham = message("lunch", "Shall we meet for lunch on Tuesday at noon?");
    assert_eq!(smtp_send(mx, from, ALICE, None, &ham).await, "250");
    let stored = read_mailbox(&c.store, ALICE, None).await;
    let text = String::from_utf8_lossy(&stored[0]).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap();
    assert!(
        head.contains("\r\nX-Spamd-Result: default: False"),
        "{head}"
    );
    assert!(head.contains("\r\nX-Spam-Status: No, score="), "{head}");
    assert!(
        text.ends_with("Shall we meet for lunch on Tuesday at noon?\r\n"),
        "{text}"
    );
    c.stop().await;
}

//! The store's chores on a real PostgreSQL: the sweep of content nobody references.
use bridgehead_tests::{read_mailbox, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_content_is_swept_and_referenced_content_kept() {
    let c = Cluster::start().await;
    c.add_user("alice@example.com", "pw").await;
    c.deliver("alice@example.com", b"Subject: kept\r\n\r\nkept\r\n")
        .await;
    // Content whose references are gone (as two transactions that each dropped one reference
    // at once can leave it): written, and delivered to nobody.
    let mut orphan = c.store.begin_content(1 << 20).await.unwrap();
    orphan
        .write(b"Subject: orphan\r\n\r\nnobody\r\n")
        .await
        .unwrap();
    orphan.deliver(&[], None).await.unwrap();
    // Young content is never swept (it may be on its way to being referenced)...
    let (swept, last) = c.store.sweep_contents(0, 1000, 3600).await.unwrap();
    assert_eq!((swept, last.is_some()), (0, true));
    // ...old enough, only the orphan goes; the walk goes on from where a batch ended.
    let (swept, _) = c.store.sweep_contents(0, 1, 0).await.unwrap();
    let (more, _) = c
        .store
        .sweep_contents(last.unwrap() - 1, 1000, 0)
        .await
        .unwrap();
    assert_eq!(swept + more, 1);
    let (none, past_end) = c
        .store
        .sweep_contents(last.unwrap(), 1000, 0)
        .await
        .unwrap();
    assert_eq!(
        (none, past_end),
        (0, None),
        "past the end: start again from 0"
    );
    let kept = read_mailbox(&c.store, "alice@example.com", None).await;
    assert_eq!(kept.len(), 1);
    assert!(String::from_utf8_lossy(&kept[0]).contains("Subject: kept"));
    c.stop().await;
}

//! SMTP conformance with plain outside clients (Python's smtplib, raw transcripts): the
//! domain-less Postmaster (RFC 5321 §4.5.1), UTF-8 addresses under SMTPUTF8 (RFC 6531).
use bridgehead_tests::{read_mailbox, Cluster, RawClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcpt_to_the_bare_postmaster_reaches_the_first_domains_postmaster() {
    let c = Cluster::start().await;
    c.add_user("postmaster@first.example", "pw").await;
    c.add_user("postmaster@second.example", "pw").await;
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(b"HELO outside.example\r\nMAIL FROM:<someone@outside.example>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<>\r\nDATA\r\n")
        .await;
    assert!(s.line().await.starts_with("250"));
    assert!(s.line().await.starts_with("250"));
    assert_eq!(s.line().await, "250 2.1.5 Ok\r\n");
    assert!(s.line().await.starts_with("501 5.1.3"), "<> is no recipient");
    assert!(s.line().await.starts_with("354"));
    s.send(b"Subject: to the postmaster\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        .await;
    assert!(s.line().await.starts_with("250 2.0.0 Ok"));
    let got = read_mailbox(&c.store, "postmaster@first.example", None).await;
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: to the postmaster"));
    assert!(read_mailbox(&c.store, "postmaster@second.example", None)
        .await
        .is_empty());
    c.stop().await;
}

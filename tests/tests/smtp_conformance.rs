//! SMTP conformance with plain outside clients (Python's smtplib, raw transcripts): the
//! domain-less Postmaster (RFC 5321 §4.5.1), UTF-8 addresses under SMTPUTF8 (RFC 6531), and
//! CHUNKING (RFC 3030) on the wire.
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
    assert!(
        s.line().await.starts_with("501 5.1.3"),
        "<> is no recipient"
    );
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

/// Submission over implicit TLS with SMTPUTF8, as Python's smtplib sends it.
const SUBMIT_UTF8: &str = r#"
import smtplib, ssl, sys
port, user, password, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=20)
s.login(user, password)
msg = "From: %s\r\nTo: %s\r\nSubject: Grüße\r\n\r\nÄrger? Nein.\r\n" % (user, rcpt)
s.sendmail(user, [rcpt], msg.encode("utf-8"), mail_options=["SMTPUTF8", "BODY=8BITMIME"])
s.quit()
print("sent")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_addresses_are_accepted_with_smtputf8() {
    let c = Cluster::start().await;
    c.add_user("jürgen@example.com", "pw").await;
    c.add_user("alice@example.com", "alice pw").await;
    let alias = bridgehead_backend::address::Address::parse("Jörg@Bücher.example").unwrap();
    let target = bridgehead_backend::address::Address::parse("alice@example.com").unwrap();
    c.store.add_domain(alias.domain()).await.unwrap();
    c.store.add_alias(&alias, &target).await.unwrap();
    // Inbound: a UTF-8 mailbox (spelled in another case and normalisation form) and a UTF-8
    // alias under a U-label domain.
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(b"EHLO outside.example\r\n").await;
    assert!(s.multiline_smtp().await.contains("250-SMTPUTF8"));
    s.send("MAIL FROM:<müller@outside.example> SMTPUTF8\r\nRCPT TO:<JU\u{308}RGEN@example.com>\r\nRCPT TO:<jörg@bücher.example>\r\nDATA\r\n".as_bytes())
        .await;
    for _ in 0..3 {
        let r = s.line().await;
        assert!(r.starts_with("250"), "{r}");
    }
    assert!(s.line().await.starts_with("354"));
    s.send("Subject: Grüße\r\n\r\nHallo Jürgen\r\n.\r\n".as_bytes())
        .await;
    assert!(s.line().await.starts_with("250 2.0.0 Ok"));
    for mailbox in ["jürgen@example.com", "alice@example.com"] {
        let got = read_mailbox(&c.store, mailbox, None).await;
        assert_eq!(got.len(), 1, "{mailbox}");
        let text = String::from_utf8(got[0].clone()).unwrap();
        assert!(
            text.contains("Return-Path: <müller@outside.example>"),
            "{text}"
        );
        assert!(text.contains("with UTF8SMTP"), "{text}");
        assert!(text.contains("Hallo Jürgen"));
    }
    // Submission to an outside UTF-8 address: queued as given.
    let port = c.submissions.port().to_string();
    let out = bridgehead_tests::blocking(move || {
        bridgehead_tests::python(
            SUBMIT_UTF8,
            &[
                &port,
                "alice@example.com",
                "alice pw",
                "jörg@outside.example",
            ],
        )
    })
    .await;
    assert_eq!(out.trim(), "sent");
    let queued = c.store.queue_entries().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].2, vec!["jörg@outside.example".to_string()]);
    c.stop().await;
}

/// CHUNKING on the wire: BDAT chunks pipelined in one write, their octets taken as they are
/// (dots and "QUIT" lines inside included), a refused BDAT's octets dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_chunks_over_a_real_connection() {
    let c = Cluster::start().await;
    c.add_user("alice@example.com", "pw").await;
    let first = b"Subject: chunked\r\n\r\n.\r\nQUIT\r\n";
    let last = b"..two dots\r\nend\r\n";
    let mut s = RawClient::connect(c.smtp).await;
    s.line().await;
    s.send(b"EHLO outside.example\r\n").await;
    assert!(s.multiline_smtp().await.contains("250-CHUNKING"));
    let mut pipelined =
        b"BDAT 4\r\nRSETMAIL FROM:<x@outside.example>\r\nRCPT TO:<alice@example.com>\r\n".to_vec();
    pipelined.extend_from_slice(format!("BDAT {}\r\n", first.len()).as_bytes());
    pipelined.extend_from_slice(first);
    pipelined.extend_from_slice(format!("BDAT {} LAST\r\n", last.len()).as_bytes());
    pipelined.extend_from_slice(last);
    s.send(&pipelined).await;
    assert_eq!(s.line().await, "503 5.5.1 Need MAIL command\r\n");
    assert!(s.line().await.starts_with("250 2.1.0"));
    assert!(s.line().await.starts_with("250 2.1.5"));
    assert_eq!(
        s.line().await,
        format!("250 2.0.0 {} octets received\r\n", first.len())
    );
    assert!(s.line().await.starts_with("250 2.0.0 Ok"));
    let got = read_mailbox(&c.store, "alice@example.com", None).await;
    assert_eq!(got.len(), 1);
    let expected = [&first[..], &last[..]].concat();
    assert!(
        got[0].ends_with(&expected),
        "{}",
        String::from_utf8_lossy(&got[0])
    );
    c.stop().await;
}

//! A milter that changes messages, end to end: OpenDKIM signing on submission (the filter
//! most operators run for outgoing mail). Alice submits with STARTTLS and AUTH; OpenDKIM
//! inserts its DKIM-Signature at the top (SMFIR_INSHEADER); the stored message carries it,
//! and Python's dkimpy verifies it against the key record `opendkim-genkey` made — so the
//! header arrived exactly, and the message was not changed after signing. Port 25 mail,
//! with no milter configured for it here, is left alone.
use bridgehead_frontend::filter::FilterSpec;
use bridgehead_tests::filters::{smtp_send, OpenDkim};
use bridgehead_tests::{blocking, python, read_mailbox, Cluster, Options};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

/// Verifies the DKIM signature of the message in argv[1] with the key record argv[2];
/// prints True or False.
const VERIFY: &str = r#"
import dkim, sys
msg = open(sys.argv[1], "rb").read()
record = sys.argv[2].encode()
print(dkim.verify(msg, dnsfunc=lambda name, timeout=5: record))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opendkim_signs_submitted_mail_through_the_milter() {
    let odk = blocking(|| OpenDkim::start("example.com")).await;
    let spec = FilterSpec::parse(&format!("inet:{}?timeout=20", odk.milter)).unwrap();
    let c = Cluster::start_with(Options {
        milters: Vec::new(),
        submission_milters: Some(vec![spec]),
        ..Options::default()
    })
    .await;
    c.add_user(ALICE, PASS).await;
    let msg =
        "From: Alice <alice@example.com>\nTo: alice@example.com\nSubject: signed by a milter\n\
               Date: Sun, 06 Dec 2026 12:00:00 +0000\nMessage-ID: <odk-1@example.com>\n\n\
               Hello from submission.\n";
    let reply = smtp_send(c.submission.port(), ALICE, ALICE, Some((ALICE, PASS)), msg).await;
    assert_eq!(reply, "250");
    let from_mx = smtp_send(c.smtp.port(), "x@sender.test", ALICE, None, msg).await;
    assert_eq!(from_mx, "250");

    let stored = read_mailbox(&c.store, ALICE, None).await;
    let signed = String::from_utf8_lossy(&stored[0]).into_owned();
    assert!(
        signed.contains("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;"),
        "{signed}"
    );
    assert!(!String::from_utf8_lossy(&stored[1]).contains("DKIM-Signature"));
    let record = odk.record.clone();
    let verified = blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.eml");
        std::fs::write(&path, signed).unwrap();
        python(VERIFY, &[path.to_str().unwrap(), &record])
    })
    .await;
    assert_eq!(verified.trim(), "True");
    c.stop().await;
}

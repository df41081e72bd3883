//! The milter protocol end to end with a scripted filter (`tests/support/scripted_milter.py`,
//! a milter of our own in Python speaking the wire format): every reply — continue, accept,
//! reject, tempfail, discard, a reply code of its own, progress, quarantine — and every
//! end-of-message modification — add, insert, change and delete a header, replace the body,
//! add and delete a recipient, change the sender — reach the client and the store as the
//! protocol says — a quarantined message held, then released or deleted with `bridgehead
//! admin quarantine`; and a filter that misbehaves — garbage, a 4 GiB length, silence, a reset
//! in the middle of the body — gets the default action (451) while the SMTP session goes on,
//! and the session's connection to the filter carries message after message.
use bridgehead_frontend::filter::FilterSpec;
use bridgehead_tests::procs::{free_port, wait_port, Proc};
use bridgehead_tests::{admin_cli, blocking, python, read_mailbox, Cluster, Options};
use std::path::Path;
use std::process::Command;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// Sends one message per subject in argv[2:] through 127.0.0.1:argv[1], all in one SMTP
/// session; prints each reply on a line ("250" or "<code> <text>").
const SESSION: &str = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="mta.sender.test", timeout=60)
for subject in sys.argv[2:]:
    msg = ("From: friend@sender.test\r\nTo: alice@example.com\r\nSubject: " + subject +
           "\r\nX-Remove: me\r\n\r\noriginal body\r\n").encode()
    try:
        s.sendmail("friend@sender.test", ["alice@example.com"], msg)
        print("250")
    except smtplib.SMTPResponseException as e:
        print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

fn stored(messages: &[Vec<u8>]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reply_and_modification_and_every_misbehaviour() {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/scripted_milter.py");
    let dir = tempfile::tempdir().unwrap();
    let connections = dir.path().join("connections");
    let _milter = Proc(
        Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&connections)
            .spawn()
            .expect("start the scripted milter"),
    );
    blocking(move || wait_port(port)).await;
    let spec = format!("inet:127.0.0.1:{port}?timeout=2");
    let c = Cluster::start_with(Options {
        milters: vec![FilterSpec::parse(&spec).unwrap()],
        ..Options::default()
    })
    .await;
    c.add_user(ALICE, "a").await;
    c.add_user(BOB, "b").await;

    let subjects = [
        ("plain", "250"),
        ("garbage", "451 4.7.1"),
        ("plain", "250"),
        ("huge", "451 4.7.1"),
        ("reset", "451 4.7.1"),
        ("silent", "451 4.7.1"),
        ("code", "553 5.7.0 Not today"),
        ("reject", "550 5.7.1 Command rejected"),
        ("tempfail", "451 4.7.1 Service unavailable"),
        ("discard", "250"),
        ("quarantine", "250"),
        ("progress", "250"),
        ("modify", "250"),
    ];
    let mut args = vec![c.smtp.port().to_string()];
    args.extend(subjects.iter().map(|(s, _)| s.to_string()));
    let out = blocking(move || {
        python(
            SESSION,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    })
    .await;
    let replies: Vec<&str> = out.lines().collect();
    assert_eq!(replies.len(), subjects.len(), "{out}");
    for ((subject, want), got) in subjects.iter().zip(&replies) {
        assert!(got.starts_with(want), "{subject}: {got}");
    }
    // The macros milters rely on, at their steps.
    let macros = std::fs::read_to_string(connections.with_extension("macros")).unwrap();
    for want in [
        "C {client_addr}=127.0.0.1",
        "C j=mx.test.example",
        "M {mail_addr}=friend@sender.test",
        "R {rcpt_addr}=alice@example.com",
        "E i=",
    ] {
        assert!(
            macros.lines().any(|l| l.starts_with(want)),
            "{want} in\n{macros}"
        );
    }
    // One connection carries message after message; only a failed one is replaced (after
    // garbage, the huge length, the reset and the silence): 1 + 4 for 13 messages (and the
    // test's own check that the filter listens).
    let opened = || {
        std::fs::read_to_string(&connections)
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(opened(), 1 + 5, "milter connections opened");

    // Alice: the two plain ones and the one after progress; the quarantined one is held.
    let alice = stored(&read_mailbox(&c.store, ALICE, None).await);
    assert_eq!(alice.len(), 3, "{alice:?}");
    for (s, m) in ["plain", "plain", "progress"].iter().zip(&alice) {
        assert!(m.contains(&format!("Subject: {s}\r\n")), "{m}");
    }
    let bin = env!("CARGO_BIN_EXE_bridgehead");
    let listed = admin_cli(bin, &c, &["quarantine", "list"]);
    let fields: Vec<&str> = listed.trim().split('\t').collect();
    assert_eq!(fields.len(), 7, "{listed}");
    assert_eq!(
        &fields[4..],
        ["friend@sender.test", ALICE, "held for review"],
        "{listed}"
    );
    // Released: delivered to the recipient it had.
    let released = admin_cli(bin, &c, &["quarantine", "release", fields[1]]);
    assert!(
        released.starts_with(&format!("released {}", fields[1])),
        "{released}"
    );
    let alice = stored(&read_mailbox(&c.store, ALICE, None).await);
    assert_eq!(alice.len(), 4);
    assert!(alice[3].contains("Subject: quarantine\r\n"), "{}", alice[3]);
    assert!(admin_cli(bin, &c, &["quarantine", "list"])
        .trim()
        .is_empty());
    // Another one, deleted: gone, delivered to nobody.
    let port = c.smtp.port().to_string();
    let again = blocking(move || python(SESSION, &[&port, "quarantine"])).await;
    assert_eq!(again.trim(), "250");
    assert_eq!(
        opened(),
        1 + 6,
        "a new SMTP session, a new milter connection"
    );
    let listed = admin_cli(bin, &c, &["quarantine", "list"]);
    let id = listed.split('\t').next().unwrap().to_string();
    admin_cli(bin, &c, &["quarantine", "delete", &id]);
    assert!(admin_cli(bin, &c, &["quarantine", "list"])
        .trim()
        .is_empty());
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 4);
    let gone = Command::new(bin)
        .args(["admin", "--url", &format!("http://{}", c.backend_addr)])
        .args([
            "--token",
            bridgehead_tests::ADMIN_TOKEN,
            "quarantine",
            "release",
            &id,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(
        !gone.status.success() && err.contains("no quarantined message"),
        "{err}"
    );

    // Bob: added by the filter, which removed Alice and changed the rest.
    let bob = stored(&read_mailbox(&c.store, BOB, None).await);
    assert_eq!(bob.len(), 1, "{bob:?}");
    let m = &bob[0];
    assert!(m.starts_with("Return-Path: <new@sender.test>\r\n"), "{m}");
    let own = &m[m.find("X-Top:").expect("inserted at the top")..];
    assert!(
        own.starts_with("X-Top: first\r\nFrom: friend@sender.test\r\n"),
        "{own}"
    );
    assert!(
        own.contains("\r\nSubject: changed by the milter\r\n"),
        "{own}"
    );
    assert!(!own.contains("X-Remove"), "{own}");
    assert!(
        own.contains("\r\nX-Added: yes\r\n\r\nreplaced body\r\nsecond line\r\n"),
        "{own}"
    );
    assert!(own.ends_with("second line\r\n"), "{own}");
    c.stop().await;
}

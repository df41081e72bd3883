//! SMTP end to end with real clients (Python smtplib, swaks, curl): submission on 587 and 465,
//! inbound MX, relaying for authenticated users only, added headers, repeated submissions, and
//! the message read back over POP3. The defences (relay forms, smuggling, STARTTLS injection,
//! limits) are in `smtp_defences.rs`.
use bridgehead_tests::{blocking, curl, python, Cluster, RawClient};
use std::process::Command;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PASS: &str = "alice's password";

async fn cluster() -> Cluster {
    let c = Cluster::start().await;
    c.add_user(ALICE, PASS).await;
    c.add_user(BOB, "bob's password").await;
    c
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
mode, host, port, user, password, sender, rcpt = sys.argv[1:8]
msg = sys.stdin.read() if False else "From: <%s>\r\nTo: <%s>\r\nSubject: via %s\r\nMessage-ID: <m1@client.example>\r\nDate: Sun, 22 Nov 2026 00:00:00 +0000\r\n\r\nHello over %s.\r\n.dot line\r\n" % (sender, rcpt, mode, mode)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
if mode == "465":
    s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
else:
    s = smtplib.SMTP(host, int(port), timeout=20)
    s.starttls(context=ctx)
s.login(user, password)
refused = s.sendmail(sender, [rcpt], msg)
assert refused == {}, refused
s.quit()
sys.stdout.write(msg)
"#;

const POP_ALL: &str = r#"
import poplib, ssl, sys, json
host, port, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = poplib.POP3_SSL(host, int(port), context=ctx, timeout=20)
c.user(user); c.pass_(password)
out = []
for i in range(1, c.stat()[0] + 1):
    out.append("\r\n".join(l.decode() for l in c.retr(i)[1]) + "\r\n")
c.quit()
print(json.dumps(out))
"#;

async fn mailbox(c: &Cluster, user: &str, pass: &str) -> Vec<String> {
    let (host, port) = (c.pop3s.ip().to_string(), c.pop3s.port().to_string());
    let (user, pass) = (user.to_string(), pass.to_string());
    let out = blocking(move || python(POP_ALL, &[&host, &port, &user, &pass])).await;
    serde_json::from_str(&out).expect("json")
}

/// The message minus the trace headers the cluster adds at the top.
fn strip_trace(stored: &str) -> String {
    let mut out = String::new();
    let mut in_trace = true;
    for l in stored.split_inclusive("\r\n") {
        let trace = ["Return-Path:", "Delivered-To:", "Received:", "\t"];
        if in_trace && trace.iter().any(|t| l.starts_with(t)) {
            continue;
        }
        in_trace = false;
        out.push_str(l);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtplib_submits_on_587_and_465_and_pop3_reads_it_back() {
    let c = cluster().await;
    for (mode, addr) in [("587", c.submission), ("465", c.submissions)] {
        let (host, port) = (addr.ip().to_string(), addr.port().to_string());
        let sent =
            blocking(move || python(SMTPLIB, &[mode, &host, &port, ALICE, PASS, ALICE, BOB])).await;
        let got = mailbox(&c, BOB, "bob's password").await;
        let stored = got.last().expect("a message arrived");
        assert!(
            stored.starts_with(&format!(
                "Return-Path: <{ALICE}>\r\nDelivered-To: {BOB}\r\nReceived: from "
            )),
            "{stored}"
        );
        assert!(
            stored.contains("by mx.test.example (Bridgehead) with ESMTPSA id "),
            "{stored}"
        );
        assert_eq!(
            strip_trace(stored),
            sent,
            "byte for byte apart from the trace headers"
        );
    }
    assert_eq!(mailbox(&c, BOB, "bob's password").await.len(), 2);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_submits_and_relays_for_authenticated_users_only() {
    let c = cluster().await;
    let swaks = |args: Vec<String>| {
        blocking(move || {
            let out = Command::new("swaks")
                .args(&args)
                .output()
                .expect("swaks is installed");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
    };
    let sub = c.submission;
    let base = |to: &str| {
        vec![
            "--server".into(),
            sub.ip().to_string(),
            "--port".into(),
            sub.port().to_string(),
            "--from".into(),
            ALICE.into(),
            "--to".into(),
            to.into(),
            "--tls".into(),
        ]
    };
    // Authenticated: local delivery and relay to the outside (queued).
    for to in [BOB, "friend@outside.example"] {
        let mut args = base(to);
        args.extend(
            [
                "--auth",
                "LOGIN",
                "--auth-user",
                ALICE,
                "--auth-password",
                PASS,
            ]
            .map(String::from),
        );
        let (ok, out) = swaks(args).await;
        assert!(ok, "{out}");
        assert!(out.contains("250 2.0.0 Ok "), "{out}");
    }
    let queued = c.store.queue_entries().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].1, ALICE);
    assert_eq!(queued[0].2, vec!["friend@outside.example".to_string()]);
    // Unauthenticated on 587: nothing is accepted.
    let (ok, out) = swaks(base("friend@outside.example")).await;
    assert!(
        !ok && out.contains("530 5.7.0 Authentication required"),
        "{out}"
    );
    // Implicit TLS on 465 with AUTH PLAIN.
    let mut args = vec![
        "--server".into(),
        c.submissions.ip().to_string(),
        "--port".into(),
        c.submissions.port().to_string(),
        "--tlsc".into(),
    ];
    args.extend(
        [
            "--from",
            ALICE,
            "--to",
            BOB,
            "--auth",
            "PLAIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            PASS,
        ]
        .map(String::from),
    );
    let (ok, out) = swaks(args).await;
    assert!(ok, "{out}");
    assert_eq!(mailbox(&c, BOB, "bob's password").await.len(), 2);
    assert_eq!(
        c.store.queue_entries().await.unwrap().len(),
        1,
        "nothing more was queued"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_delivers_inbound_and_submits() {
    let c = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(
        &file,
        b"From: someone@outside.example\r\nSubject: curl\r\n\r\nvia curl\r\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let url = format!("smtp://{}/client.example", c.smtp);
    let (ok, _, err) = blocking({
        let f = f.clone();
        move || {
            curl(&[
                "--mail-from",
                "someone@outside.example",
                "--mail-rcpt",
                BOB,
                "--upload-file",
                &f,
                &url,
            ])
        }
    })
    .await;
    assert!(ok, "{err}");
    let url = format!("smtps://{}/client.example", c.submissions);
    let (ok, _, err) = blocking(move || {
        let userpw = format!("{ALICE}:{PASS}");
        curl(&[
            "-k",
            "--user",
            &userpw,
            "--mail-from",
            ALICE,
            "--mail-rcpt",
            BOB,
            "--upload-file",
            &f,
            &url,
        ])
    })
    .await;
    assert!(ok, "{err}");
    let got = mailbox(&c, BOB, "bob's password").await;
    assert_eq!(got.len(), 2);
    assert!(
        got[0].contains("with ESMTP id") && got[0].ends_with("via curl\r\n"),
        "{}",
        got[0]
    );
    assert!(got[1].contains("with ESMTPSA id"), "{}", got[1]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_adds_message_id_and_date_when_missing() {
    let c = cluster().await;
    let mut s = RawClient::connect(c.submission).await;
    s.line().await;
    // Plaintext AUTH is refused here; use the 465 port through Python instead.
    s.send(b"EHLO c\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGFsaWNlJ3MgcGFzc3dvcmQ=\r\n")
        .await;
    while !s.line().await.starts_with("250 ") {}
    assert!(s.line().await.starts_with("538 5.7.11"));
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL(sys.argv[1], int(sys.argv[2]), context=ctx, timeout=20)
s.login(sys.argv[3], sys.argv[4])
s.sendmail(sys.argv[3], [sys.argv[5]], "Subject: bare\r\n\r\nno id, no date\r\n")
s.quit()
"#;
    let (host, port) = (
        c.submissions.ip().to_string(),
        c.submissions.port().to_string(),
    );
    blocking(move || python(script, &[&host, &port, ALICE, PASS, BOB])).await;
    let got = mailbox(&c, BOB, "bob's password").await;
    assert!(got[0].contains("\r\nMessage-ID: <"), "{}", got[0]);
    assert!(got[0].contains("\r\nDate: "), "{}", got[0]);
    assert!(got[0].ends_with("Subject: bare\r\n\r\nno id, no date\r\n"));
    c.stop().await;
}

/// The back-end half of the handover, called twice with one submission token (a front-end
/// repeating Submit after a lost reply): the second stores nothing and answers with the
/// first queue id — for a message of one chunk (claim, content and mailbox in one statement)
/// and for one of several chunks. A mailbox that a message would overfill takes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_submission_is_stored_once_and_quota_holds() {
    use bridgehead_backend::mailauth::srs::Srs;
    use bridgehead_backend::submit::{Envelope, Finished, Submission};
    let c = cluster().await;
    let submit = |token: &str, body: Vec<u8>, rcpt: &str| {
        let env = Envelope {
            mail_from: "x@outside.example".into(),
            recipients: vec![bridgehead_backend::envelope::Recipient::new(rcpt, 0, "")],
            received_by: "mx.test.example".into(),
            submit_token: token.to_string(),
            ..Envelope::default()
        };
        let store = c.store.clone();
        async move {
            let mut s = Submission::begin(&store, env, 1 << 24, &Srs::new(b"test"))
                .await
                .unwrap();
            s.write(&body).await?;
            s.finish().await
        }
    };
    let small = b"Subject: once\r\n\r\nbody\r\n".to_vec();
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b"0123456789abcdef\r\n".as_slice(), 40_000).flatten());
    for (token, body) in [("tok-small", small), ("tok-big", big)] {
        let Finished::Stored(first) = submit(token, body.clone(), ALICE).await.unwrap() else {
            panic!("stored the first time")
        };
        let again = submit(token, body, ALICE).await.unwrap();
        assert_eq!(
            again,
            Finished::Duplicate(bridgehead_backend::submit::Accepted {
                queue_id: first.queue_id,
                local_deliveries: 0,
                queued_recipients: 0,
            })
        );
    }
    assert_eq!(c.uids(ALICE).await.len(), 2, "each message once");
    let bob = bridgehead_backend::address::Address::parse(BOB).unwrap();
    c.store.set_quota(&bob, Some(10)).await.unwrap();
    let refused = submit("tok-quota", b"Subject: q\r\n\r\nx\r\n".to_vec(), BOB).await;
    assert!(
        matches!(
            refused,
            Err(bridgehead_backend::StoreError::QuotaExceeded(_))
        ),
        "{refused:?}"
    );
    assert!(c.uids(BOB).await.is_empty());
    c.stop().await;
}

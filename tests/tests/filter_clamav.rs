//! Virus scanning at the front door with the real ClamAV: `clamd` with a database of the
//! test's own (EICAR) behind `clamav-milter`, the front-end speaking the milter protocol to
//! it after DATA. A clean message is stored with the milter's headers; one carrying EICAR as
//! an attachment is refused with a 5xx at end of DATA and never stored; with clamd stopped
//! the milter says it cannot scan (tempfail: 4xx); with the milter stopped too, the default
//! action applies — tempfail on port 25, accept on submission (configured so), and the
//! metrics count each verdict. And clamd asked directly (INSTREAM) without the milter.
use base64::Engine;
use bridgehead_frontend::filter::FilterSpec;
use bridgehead_tests::filters::{smtp_send, ClamAv, EICAR};
use bridgehead_tests::{blocking, read_mailbox, Cluster, Options};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

async fn send(port: u16, how: &str, msg: &str) -> String {
    let login = how.split_once(':');
    let sender = if login.is_some() {
        ALICE
    } else {
        "friend@sender.test"
    };
    smtp_send(port, sender, ALICE, login, msg).await
}

fn clean() -> String {
    "From: friend@sender.test\nTo: alice@example.com\nSubject: clean\n\nNothing to see.\n".into()
}

fn infected() -> String {
    let attachment = base64::engine::general_purpose::STANDARD.encode(EICAR);
    format!(
        "From: friend@sender.test\nTo: alice@example.com\nSubject: invoice\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\n\
         See attached.\n--b1\nContent-Type: application/octet-stream; name=\"invoice.com\"\n\
         Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"invoice.com\"\n\n\
         {attachment}\n--b1--\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clamav_milter_refuses_a_virus_in_the_session_and_its_absence_defers() {
    let mut clamav = blocking(ClamAv::start).await;
    let spec = format!("inet:{}?timeout=20", clamav.milter);
    let lenient = format!("inet:{}?default=accept&timeout=20", clamav.milter);
    let c = Cluster::start_with(Options {
        milters: vec![FilterSpec::parse(&spec).unwrap()],
        submission_milters: Some(vec![FilterSpec::parse(&lenient).unwrap()]),
        ..Options::default()
    })
    .await;
    c.add_user(ALICE, PASS).await;
    let mx = c.smtp.port();

    let reply = send(mx, "mx", &clean()).await;
    assert_eq!(reply, "250", "{}", clamav.logs());
    let stored = read_mailbox(&c.store, ALICE, None).await;
    let text = String::from_utf8_lossy(&stored[0]).into_owned();
    assert!(
        text.contains("X-Virus-Scanned: clamav-milter"),
        "the milter's header: {text}"
    );
    assert!(text.contains("X-Virus-Status: Clean"), "{text}");

    let reply = send(mx, "mx", &infected()).await;
    assert!(
        reply.starts_with('5'),
        "a virus is refused in the session: {reply}\n{}",
        clamav.logs()
    );
    assert_eq!(
        read_mailbox(&c.store, ALICE, None).await.len(),
        1,
        "nothing stored"
    );

    // clamd down: clamav-milter cannot scan and says so (OnFail Defer): try later.
    clamav.stop_clamd();
    let reply = send(mx, "mx", &clean()).await;
    assert!(reply.starts_with('4'), "{reply}");

    // The milter itself down: its default action — tempfail here, accept on submission.
    clamav.stop_milter();
    let reply = send(mx, "mx", &clean()).await;
    assert!(reply.starts_with("451 4.7.1"), "{reply}");
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 1);
    let submission = c.submission.port();
    let reply = send(submission, &format!("{ALICE}:{PASS}"), &clean()).await;
    assert_eq!(reply, "250");
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 2);

    let name = format!("inet:{}", clamav.milter);
    for verdict in ["continue", "reject", "tempfail"] {
        let series = format!(
            "bridgehead_frontend_milter_seconds_count{{milter=\"{name}\",verdict=\"{verdict}\"}}"
        );
        assert!(c.frontend_metric(&series) >= 1, "{series}");
    }
    let failures = format!("bridgehead_frontend_milter_failures_total{{milter=\"{name}\"}}");
    assert_eq!(c.frontend_metric(&failures), 2, "{failures}");
    c.stop().await;
}

/// clamd asked directly (INSTREAM, `clamd:inet:…`), without clamav-milter: a clean message is
/// stored, EICAR is refused with the signature's name, and with clamd stopped the default
/// action (tempfail) applies — never "clean" because clamd could not say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clamd_instream_refuses_a_virus_and_never_passes_what_it_could_not_scan() {
    let mut clamav = blocking(ClamAv::start).await;
    let spec = format!("clamd:inet:{}?timeout=20", clamav.clamd_addr);
    let c = Cluster::start_with(Options {
        milters: vec![FilterSpec::parse(&spec).unwrap()],
        ..Options::default()
    })
    .await;
    c.add_user(ALICE, PASS).await;
    let mx = c.smtp.port();
    assert_eq!(send(mx, "mx", &clean()).await, "250");
    let reply = send(mx, "mx", &infected()).await;
    assert!(
        reply.starts_with("554 5.7.1") && reply.contains("Bridgehead.Test.EICAR"),
        "{reply}\n{}",
        clamav.logs()
    );
    clamav.stop_clamd();
    assert!(send(mx, "mx", &clean()).await.starts_with("451 4.7.1"));
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 1);
    c.stop().await;
}

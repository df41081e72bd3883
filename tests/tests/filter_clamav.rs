//! Virus scanning at the front door with the real ClamAV: `clamd` with a database of the
//! test's own (EICAR) behind `clamav-milter`, the front-end speaking the milter protocol to
//! it after DATA. A clean message is stored with the milter's headers; one carrying EICAR as
//! an attachment is refused with a 5xx at end of DATA and never stored; with clamd stopped
//! the milter says it cannot scan (tempfail: 4xx); with the milter stopped too, the default
//! action applies — tempfail on port 25, accept on submission (configured so), and the
//! metrics count each verdict.
use base64::Engine;
use bridgehead_frontend::filter::MilterSpec;
use bridgehead_tests::filters::{ClamAv, EICAR};
use bridgehead_tests::{blocking, python, read_mailbox, Cluster, Options};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

/// Sends argv[5] (LF line ends) to 127.0.0.1:argv[1] from argv[2] to argv[3]; argv[4] is
/// "mx" (port 25, no login) or "USER:PASS" (submission: STARTTLS, AUTH). Prints "250 <text>" or
/// "<code> <text>".
const SEND: &str = r#"
import smtplib, ssl, sys
port, sender, rcpt, how, msg = sys.argv[1:6]
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="mta.sender.test", timeout=60)
if how != "mx":
    user, password = how.split(":", 1)
    s.starttls(context=ssl._create_unverified_context())
    s.login(user, password)
try:
    s.sendmail(sender, [rcpt], msg.replace("\n", "\r\n").encode())
    print("250")
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

async fn send(port: u16, how: &str, msg: &str) -> String {
    let args = [
        port.to_string(),
        if how == "mx" {
            "friend@sender.test"
        } else {
            ALICE
        }
        .to_string(),
        ALICE.to_string(),
        how.to_string(),
        msg.to_string(),
    ];
    blocking(move || python(SEND, &args.each_ref().map(String::as_str)))
        .await
        .trim()
        .to_string()
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
        milters: vec![MilterSpec::parse(&spec).unwrap()],
        submission_milters: Some(vec![MilterSpec::parse(&lenient).unwrap()]),
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

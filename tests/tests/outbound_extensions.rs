//! ESMTP extensions on the way out, against real peers. 8BITMIME and SMTPUTF8 with aiosmtpd
//! peers that offer each extension and peers that do not: the parameters go where they are
//! offered; 8-bit content for a 7-bit hop fails with 5.6.3 and SMTPUTF8 mail for a hop without
//! it with 5.6.7, each with a DSN to the sender and nothing sent mangled. DSN with a real
//! Postfix: NOTIFY=SUCCESS passed on to it is reported by it alone.
use bridgehead_tests::outbound::{self, parse_dsn, queue_empty, route};
use bridgehead_tests::postfix::Postfix;
use bridgehead_tests::{blocking, eventually, python, read_mailbox, Cluster, Options, Sink};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

async fn cluster() -> Cluster {
    let mut opts = Options::default();
    opts.transport.workers = 1;
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    c
}

/// Submits a UTF-8 message with the given MAIL parameters; argv: port, user, password,
/// recipient, parameters (comma-separated).
const SEND: &str = r#"
import smtplib, ssl, sys
port, user, password, rcpt, options = sys.argv[1:6]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL("127.0.0.1", int(port), context=ctx, timeout=20)
s.login(user, password)
msg = "From: <%s>\r\nTo: <%s>\r\nSubject: Grüße\r\n\r\nÄrger? Nein, Freude.\r\n" % (user, rcpt)
s.sendmail(user, [rcpt], msg.encode("utf-8"), mail_options=options.split(","),
           rcpt_options=["NOTIFY=FAILURE"])
s.quit()
"#;

async fn send(c: &Cluster, rcpt: &str, options: &str) {
    let port = c.submissions.port().to_string();
    let args = [
        port,
        ALICE.to_string(),
        PASS.to_string(),
        rcpt.to_string(),
        options.to_string(),
    ];
    blocking(move || python(SEND, &args.each_ref().map(String::as_str))).await;
}

/// The one message the peer received, as its JSON record.
async fn received_one(sink: &Sink) -> serde_json::Value {
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    serde_json::from_str(&got[0]).unwrap()
}

/// The report the sender got, parsed.
async fn report(c: &Cluster) -> serde_json::Value {
    let stored = eventually("a report to the sender", || async {
        read_mailbox(&c.store, ALICE, None).await.pop()
    })
    .await;
    parse_dsn(stored).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_mail_goes_with_body_8bitmime_or_fails_with_5_6_3() {
    let c = cluster().await;
    let sink = blocking(|| Sink::start(&[], false)).await;
    route(&c, "outside.example", sink.port, "none").await;
    send(&c, "friend@outside.example", "BODY=8BITMIME").await;
    let m = received_one(&sink).await;
    assert!(
        m["mail_options"].to_string().contains("BODY=8BITMIME"),
        "{m}"
    );
    assert!(m["data"].as_str().unwrap().contains("Ärger? Nein, Freude."));
    queue_empty(&c).await;

    let seven = blocking(|| Sink::start(&["--no-8bitmime"], false)).await;
    route(&c, "outside.example", seven.port, "none").await;
    send(&c, "friend@outside.example", "BODY=8BITMIME").await;
    let dsn = report(&c).await;
    assert_eq!(dsn["recipients"][0]["action"], "failed");
    assert_eq!(dsn["recipients"][0]["status"], "5.6.3");
    queue_empty(&c).await;
    assert!(
        seven.received().is_empty(),
        "nothing sent to the 7-bit peer"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtputf8_mail_goes_with_smtputf8_or_fails_with_5_6_7() {
    let c = cluster().await;
    let utf8 = blocking(|| Sink::start(&["--smtputf8"], false)).await;
    route(&c, "outside.example", utf8.port, "none").await;
    send(&c, "jörg@outside.example", "SMTPUTF8,BODY=8BITMIME").await;
    let m = received_one(&utf8).await;
    let options = m["mail_options"].to_string();
    assert!(
        options.contains("SMTPUTF8") && options.contains("BODY=8BITMIME"),
        "{m}"
    );
    assert_eq!(m["to"][0], "jörg@outside.example");
    assert!(m["data"].as_str().unwrap().contains("Subject: Grüße"));
    queue_empty(&c).await;

    let plain = blocking(|| Sink::start(&[], false)).await;
    route(&c, "outside.example", plain.port, "none").await;
    send(&c, "jörg@outside.example", "SMTPUTF8,BODY=8BITMIME").await;
    let dsn = report(&c).await;
    assert_eq!(dsn["recipients"][0]["action"], "failed");
    assert_eq!(dsn["recipients"][0]["status"], "5.6.7");
    queue_empty(&c).await;
    assert!(plain.received().is_empty(), "nothing sent without SMTPUTF8");
    c.stop().await;
}

/// A next hop that offers DSN (a real Postfix) is given NOTIFY=SUCCESS and reports the
/// delivery itself; Bridgehead does not report "relayed" on top (RFC 3461 §5.2.1): the sender
/// gets exactly one report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsn_capable_next_hop_alone_reports_success() {
    let c = cluster().await;
    let pf = blocking({
        let relay = c.smtp.port();
        move || Postfix::start("outside.example", relay)
    })
    .await;
    route(&c, "outside.example", pf.port, "none").await;
    outbound::submit(&c, ALICE, PASS, &["friend@outside.example"], "SUCCESS").await;
    let first = eventually("Postfix's report back to the sender", || async {
        read_mailbox(&c.store, ALICE, None).await.pop()
    })
    .await;
    assert_eq!(pf.delivered().len(), 1, "{}", pf.log());
    // Postfix's server offers CHUNKING: the message went to it as a BDAT, not with DATA.
    let log = pf.log();
    assert!(log.contains("< unknown[127.0.0.1]: BDAT "), "{log}");
    assert!(!log.contains("< unknown[127.0.0.1]: DATA"), "{log}");
    queue_empty(&c).await;
    // A second report would have come by now.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let reports = read_mailbox(&c.store, ALICE, None).await;
    assert_eq!(reports.len(), 1, "one report, not two");
    let dsn = parse_dsn(first).await;
    assert_eq!(dsn["recipients"][0]["action"], "delivered", "{dsn}");
    assert!(
        dsn["reporting_mta"]
            .as_str()
            .unwrap()
            .contains("peer.outside.example"),
        "{dsn}"
    );
    c.stop().await;
}

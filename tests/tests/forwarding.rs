//! Forwarded mail keeps authenticating: a message from outside to a contact and to a group
//! with an outside member leaves with an SRS envelope sender in our domain and with our ARC
//! set, which Python's dkimpy verifies (`arc_verify`) against a real DNS server (Knot) that
//! publishes the key `bridgehead admin dkim add` made; a bounce to the SRS address is taken
//! (null sender, any back-end) and goes on to the original sender; a forged or altered SRS
//! address is refused; an authenticated user's mail to the same contact keeps its sender.
use bridgehead_tests::dns::Dns;
use bridgehead_tests::outbound::{queue_empty, route, submit};
use bridgehead_tests::{admin_cli, blocking, python, read_mailbox, Cluster, Options, Sink};
use std::time::Duration;

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";
const SENDER: &str = "news@good.sender.test";

fn admin(c: &Cluster, args: &[&str]) -> String {
    admin_cli(env!("CARGO_BIN_EXE_bridgehead"), c, args)
}

/// `test.` with the sender's SPF (this client) and DMARC (reject), and `example.com` with
/// the records `admin dkim add` printed (split into 255-octet strings).
fn zones(printed: &str) -> (String, String) {
    let test = "$ORIGIN test.\n$TTL 60\n@ SOA ns.test. admin.test. 1 3600 600 86400 60\n@ NS ns\n\
        ns A 127.0.0.1\ngood.sender TXT \"v=spf1 ip4:127.0.0.1 -all\"\n\
        _dmarc.good.sender TXT \"v=DMARC1; p=reject\"\n"
        .to_string();
    let records: String = printed
        .lines()
        .filter_map(|l| l.trim().split_once(". IN TXT \""))
        .map(|(name, text)| {
            let parts: Vec<String> = text
                .trim_end_matches('"')
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect();
            format!("{name}. 60 IN TXT {}\n", parts.join(" "))
        })
        .collect();
    let example = format!(
        "$ORIGIN example.com.\n$TTL 60\n@ SOA ns.example.com. admin.example.com. 1 3600 600 86400 60\n\
         @ NS ns\nns A 127.0.0.1\n{records}"
    );
    (test, example)
}

/// Sends argv[4] (the message) from MAIL FROM argv[2] to the comma-separated argv[3] through
/// 127.0.0.1:argv[1] as an outside MTA; prints "250" or "<code> <text>".
const SEND: &str = r#"
import smtplib, sys
port, sender, rcpts, msg = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="mta.sender.test")
try:
    s.sendmail(sender, rcpts, msg.replace("\n", "\r\n").encode())
    print("250")
except smtplib.SMTPRecipientsRefused as e:
    code, text = list(e.recipients.values())[0]
    print(code, text.decode())
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

/// Verifies the ARC chain of the message in argv[2] with the DNS server on port argv[1];
/// prints the chain validation result (pass, fail, none) and the reason.
const ARC_VERIFY: &str = r#"
import dkim, dns.resolver, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = open(path, "rb").read()
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]; r.port = port
def dnsfunc(name, timeout=5):
    answer = r.resolve(name.decode().rstrip("."), "TXT")
    return b"".join(b"".join(rd.strings) for rd in answer)
cv, results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
print(cv.decode(), reason)
"#;

async fn send(c: &Cluster, sender: &str, rcpts: &[&str], msg: &str) -> String {
    let args = [
        c.smtp.port().to_string(),
        sender.to_string(),
        rcpts.join(","),
        msg.to_string(),
    ];
    blocking(move || python(SEND, &args.each_ref().map(String::as_str)))
        .await
        .trim()
        .to_string()
}

/// The sink's n-th message: (MAIL FROM, recipients, data with CRLF line ends).
fn nth(sink: &Sink, n: usize) -> (String, Vec<String>, String) {
    let got = sink.received();
    let m: serde_json::Value = serde_json::from_str(&got[n]).unwrap();
    let rcpts = m["to"].as_array().unwrap();
    let data = m["data"].as_str().unwrap().replace("\r\n", "\n");
    (
        m["from"].as_str().unwrap().to_string(),
        rcpts
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect(),
        data.replace('\n', "\r\n"),
    )
}

async fn arc_verify(dns: &Dns, data: String) -> String {
    let port = dns.addr.port().to_string();
    blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.eml");
        std::fs::write(&path, data).unwrap();
        python(ARC_VERIFY, &[&port, path.to_str().unwrap()])
    })
    .await
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_mail_is_rewritten_sealed_and_its_bounces_come_back() {
    let (test_zone, _) = zones("");
    let dns = blocking(move || Dns::start(&[("test", &test_zone)])).await;
    let mut opts = Options {
        check_mail_auth: true,
        ..Options::default()
    };
    opts.transport.dns_server = Some(dns.addr);
    opts.transport.workers = 1;
    opts.transport.dkim_keys_kept = Duration::ZERO;
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    let sink = blocking(|| Sink::start(&[], false)).await;
    route(&c, "dest.test", sink.port, "none").await;
    route(&c, "good.sender.test", sink.port, "none").await;
    admin(&c, &["contact", "add", "ext@example.com", "bob@dest.test"]);
    admin(&c, &["group", "add", "team@example.com"]);
    admin(&c, &["group", "member", "add", "team@example.com", ALICE]);
    admin(
        &c,
        &[
            "group",
            "member",
            "add",
            "team@example.com",
            "carol@dest.test",
        ],
    );
    let printed = admin(&c, &["dkim", "add", "example.com", "--selector", "fwd"]);
    let (test_zone, example_zone) = zones(&printed);
    let dns =
        blocking(move || dns.restart(&[("test", &test_zone), ("example.com", &example_zone)]))
            .await;

    // From outside (SPF passes for good.sender.test, which publishes p=reject) to a contact
    // and a group with a local and an outside member.
    let msg = format!(
        "From: News <{SENDER}>\nTo: ext@example.com, team@example.com\nSubject: forwarded\n\
         Message-ID: <fwd-1@sender.test>\n\nForward me.\n"
    );
    let reply = send(&c, SENDER, &["ext@example.com", "team@example.com"], &msg).await;
    assert_eq!(reply, "250");
    sink.wait_for(1).await;
    let (from, rcpts, data) = nth(&sink, 0);
    let mut rcpts = rcpts;
    rcpts.sort();
    assert_eq!(rcpts, ["bob@dest.test", "carol@dest.test"]);
    assert!(
        from.starts_with("SRS0=") && from.ends_with("=good.sender.test=news@example.com"),
        "the envelope sender is rewritten into our domain: {from}"
    );
    for name in [
        "ARC-Seal: i=1",
        "ARC-Message-Signature: i=1",
        "ARC-Authentication-Results: i=1",
    ] {
        assert!(data.contains(name), "{name} in {data}");
    }
    assert!(
        data.contains("spf=pass"),
        "what we saw is in the seal: {data}"
    );
    let verified = arc_verify(&dns, data.clone()).await;
    assert!(
        verified.starts_with("pass"),
        "{verified}\n{data}\n{}",
        dns.log()
    );
    // The local member's copy: our Authentication-Results, not the ARC set.
    let local = read_mailbox(&c.store, ALICE, None).await;
    let text = String::from_utf8_lossy(&local[0]).into_owned();
    assert!(
        text.contains("Authentication-Results: mx.test.example;") && !text.contains("ARC-Seal"),
        "{text}"
    );

    // The next hop bounces to the SRS address: taken, and sent on to the original sender.
    let bounce = "From: MAILER-DAEMON@dest.test\nTo: whom it may concern\nSubject: Undelivered\n\nNo such user.\n";
    assert_eq!(send(&c, "", &[&from], bounce).await, "250");
    sink.wait_for(2).await;
    let (bfrom, brcpts, _) = nth(&sink, 1);
    assert_eq!((bfrom.as_str(), brcpts), ("<>", vec![SENDER.to_string()]));

    // Forged: another hash, another sender under the same hash, or not SRS at all.
    let forged = from.replacen("SRS0=", "SRS0=x", 1);
    let altered = from.replace("=news@", "=ceo@");
    for bad in [
        forged,
        altered,
        "SRS0=abcd=AA=victim.test=x@example.com".to_string(),
    ] {
        let reply = send(&c, "", &[&bad], bounce).await;
        assert!(reply.starts_with("550"), "{bad}: {reply}");
    }

    // An authenticated user's mail to the contact keeps its sender (ours to sign, not to
    // rewrite) and carries no ARC set.
    submit(&c, ALICE, PASS, &["ext@example.com"], "NEVER").await;
    sink.wait_for(3).await;
    let (afrom, _, adata) = nth(&sink, 2);
    assert_eq!(afrom, ALICE);
    assert!(!adata.contains("ARC-Seal"), "{adata}");
    queue_empty(&c).await;
    c.stop().await;
}

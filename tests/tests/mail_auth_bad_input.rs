//! Mail authentication against hostile input, each through port 25 with a real DNS server
//! (Knot) or one that never answers, and each ending in the RFC's result — never a panic, a
//! hang or a refusal the RFC says not to make: a malformed DKIM-Signature (permerror), one
//! whose h= lists 20,000 fields, a key record of 3 KB that is no key, a signature made with a
//! 512-bit RSA key (RFC 8301 §3.2: never valid, so a p=reject author is refused), a TXT answer
//! of 20 KB (fetched over TCP; SPF passes), a CNAME loop for a key record, and a DNS server
//! that never answers (451 4.7.0 within the checks' time bound; delivered for a domain that
//! asked for reports only).
use bridgehead_tests::dns::Dns;
use bridgehead_tests::{admin_cli, blocking, last_header, python, read_mailbox, Cluster, Options};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.com";

/// Prints a 512-bit RSA key: the public key (DER, base64) and the private key (PEM, base64).
const SHORT_KEY: &str = r#"
import base64, subprocess
pem = subprocess.run(["openssl", "genrsa", "512"], capture_output=True, check=True).stdout
der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem,
                     capture_output=True, check=True).stdout
print(base64.b64encode(der).decode(), base64.b64encode(pem).decode())
"#;

/// Sends the message in argv[4] (LF line ends) from argv[2] to argv[3] through
/// 127.0.0.1:argv[1]; argv[5], when given, is a PEM (base64) to sign it with as
/// d=weak.sender.test s=short. Prints "250" or "<code> <text>".
const SEND: &str = r#"
import base64, dkim, smtplib, sys
port, sender, rcpt, msg = sys.argv[1:5]
msg = msg.replace("\n", "\r\n").encode()
if len(sys.argv) > 5:
    msg = dkim.sign(msg, b"short", b"weak.sender.test", base64.b64decode(sys.argv[5]),
                    include_headers=[b"from", b"subject"]) + msg
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="mta.sender.test", timeout=60)
try:
    s.sendmail(sender, [rcpt], msg)
    print("250")
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

fn zone(short_public: &str) -> String {
    // 80 strings of 250 octets: a 20 KB answer, beyond any UDP payload.
    let filler: Vec<String> = (0..80)
        .map(|i| format!("\"{i:03}{}\"", "x".repeat(247)))
        .collect();
    let garbage = "QUFB".repeat(750);
    let garbage: Vec<String> = format!("v=DKIM1; k=rsa; p={garbage}")
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "$ORIGIN test.
$TTL 60
@                       SOA ns.test. admin.test. 1 3600 600 86400 60
@                       NS  ns
ns                      A   127.0.0.1
$ORIGIN sender.test.
lax                     TXT \"v=spf1 -all\"
_dmarc.lax              TXT \"v=DMARC1; p=none\"
big._domainkey.lax      TXT {garbage}
a._domainkey.lax        CNAME b._domainkey.lax
b._domainkey.lax        CNAME a._domainkey.lax
weak                    TXT \"v=spf1 -all\"
_dmarc.weak             TXT \"v=DMARC1; p=reject\"
short._domainkey.weak   TXT \"v=DKIM1; k=rsa; p={short_public}\"
huge                    TXT \"v=spf1 ip4:127.0.0.1 -all\"
huge                    TXT {filler}
_dmarc.huge             TXT \"v=DMARC1; p=reject\"
",
        filler = filler.join(" "),
        garbage = garbage.join(" ")
    )
}

async fn send(c: &Cluster, sender: &str, msg: &str, key: Option<&str>) -> String {
    let mut args = vec![
        c.smtp.port().to_string(),
        sender.to_string(),
        ALICE.to_string(),
        msg.to_string(),
    ];
    args.extend(key.map(str::to_string));
    blocking(move || python(SEND, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .trim()
        .to_string()
}

/// The Authentication-Results header of the newest message in Alice's mailbox, unfolded.
async fn last_results(c: &Cluster) -> String {
    last_header(c, ALICE, "Authentication-Results").await
}

async fn cluster(dns: std::net::SocketAddr) -> Cluster {
    let mut opts = Options {
        check_mail_auth: true,
        ..Options::default()
    };
    opts.transport.dns_server = Some(dns);
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, "alice's password").await;
    c
}

fn message(from: &str, extra_header: &str) -> String {
    format!("{extra_header}From: {from}\nTo: {ALICE}\nSubject: hostile\n\nHello.\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_signatures_keys_and_answers_get_the_rfc_result() {
    let keys = blocking(|| python(SHORT_KEY, &[])).await;
    let keys: Vec<String> = keys.split_whitespace().map(str::to_string).collect();
    let z = zone(&keys[0]);
    let dns = blocking(move || Dns::start(&[("test", &z)])).await;
    let c = cluster(dns.addr).await;
    let lax = "x@lax.sender.test";

    let malformed = "DKIM-Signature: v=1; a=rsa-sha256; d=; s=; h=; bh=%%%; b=!!!\n";
    // Folded, as a signer must (lines of at most 998 octets): 100 KB of header.
    let fields: Vec<String> = (0..200).map(|_| vec!["from"; 100].join(":")).collect();
    let giant = format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=lax.sender.test; s=big;\n h={}; bh=AAAA; b=AAAA\n",
        fields.join(":\n ")
    );
    let looping =
        "DKIM-Signature: v=1; a=rsa-sha256; d=lax.sender.test; s=a; h=from; bh=AAAA; b=AAAA\n";
    for (what, header, want) in [
        ("malformed", malformed.to_string(), "dkim=permerror"),
        ("20,000 h= fields, a 3 KB key that is none", giant, "dkim="),
        ("a CNAME loop for the key", looping.to_string(), "dkim="),
    ] {
        let started = Instant::now();
        let reply = send(&c, lax, &message(lax, &header), None).await;
        assert_eq!(reply, "250", "{what}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} took {:?}",
            started.elapsed()
        );
        let ar = last_results(&c).await;
        assert!(
            ar.contains(want) && !ar.contains("dkim=pass"),
            "{what}: {ar}"
        );
        assert!(ar.contains("dmarc=fail"), "{what}: {ar}");
    }

    // Signed with a 512-bit key: mail-auth verifies it, RFC 8301 says never valid; the
    // author publishes p=reject, so without a valid signature the message is refused.
    let weak = "a@weak.sender.test";
    let reply = send(&c, weak, &message(weak, ""), Some(&keys[1])).await;
    assert!(reply.starts_with("550 5.7.1"), "{reply}");

    // SPF from a 20 KB TXT answer (truncated over UDP, fetched over TCP): pass, and DMARC
    // passes on it.
    let huge = "a@huge.sender.test";
    assert_eq!(send(&c, huge, &message(huge, ""), None).await, "250");
    let ar = last_results(&c).await;
    assert!(ar.contains("spf=pass") && ar.contains("dmarc=pass"), "{ar}");
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 4);
    c.stop().await;
}

/// A DNS server that never answers: the checks end within their bound and the sender is told
/// to try later (451 4.7.0), never refused for good; a domain that asked for reports only
/// gets the message, marked as unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dns_server_defers_within_the_bound() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = cluster(silent.local_addr().unwrap()).await;
    let sender = "a@nowhere.sender.test";
    let started = Instant::now();
    let reply = send(&c, sender, &message(sender, ""), None).await;
    let took = started.elapsed();
    assert!(reply.starts_with("451 4.7.0"), "{reply}");
    assert!(took < Duration::from_secs(25), "took {took:?}");
    admin_cli(
        env!("CARGO_BIN_EXE_bridgehead"),
        &c,
        &["domain", "auth", "example.com", "--dmarc", "report"],
    );
    assert_eq!(send(&c, sender, &message(sender, ""), None).await, "250");
    let ar = last_results(&c).await;
    assert!(ar.contains("none") || ar.contains("temperror"), "{ar}");
    drop(silent);
    c.stop().await;
}

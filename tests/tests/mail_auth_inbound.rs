//! Mail authentication of inbound mail against a real DNS server (Knot on loopback) and real
//! outside parts: Python's smtplib as the sending MTA on port 25, dkimpy signing with an
//! Ed25519 key whose record the DNS server publishes. Checked: SPF pass → DMARC pass; a
//! spoofed author domain with `p=reject` refused with 550 5.7.1 and nothing stored; the
//! same with `p=none` delivered with dmarc=fail recorded, with `p=quarantine` delivered marked;
//! the author domain's DNS failing → 451 4.7.0; SPF failing but an aligned DKIM
//! signature passing DMARC; a signed body changed in transit → dkim=fail; a forged header
//! claiming our checks renamed (RFC 8601 §5); an ARC set sealed by dkimpy verified, overriding
//! a DMARC failure only for a trusted sealer; authenticated submission not checked at all;
//! SPF's softfail, neutral, none, temperror and permerror (include loop, > 10 lookups)
//! recorded without refusing.
use bridgehead_tests::dns::Dns;
use bridgehead_tests::outbound::submit;
use bridgehead_tests::{admin_cli, blocking, last_header, python, read_mailbox, Cluster, Options};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

/// Prints fresh keys: an Ed25519 seed and public key, and an RSA public key (DER, base64) and
/// private key (PEM, itself base64 to fit one word), all on one line.
const KEYGEN: &str = r#"
import base64, subprocess, nacl.signing
k = nacl.signing.SigningKey.generate()
pem = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout
der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem,
                     capture_output=True, check=True).stdout
b = lambda x: base64.b64encode(x).decode()
print(b(bytes(k)), b(bytes(k.verify_key)), b(der), b(pem))
"#;

/// Sends one message to 127.0.0.1:argv[1] as an MTA would: MAIL FROM argv[2], From: argv[3],
/// to argv[4]; signed with DKIM (d = the From domain, s=sel, Ed25519 seed argv[5]) unless
/// argv[5] is "-"; argv[6] = "tamper" changes the body after signing, "forge" adds a
/// header claiming the receiver's checks passed, "arc:<sealer domain>:<RSA PEM, base64>" has
/// the message sealed by an intermediary (ARC set, i=1, s=arc). Prints the reply to the end of
/// DATA: "250" or "<code> <text>"; "sha1:<RSA PEM, base64>" signs with rsa-sha1 (d = the
/// From domain, s=arc).
const SEND: &str = r#"
import base64, dkim, smtplib, sys
port, sender, author, rcpt, seed = sys.argv[1:6]
msg = ("From: " + author + "\r\nTo: " + rcpt + "\r\nSubject: inbound check\r\n"
       "Message-ID: <" + sender.replace("@", ".") + "@test>\r\n\r\nHello from outside.\r\n").encode()
if seed != "-":
    domain = author.split("@")[1].encode()
    sig = dkim.sign(msg, b"sel", domain, seed.encode(), signature_algorithm=b"ed25519-sha256",
                    include_headers=[b"from", b"to", b"subject", b"message-id"])
    msg = sig + msg
mode = sys.argv[6] if len(sys.argv) > 6 else ""
if mode == "tamper":
    msg = msg.replace(b"Hello from outside.", b"Hello from inside!")
if mode.startswith("arc:"):
    _, sealer, pem = mode.split(":")
    pem, relay = base64.b64decode(pem), ("relay." + sealer).encode()
    msg = b"Authentication-Results: " + relay + b"; spf=pass smtp.mailfrom=" + sender.encode() + b"\r\n" + msg
    seal = dkim.arc_sign(msg, b"arc", sealer.encode(), pem, relay)
    msg = b"".join(seal) + msg
if mode.startswith("sha1:"):
    pem, domain = base64.b64decode(mode[5:]), author.split("@")[1].encode()
    msg = dkim.sign(msg, b"arc", domain, pem, signature_algorithm=b"rsa-sha1",
                    include_headers=[b"from", b"to", b"subject"]) + msg
if mode == "forge":
    msg = b"Authentication-Results: mx.test.example; dmarc=pass header.from=bank.test\r\n" + msg
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.sender.test")
try:
    s.sendmail(sender, [rcpt], msg)
    print("250")
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

/// The zone is the whole of `test.`, so that DMARC's walk up the tree (to `_dmarc.test`)
/// gets NXDOMAIN from an authoritative server, as on the internet.
fn zone(dkim_public: &str, rsa_public: &str) -> String {
    let record = format!("v=DKIM1; k=rsa; p={rsa_public}");
    let rsa_public: Vec<String> = record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    let rsa_public = rsa_public.join(" ");
    format!(
        "$ORIGIN test.
$TTL 60
@                     SOA ns.test. admin.test. 1 3600 600 86400 60
@                     NS  ns
ns                    A   127.0.0.1
$ORIGIN sender.test.
good                  TXT \"v=spf1 ip4:127.0.0.1 -all\"
_dmarc.good           TXT \"v=DMARC1; p=reject\"
spoof                 TXT \"v=spf1 -all\"
_dmarc.spoof          TXT \"v=DMARC1; p=reject\"
lax                   TXT \"v=spf1 -all\"
_dmarc.lax            TXT \"v=DMARC1; p=none\"
quar                  TXT \"v=spf1 -all\"
soft                  TXT \"v=spf1 ~all\"
neutral               TXT \"v=spf1 ?all\"
loop                  TXT \"v=spf1 include:loop.sender.test -all\"
many                  TXT \"v=spf1 a:h1.sender.test a:h2.sender.test a:h3.sender.test a:h4.sender.test a:h5.sender.test a:h6.sender.test a:h7.sender.test a:h8.sender.test a:h9.sender.test a:h10.sender.test a:h11.sender.test a:h12.sender.test -all\"
nospf                 A   192.0.2.1
_dmarc.quar           TXT \"v=DMARC1; p=quarantine\"
signed                TXT \"v=spf1 -all\"
_dmarc.signed         TXT \"v=DMARC1; p=reject\"
sel._domainkey.signed TXT \"v=DKIM1; k=ed25519; p={dkim_public}\"
arc._domainkey.signed TXT {rsa_public}
arc._domainkey.lax    TXT {rsa_public}
"
    )
}

/// One message through port 25; the reply to its end of DATA.
async fn send(c: &Cluster, sender: &str, author: &str, seed: &str, mode: &str) -> String {
    let mut args = vec![
        c.smtp.port().to_string(),
        sender.to_string(),
        author.to_string(),
        ALICE.to_string(),
        seed.to_string(),
    ];
    if !mode.is_empty() {
        args.push(mode.into());
    }
    blocking(move || python(SEND, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .trim()
        .to_string()
}

/// The Authentication-Results header of the newest message in Alice's mailbox, unfolded.
async fn last_results(c: &Cluster) -> String {
    last_header(c, ALICE, "Authentication-Results").await
}

/// Keys, the DNS server with the test zones, and a cluster checking mail against it (trusting
/// the ARC sealer signed.sender.test): (Ed25519 seed, RSA PEM as base64, DNS, cluster).
async fn setup() -> (String, String, Dns, Cluster) {
    let keys = blocking(|| python(KEYGEN, &[])).await;
    let keys: Vec<&str> = keys.split_whitespace().collect();
    let (seed, zone, rsa_pem) = (keys[0].to_string(), zone(keys[1], keys[2]), keys[3]);
    let dns = blocking(move || Dns::start(&[("test", &zone), ("broken.test", "")])).await;
    let mut opts = Options {
        check_mail_auth: true,
        trusted_arc_sealers: vec!["signed.sender.test".into()],
        ..Options::default()
    };
    opts.transport.dns_server = Some(dns.addr);
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    (seed, rsa_pem.to_string(), dns, c)
}

/// SPF's results from zone records, each recorded without refusing what the RFC says to
/// accept (the author domain publishes p=none): softfail, neutral, temperror (SERVFAIL), and
/// permerror for an include loop and for more than 10 DNS mechanisms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_results_from_zone_records() {
    let (_, _, _dns, c) = setup().await;
    let author = "x@lax.sender.test";
    for (sender, want) in [
        ("a@soft.sender.test", "spf=softfail"),
        ("a@neutral.sender.test", "spf=neutral"),
        ("a@mail.broken.test", "spf=temperror"),
        ("a@loop.sender.test", "spf=permerror"),
        ("a@many.sender.test", "spf=permerror"),
        ("a@nospf.sender.test", "spf=none"),
    ] {
        assert_eq!(send(&c, sender, author, "-", "").await, "250", "{sender}");
        let ar = last_results(&c).await;
        assert!(ar.contains(want), "{sender}: {ar}");
        assert!(ar.contains("dmarc=fail"), "{sender}: {ar}");
    }
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 6);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_dkim_and_dmarc_are_checked_and_p_reject_is_enforced() {
    let (seed, rsa_pem, _dns, c) = setup().await;

    // The sender's SPF lists this client: aligned SPF pass, DMARC pass. The message also
    // carries a forged claim of our checks: renamed, ours is the only one.
    let (good, forge) = ("news@good.sender.test", "forge");
    let reply = send(&c, good, good, "-", forge).await;
    assert_eq!(reply, "250");
    let messages = read_mailbox(&c.store, ALICE, None).await;
    let text = String::from_utf8_lossy(&messages[0]).into_owned();
    let ours = "\r\nAuthentication-Results: mx.test.example;";
    assert_eq!(text.matches(ours).count(), 1, "{text}");
    let renamed = "\r\nX-Forged-Authentication-Results: mx.test.example; dmarc=pass";
    assert!(text.contains(renamed), "{text}");
    let ar = last_results(&c).await;
    assert!(
        ar.starts_with("Authentication-Results: mx.test.example;"),
        "{ar}"
    );
    assert!(ar.contains("spf=pass"), "{ar}");
    assert!(ar.contains("dmarc=pass"), "{ar}");
    assert!(ar.contains("header.from=good.sender.test"), "{ar}");

    // A forged author domain that publishes p=reject: refused, nothing stored.
    let reply = send(
        &c,
        "ceo@spoof.sender.test",
        "ceo@spoof.sender.test",
        "-",
        "",
    )
    .await;
    assert!(
        reply.starts_with("550 5.7.1"),
        "{reply} {}",
        last_results(&c).await
    );
    assert!(reply.contains("spoof.sender.test"), "{reply}");
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 1);
    assert!(
        c.backend_metric("bridgehead_backend_mail_auth_checks_total{result=\"rejected\"}") >= 1
    );

    // The same failure under p=none: delivered, the failure recorded.
    let reply = send(&c, "x@lax.sender.test", "x@lax.sender.test", "-", "").await;
    assert_eq!(reply, "250");
    let ar = last_results(&c).await;
    assert!(ar.contains("spf=fail"), "{ar}");
    assert!(ar.contains("dmarc=fail"), "{ar}");

    // SPF fails, but an aligned DKIM signature (Ed25519, made by dkimpy) passes DMARC.
    let reply = send(
        &c,
        "a@signed.sender.test",
        "a@signed.sender.test",
        &seed,
        "",
    )
    .await;
    assert_eq!(reply, "250");
    let ar = last_results(&c).await;
    assert!(ar.contains("dkim=pass"), "{ar}");
    assert!(ar.contains("header.i=@signed.sender.test"), "{ar}");
    assert!(ar.contains("dmarc=pass"), "{ar}");

    // Signed with rsa-sha1 (RFC 8301: never valid): DKIM counts for nothing, p=reject refuses.
    let sha1 = format!("sha1:{rsa_pem}");
    let reply = send(
        &c,
        "a@signed.sender.test",
        "a@signed.sender.test",
        "-",
        &sha1,
    )
    .await;
    assert!(reply.starts_with("550 5.7.1"), "{reply}");

    // The signed body changed on the way: DKIM fails, and so DMARC with p=reject refuses.
    let reply = send(
        &c,
        "a@signed.sender.test",
        "a@signed.sender.test",
        &seed,
        "tamper",
    )
    .await;
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 3);

    // p=quarantine failing: delivered, marked for a filter or client to act on.
    let quar = "q@quar.sender.test";
    assert_eq!(send(&c, quar, quar, "-", "").await, "250");
    let messages = read_mailbox(&c.store, ALICE, None).await;
    let text = String::from_utf8_lossy(messages.last().unwrap()).into_owned();
    assert!(
        text.contains("\r\nX-Bridgehead-Spam: dmarc-quarantine\r\n"),
        "{text}"
    );
    assert!(last_results(&c).await.contains("dmarc=fail"));

    // The author domain's DNS fails (SERVFAIL): try later, never a refusal for good.
    let broken = "b@mail.broken.test";
    let reply = send(&c, broken, broken, "-", "").await;
    assert!(reply.starts_with("451 4.7.0"), "{reply}");
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 4);

    // Sealed by an intermediary (ARC, RSA, made by dkimpy): the chain is checked and recorded.
    let trusted = format!("arc:signed.sender.test:{rsa_pem}");
    let untrusted = format!("arc:lax.sender.test:{rsa_pem}");
    let lax = "y@lax.sender.test";
    assert_eq!(send(&c, lax, lax, "-", &untrusted).await, "250");
    let ar = last_results(&c).await;
    assert!(ar.contains("arc=pass"), "{ar}");

    // A p=reject failure passed on by a sealer the operator does not trust: still refused.
    let spoof = "list@spoof.sender.test";
    let reply = send(&c, spoof, spoof, "-", &untrusted).await;
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    // By a trusted sealer (a mailing list, a forwarder): delivered, the override recorded.
    assert_eq!(send(&c, spoof, spoof, "-", &trusted).await, "250");
    let ar = last_results(&c).await;
    assert!(ar.contains("arc=pass") && ar.contains("dmarc=fail"), "{ar}");
    assert!(
        ar.contains("(policy overridden: trusted ARC sealer signed.sender.test)"),
        "{ar}"
    );

    // Authenticated submission is ours to sign, not to judge: no header, not refused.
    submit(&c, ALICE, PASS, &[ALICE], "NEVER").await;
    let messages = read_mailbox(&c.store, ALICE, None).await;
    assert_eq!(messages.len(), 7);
    let own = String::from_utf8_lossy(messages.last().unwrap()).into_owned();
    assert!(!own.contains("Authentication-Results:"), "{own}");
    c.stop().await;
}

/// `bridgehead admin domain auth`: a receiving domain may have DMARC failures only marked
/// (quarantine) or only recorded (report), where a DNS failure no longer defers either, or
/// have no checks at all; an unknown domain or mode is refused with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_can_turn_enforcement_down() {
    let (_, _, _dns, c) = setup().await;
    let bin = env!("CARGO_BIN_EXE_bridgehead");
    let admin = |args: &[&str]| {
        let mut all = vec!["domain", "auth", "example.com"];
        all.extend_from_slice(args);
        admin_cli(bin, &c, &all).trim().to_string()
    };
    assert_eq!(admin(&[]), "example.com\tchecks on\tdmarc enforce");
    let (spoof, broken) = ("ceo@spoof.sender.test", "b@mail.broken.test");
    assert!(send(&c, spoof, spoof, "-", "")
        .await
        .starts_with("550 5.7.1"));

    // quarantine: the p=reject failure is delivered, marked.
    let shown = admin(&["--dmarc", "quarantine"]);
    assert_eq!(shown, "example.com\tchecks on\tdmarc quarantine");
    assert_eq!(send(&c, spoof, spoof, "-", "").await, "250");
    let text = last_message(&c).await;
    assert!(
        text.contains("\r\nX-Bridgehead-Spam: dmarc-quarantine\r\n"),
        "{text}"
    );
    let ar = last_results(&c).await;
    assert!(
        ar.contains("dmarc=fail") && ar.contains("(local policy: quarantine"),
        "{ar}"
    );

    // report: recorded only, and a DNS failure is no reason to defer.
    admin(&["--dmarc", "report"]);
    assert_eq!(send(&c, spoof, spoof, "-", "").await, "250");
    assert!(!last_message(&c).await.contains("X-Bridgehead-Spam"));
    assert!(last_results(&c).await.contains("dmarc=fail"));
    assert_eq!(send(&c, broken, broken, "-", "").await, "250");
    assert!(last_results(&c).await.contains("dmarc=temperror"));

    // No checks: no header of ours at all.
    assert_eq!(
        admin(&["--checks", "off"]),
        "example.com\tchecks off\tdmarc report"
    );
    assert_eq!(send(&c, spoof, spoof, "-", "").await, "250");
    assert!(!last_message(&c).await.contains("Authentication-Results"));
    assert_eq!(read_mailbox(&c.store, ALICE, None).await.len(), 4);

    // Back on: enforced again.
    admin(&["--checks", "on", "--dmarc", "enforce"]);
    assert!(send(&c, spoof, spoof, "-", "")
        .await
        .starts_with("550 5.7.1"));
    for (args, says) in [
        (vec!["domain", "auth", "nowhere.example"], "nowhere.example"),
        (
            vec!["domain", "auth", "example.com", "--dmarc", "strict"],
            "enforce, quarantine, report",
        ),
    ] {
        let out = std::process::Command::new(bin)
            .args(["admin", "--url", &format!("http://{}", c.backend_addr)])
            .args(["--token", bridgehead_tests::ADMIN_TOKEN])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
    c.stop().await;
}

/// The newest message in Alice's mailbox.
async fn last_message(c: &Cluster) -> String {
    let messages = read_mailbox(&c.store, ALICE, None).await;
    String::from_utf8_lossy(messages.last().expect("a message")).into_owned()
}

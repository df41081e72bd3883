//! DKIM signing of outgoing mail, checked by an outside verifier: keys made with
//! `bridgehead admin dkim`, their records published on a real DNS server (Knot), mail sent
//! through the queue to a peer, and every signature verified by Python's dkimpy asking that
//! server — RSA and Ed25519 (dual signing), a body changed after signing failing, and a
//! rotation (new keys published, activated, then signing).
use bridgehead_tests::dns::Dns;
use bridgehead_tests::outbound::{queue_empty, route, submit};
use bridgehead_tests::{admin_cli, blocking, python, Cluster, Options, Sink};
use std::time::Duration;

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

fn admin(c: &Cluster, args: &[&str]) -> String {
    admin_cli(env!("CARGO_BIN_EXE_bridgehead"), c, args)
}

/// The zone lines the admin printed (`name. IN TXT "…"`), split into 255-octet strings.
fn records(printed: &str) -> String {
    printed
        .lines()
        .filter_map(|l| l.trim().split_once(". IN TXT \""))
        .map(|(name, text)| {
            let text = text.trim_end_matches('"');
            let parts: Vec<String> = text
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect();
            format!("{name}. 60 IN TXT {}\n", parts.join(" "))
        })
        .collect()
}

fn zone(records: &str) -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 60\n@ SOA ns.example.com. admin.example.com. 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n{records}"
    )
}

/// Verifies every DKIM signature of the message in argv[2] with the DNS server on port
/// argv[1]; prints "selector result" per signature. argv[3] = "tamper" changes the body first.
const VERIFY: &str = r#"
import dkim, dns.resolver, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = open(path, "rb").read()
if len(sys.argv) > 3:
    msg = msg.replace(b"Hello out there.", b"Hello out there!")
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]; r.port = port
def dnsfunc(name, timeout=5):
    answer = r.resolve(name.decode().rstrip("."), "TXT")
    return b"".join(b"".join(rd.strings) for rd in answer)
d = dkim.DKIM(msg)
count = len([l for l in msg.split(b"\r\n") if l.lower().startswith(b"dkim-signature:")])
for i in range(count):
    sig = dkim.util.parse_tag_value(d.headers[[k for k, (n, v) in enumerate(d.headers) if n.lower() == b"dkim-signature"][i]][1])
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.ValidationError:
        ok = False
    print(sig[b"s"].decode(), sig[b"a"].decode(), ok)
"#;

/// Each signature of the message the sink got last: (selector, algorithm, verified).
async fn verify(sink: &Sink, dns: &Dns, tamper: bool) -> Vec<(String, String, bool)> {
    let got = sink.received();
    let m: serde_json::Value = serde_json::from_str(got.last().unwrap()).unwrap();
    let data = m["data"]
        .as_str()
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let port = dns.addr.port().to_string();
    let out = blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.eml");
        std::fs::write(&path, data).unwrap();
        let mut args = vec![port, path.display().to_string()];
        if tamper {
            args.push("tamper".into());
        }
        python(VERIFY, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await;
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string(), f[2] == "True")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_mail_is_signed_and_verifies_outside_also_after_a_rotation() {
    let mut opts = Options::default();
    opts.transport.workers = 1;
    opts.transport.dkim_keys_kept = Duration::ZERO;
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    let sink = blocking(|| Sink::start(&[], false)).await;
    route(&c, "outside.example", sink.port, "none").await;
    let mut published = records(&admin(
        &c,
        &["dkim", "add", "example.com", "--selector", "r1"],
    ));
    published += &records(&admin(
        &c,
        &[
            "dkim",
            "add",
            "example.com",
            "--selector",
            "e1",
            "--algorithm",
            "ed25519",
        ],
    ));
    let dns = blocking({
        let z = zone(&published);
        move || Dns::start(&[("example.com", &z)])
    })
    .await;
    submit(&c, ALICE, PASS, &["friend@outside.example"], "FAILURE").await;
    sink.wait_for(1).await;
    let mut sigs = verify(&sink, &dns, false).await;
    sigs.sort();
    assert_eq!(
        sigs,
        [
            ("e1".into(), "ed25519-sha256".into(), true),
            ("r1".into(), "rsa-sha256".into(), true)
        ],
        "{}",
        dns.log()
    );
    let tampered = verify(&sink, &dns, true).await;
    assert!(
        tampered.iter().all(|s| !s.2),
        "a changed body fails: {tampered:?}"
    );

    // Rotation: new keys that do not sign yet; published; activated; then they sign.
    let rotated = admin(&c, &["dkim", "rotate", "example.com", "--selector", "r2"]);
    published += &records(&rotated);
    let listed = admin(&c, &["dkim", "list", "example.com"]);
    assert!(
        listed.contains("r2\trsa\tnext") && listed.contains("r1\trsa\tactive"),
        "{listed}"
    );
    drop(dns);
    let dns = blocking({
        let z = zone(&published);
        move || Dns::start(&[("example.com", &z)])
    })
    .await;
    admin(&c, &["dkim", "activate", "example.com"]);
    let listed = admin(&c, &["dkim", "list", "example.com"]);
    assert!(
        listed.contains("r1\trsa\tretired") && listed.contains("r2\trsa\tactive"),
        "{listed}"
    );
    submit(&c, ALICE, PASS, &["friend@outside.example"], "FAILURE").await;
    sink.wait_for(2).await;
    let sigs = verify(&sink, &dns, false).await;
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    assert!(
        sigs.iter().all(|s| s.0.starts_with("r2") && s.2),
        "{sigs:?}"
    );
    queue_empty(&c).await;
    admin(&c, &["dkim", "remove", "example.com", "r1"]);
    assert!(!admin(&c, &["dkim", "list"]).contains("\tr1\t"));
    c.stop().await;
}

//! DANE (RFC 7672) on the outbound path, with real parts: zones signed by `ldns-signzone`
//! and served by Knot, a private unbound validating them with the test's trust anchors (the
//! back-end's `--dane-resolver`), and aiosmtpd next hops — one with a certificate from a
//! test CA (presenting the CA too), one without STARTTLS — on the same port of two loopback
//! addresses. Cases: a DANE-EE match and a DANE-TA match → delivered over TLS; a TLSA
//! mismatch, a DANE-TA anchor whose chain does not name the host, STARTTLS missing where
//! TLSA records are secure (also when they are all unusable) → deferred 4.7.5, nothing sent;
//! a zone with expired signatures and one signed by an untrusted key (bogus: SERVFAIL) →
//! deferred, never "no DANE", though their records match; an unsigned zone's TLSA records →
//! ignored (delivered without TLS, as without DANE); a route with `--tls dane` to a host
//! without TLSA records → deferred. A message with `TLS-Required: No` (RFC 8689 §5) to the
//! mismatched and the bogus domain → delivered, the policies waived.
//!
//! TLS-RPT (RFC 8460) on the same sessions, with a two-second reporting period: the domains
//! that publish `_smtp._tls` get their reports in a local mailbox — `multipart/report;
//! report-type=tlsrpt`, the JSON gzipped, valid against the RFC's schema
//! (tests/support/tlsrpt.schema.json, checked by Python's jsonschema) — with the right
//! counts and result types; `admin tls report` shows the same failures.
use bridgehead_backend::store::Route;
use bridgehead_tests::dns::Dns;
use bridgehead_tests::dnssec::{sign, Signing, Validator, Zone};
use bridgehead_tests::outbound::{queue_errors, submit};
use bridgehead_tests::{admin_cli, blocking, eventually, python, read_mailbox};
use bridgehead_tests::{Cluster, Options, Sink};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PublicKeyData};
use std::collections::BTreeMap;
use std::path::Path;

const ALICE: &str = "alice@example.com";
const REPORTS: &str = "tlsrpt@example.com";
const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");

/// Reads a TLS report mail (argv[1]) and prints {domain, report}, after checking its form
/// and its JSON against the schema (argv[2]).
const PARSE_REPORT: &str = r#"
import email, gzip, json, sys, jsonschema
from email import policy
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=policy.compat32)
assert msg.get_content_type() == "multipart/report", msg.get_content_type()
assert msg.get_param("report-type") == "tlsrpt", msg.get_param("report-type")
part = [p for p in msg.get_payload() if p.get_content_type() == "application/tlsrpt+gzip"][0]
assert part.get_filename().endswith(".json.gz"), part.get_filename()
report = json.loads(gzip.decompress(part.get_payload(decode=True)))
jsonschema.validate(report, json.load(open(sys.argv[2])))
assert msg["Subject"].startswith("Report Domain: " + msg["TLS-Report-Domain"]), msg["Subject"]
print(json.dumps({"domain": msg["TLS-Report-Domain"], "report": report}))
"#;
const PASS: &str = "alice's password";

fn hex_sha256(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the zones publish: digests of the sink's key, of another key, of the CA.
struct Digests {
    leaf_key: String,
    other_key: String,
    ca: String,
}

/// A CA and a leaf it signed (for the MX names of the cases that should pass), written as
/// `dir/chain.pem` (leaf, then CA) and `dir/leaf.key`.
fn pki(dir: &Path) -> Digests {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names = ["mx.ee.dane.test", "mx.ta.dane.test"];
    let leaf = CertificateParams::new(names.map(String::from).to_vec())
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("chain.pem"), format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(dir.join("leaf.key"), key.serialize_pem()).unwrap();
    Digests {
        leaf_key: hex_sha256(&key.subject_public_key_info()),
        other_key: hex_sha256(&KeyPair::generate().unwrap().subject_public_key_info()),
        ca: hex_sha256(ca.der()),
    }
}

const HEAD: &str = "$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n";

/// Zone lines: `owner`'s MX host `mx` at `ip`, with the TLSA record `tlsa`.
fn mx(owner: &str, mx: &str, ip: &str, tlsa: &str) -> String {
    format!("{owner} MX 10 {mx}\n{mx} A {ip}\n_25._tcp.{mx} TLSA {tlsa}\n")
}

/// Zone lines for the domain `label`.dane.test, its MX host mx.`label`.
fn host(label: &str, ip: &str, tlsa: &str) -> String {
    mx(label, &format!("mx.{label}"), ip, tlsa)
}

/// Zone lines for `label`.dane.test whose MX host's TLSA name is a CNAME to the MX host's
/// in `zone`.
fn cname(label: &str, zone: &str) -> String {
    format!("{label} MX 10 mx.{label}\nmx.{label} A 127.0.0.1\n_25._tcp.mx.{label} CNAME _25._tcp.mx.{zone}.\n")
}

/// The zones: dane.test (signed, trusted) with a domain per case, expired.test (signatures
/// expired), bogus.test (signed by a key the validator does not trust), insecure.test (not
/// signed).
fn zones(keys: &Path, d: &Digests) -> Vec<Zone> {
    let dane = [
        host("ee", "127.0.0.1", &format!("3 1 1 {}", d.leaf_key)),
        host("wrong", "127.0.0.1", &format!("3 1 1 {}", d.other_key)),
        host("ta", "127.0.0.1", &format!("2 0 1 {}", d.ca)),
        host("taname", "127.0.0.1", &format!("2 0 1 {}", d.ca)),
        host("strip", "127.0.0.2", &format!("3 1 1 {}", d.leaf_key)),
        host("unusable", "127.0.0.2", &format!("1 1 1 {}", d.leaf_key)),
        // Hosts whose own addresses are secure, their TLSA records (matching ones) in a zone
        // that is not: through a CNAME, as hosting providers publish them.
        cname("tlsexpired", "expired.test"),
        cname("tlsbogus", "bogus.test"),
        ["ee", "wrong", "strip", "tlsbogus"]
            .map(|d| format!("_smtp._tls.{d} TXT \"v=TLSRPTv1; rua=mailto:{REPORTS}\"\n"))
            .concat(),
    ]
    .concat();
    let leaf_tlsa = format!("3 1 1 {}", d.leaf_key);
    let matching = |zone: &str| {
        let records = mx("@", "mx", "127.0.0.1", &leaf_tlsa);
        format!("$ORIGIN {zone}.\n{HEAD}{records}")
    };
    let other_tlsa = format!("3 1 1 {}", d.other_key);
    let insecure = mx("@", "mx", "127.0.0.2", &other_tlsa);
    vec![
        sign(
            keys,
            "dane.test",
            &format!("$ORIGIN dane.test.\n{HEAD}{dane}"),
            Signing::Good,
        ),
        sign(
            keys,
            "expired.test",
            &matching("expired.test"),
            Signing::Expired,
        ),
        sign(
            keys,
            "bogus.test",
            &matching("bogus.test"),
            Signing::UntrustedKey,
        ),
        sign(
            keys,
            "insecure.test",
            &format!("$ORIGIN insecure.test.\n{HEAD}{insecure}"),
            Signing::Unsigned,
        ),
    ]
}

/// Knot serving `zones`, and unbound validating them.
async fn dns(zones: &[Zone]) -> (Dns, Validator) {
    let served: Vec<(String, String)> = zones
        .iter()
        .map(|z| (z.name.clone(), z.text.clone()))
        .collect();
    let dns = blocking(move || {
        let refs: Vec<(&str, &str)> = served
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Dns::start(&refs)
    })
    .await;
    let validator = Validator::start(dns.addr, zones);
    (dns, validator)
}

/// A cluster asking `resolver` for everything, its MX hosts on `mx_port`, with a route that
/// asks for DANE to a host without TLSA records.
async fn cluster(resolver: std::net::SocketAddr, mx_port: u16) -> Cluster {
    let mut opts = Options::default();
    opts.transport.workers = 1;
    opts.transport.dns_server = Some(resolver);
    opts.transport.dane_resolver = Some(resolver);
    opts.transport.mx_port = mx_port;
    opts.transport.tls_report_period = std::time::Duration::from_secs(2);
    // One attempt each in the test's time, so each report counts exactly one session.
    opts.transport.first_retry = std::time::Duration::from_secs(3600);
    opts.transport.max_retry = std::time::Duration::from_secs(3600);
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    c.add_user(REPORTS, PASS).await;
    let route = Route {
        domain: "routed.example".into(),
        host: "mx.none.dane.test".into(),
        port: mx_port,
        tls: "dane".into(),
        auth_user: None,
        auth_secret: None,
    };
    c.store.set_route(&route).await.unwrap();
    c
}

/// The recipients of the messages `sink` received after the first `skip`, sorted; each
/// arrived over TLS when `tls`.
async fn arrivals(sink: &Sink, n: usize, skip: usize, tls: bool) -> Vec<String> {
    let got = sink.wait_for(n).await;
    let mut to: Vec<String> = got[skip..]
        .iter()
        .map(|l| {
            let m: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(m["tls"], tls, "{m}");
            m["to"][0].as_str().unwrap().to_string()
        })
        .collect();
    to.sort();
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_decides_delivery_by_validated_tlsa_records() {
    let dir = tempfile::tempdir().unwrap();
    let digests = pki(dir.path());
    let zones = zones(dir.path(), &digests);
    let (_dns, validator) = dns(&zones).await;
    let tls_sink =
        Sink::start_with_certificate(&dir.path().join("chain.pem"), &dir.path().join("leaf.key"));
    let plain_sink = Sink::start_on("127.0.0.2", tls_sink.port, &[]);
    let c = cluster(validator.addr, tls_sink.port).await;
    let to = [
        "a@ee.dane.test",
        "a@ta.dane.test",
        "a@insecure.test",
        "a@wrong.dane.test",
        "a@taname.dane.test",
        "a@strip.dane.test",
        "a@unusable.dane.test",
        "a@tlsexpired.dane.test",
        "a@tlsbogus.dane.test",
        "a@expired.test",
        "a@bogus.test",
        "a@routed.example",
    ];
    for rcpt in to {
        submit(&c, ALICE, PASS, &[rcpt], "NEVER").await;
    }

    // The DANE-EE and DANE-TA matches arrive over TLS; the unsigned zone's mail as without
    // DANE (its TLSA record names another key, and that sink has no TLS at all).
    let log = validator.log();
    let over_tls = arrivals(&tls_sink, 2, 0, true).await;
    assert_eq!(over_tls, ["a@ee.dane.test", "a@ta.dane.test"], "{log}");
    assert_eq!(
        arrivals(&plain_sink, 1, 0, false).await,
        ["a@insecure.test"]
    );
    deferrals(&c, &validator).await;
    assert_eq!(tls_sink.received().len(), 2, "nothing more was sent");
    let sent_in_clear = plain_sink.received().len();
    assert_eq!(sent_in_clear, 1, "nothing more was sent in clear");

    // The sender waives the recipient's policies (RFC 8689 §5): the TLSA mismatch no longer
    // holds its mail, nor does a bogus TLSA answer.
    for to in ["b@wrong.dane.test", "b@tlsbogus.dane.test"] {
        let addr = c.submissions;
        let args = [
            addr.ip().to_string(),
            addr.port().to_string(),
            to.to_string(),
        ];
        blocking(move || python(WAIVED, &args.each_ref().map(String::as_str))).await;
    }
    let waived = arrivals(&tls_sink, 4, 2, true).await;
    assert_eq!(waived, ["b@tlsbogus.dane.test", "b@wrong.dane.test"]);
    tls_reports(&c).await;
}

/// Everything that was not delivered stays queued, each with why.
async fn deferrals(c: &Cluster, validator: &Validator) {
    let errors = queue_errors(c, 9).await;
    let all = errors.join("\n");
    assert_eq!(errors.len(), 9, "{all}\n{}", validator.log());
    let count = |needle: &str| errors.iter().filter(|e| e.contains(needle)).count();
    let mismatched = count("matches none of its DANE TLSA records");
    assert_eq!(mismatched, 2, "wrong, taname: {all}");
    assert_eq!(
        count("does not offer STARTTLS"),
        2,
        "strip, unusable: {all}"
    );
    assert_eq!(count("SERVFAIL"), 2, "tlsexpired, tlsbogus: {all}");
    assert_eq!(count("MX lookup of"), 2, "expired, bogus: {all}");
    let route = count("no DNSSEC-validated TLSA records");
    assert_eq!(route, 1, "the route: {all}");
    assert!(
        validator.log().contains("signature expired"),
        "the validator saw the expired signatures: {}",
        validator.log()
    );
}

/// Submits (argv: host, port, recipient) a message with `TLS-Required: No` as alice.
const WAIVED: &str = r#"
import smtplib, ssl, sys
host, port, rcpt = sys.argv[1:4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
s.login("alice@example.com", "alice's password")
msg = ("From: <alice@example.com>\r\nTo: <%s>\r\nSubject: any way will do\r\n"
       "TLS-Required: No\r\nMessage-ID: <waived.%s@client.example>\r\n\r\nHello.\r\n" % (rcpt, rcpt))
s.sendmail("alice@example.com", [rcpt], msg)
s.quit()
"#;

/// The TLS reports the domains asked for, once their periods ended: per domain, the policy
/// type, the successful sessions, and the failures by result type (summed over periods).
async fn tls_reports(c: &Cluster) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tlsrpt.schema.json");
    let expected = [
        ("ee.dane.test", 1, ""),
        ("wrong.dane.test", 0, "tlsa-invalid"),
        ("strip.dane.test", 0, "starttls-not-supported"),
        ("tlsbogus.dane.test", 0, "dnssec-invalid"),
    ];
    let reports = eventually("the TLS reports", || async {
        let mb = read_mailbox(&c.store, REPORTS, None).await;
        let seen = summarize(mb, &schema).await;
        expected
            .iter()
            .all(|(d, ..)| seen.contains_key(*d))
            .then_some(seen)
    })
    .await;
    for (domain, successes, failure) in expected {
        let (kind, ok, failed) = &reports[domain];
        assert_eq!(kind, "tlsa", "{domain}: {reports:?}");
        assert_eq!(*ok, successes, "{domain}: {reports:?}");
        let want: BTreeMap<String, i64> = if failure.is_empty() {
            BTreeMap::new()
        } else {
            [(failure.to_string(), 1)].into()
        };
        assert_eq!(failed, &want, "{domain}: {reports:?}");
    }
    assert_eq!(reports.len(), 4, "only the domains that ask: {reports:?}");
    let shown = admin_cli(BIN, c, &["tls", "report", "wrong.dane.test"]);
    assert!(
        shown.contains("tlsa-invalid") && shown.contains("mx.wrong.dane.test"),
        "{shown}"
    );
}

/// Per reported domain: (policy type, successes, failures by result type).
async fn summarize(
    mails: Vec<Vec<u8>>,
    schema: &Path,
) -> BTreeMap<String, (String, i64, BTreeMap<String, i64>)> {
    let mut seen: BTreeMap<String, (String, i64, BTreeMap<String, i64>)> = BTreeMap::new();
    for mail in mails {
        let schema = schema.to_path_buf();
        let parsed = blocking(move || {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("report.eml");
            std::fs::write(&file, mail).unwrap();
            python(
                PARSE_REPORT,
                &[file.to_str().unwrap(), schema.to_str().unwrap()],
            )
        })
        .await;
        let v: serde_json::Value = serde_json::from_str(&parsed).unwrap();
        let entry = seen
            .entry(v["domain"].as_str().unwrap().to_string())
            .or_default();
        for p in v["report"]["policies"].as_array().unwrap() {
            entry.0 = p["policy"]["policy-type"].as_str().unwrap().to_string();
            entry.1 += p["summary"]["total-successful-session-count"]
                .as_i64()
                .unwrap();
            for f in p["failure-details"].as_array().unwrap() {
                let kind = f["result-type"].as_str().unwrap().to_string();
                *entry.2.entry(kind).or_default() += f["failed-session-count"].as_i64().unwrap();
            }
        }
    }
    seen
}

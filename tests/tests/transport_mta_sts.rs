//! MTA-STS (RFC 8461) on the outbound path, with real parts: Knot serving the domains' MX
//! and `_mta-sts` records, Python's HTTPS server serving each domain's policy file with a
//! certificate from a test CA (trusted as an extra CA; the policy port is the test-only
//! `mta_sts_port`), and an aiosmtpd next hop with a certificate from the same CA for its MX
//! name. Enforce + a listed MX whose certificate verifies → delivered over TLS; enforce + no
//! listed MX → deferred 4.7.5, nothing sent; enforce + a certificate for another name →
//! deferred, nothing sent in clear; testing mode → delivered anyway; no policy → as before;
//! a policy host that redirects, answers 100 KiB, serves HTML or an absurd max_age → no
//! policy (delivered; the redirect's target would have held the mail). Policies are cached
//! in PostgreSQL. The sessions are counted for TLS-RPT under the policy (`admin tls report`).
use bridgehead_tests::dns::Dns;
use bridgehead_tests::outbound::{queue_errors, submit};
use bridgehead_tests::procs::{free_port, wait_port, Proc};
use bridgehead_tests::{admin_cli, blocking, eventually, Cluster, Options, Sink};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::Command;

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

/// Serves argv[4] (JSON: policy host → [status, Content-Type, body]; a 3xx body is its
/// Location) over HTTPS on 127.0.0.1:argv[1] with the certificate argv[2] and key argv[3].
const POLICY_SERVER: &str = r#"
import http.server, json, ssl, sys
port, cert, key, policies = int(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        answer = policies.get(self.headers.get("Host", "").split(":")[0])
        if self.path != "/.well-known/mta-sts.txt" or answer is None:
            self.send_response(404); self.end_headers(); return
        status, ctype, body = answer
        if 300 <= status < 400:
            self.send_response(status); self.send_header("Location", body); self.end_headers(); return
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

/// A CA (written to `dir/ca.pem`) and leaf certificates it signed for `names`.
fn pki(dir: &Path, leaves: &[(&str, &[&str])]) -> PathBuf {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (file, names) in leaves {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    }
    dir.join("ca.pem")
}

const ZONE: &str = "$ORIGIN test.
$TTL 60
@                SOA ns.test. admin.test. 1 3600 600 86400 60
@                NS  ns
ns               A   127.0.0.1
sts              MX  10 mx.sts
mx.sts           A   127.0.0.1
_mta-sts.sts     TXT \"v=STSv1; id=one\"
mta-sts.sts      A   127.0.0.1
bad              MX  10 mx.sts
_mta-sts.bad     TXT \"v=STSv1; id=one\"
mta-sts.bad      A   127.0.0.1
wrong            MX  10 mx.wrong
mx.wrong         A   127.0.0.1
_mta-sts.wrong   TXT \"v=STSv1; id=one\"
mta-sts.wrong    A   127.0.0.1
try              MX  10 mx.sts
_mta-sts.try     TXT \"v=STSv1; id=one\"
mta-sts.try      A   127.0.0.1
plain            MX  10 mx.sts
$INCLUDE hostile
";

/// Domains whose policy host misbehaves; each is delivered as if it had no policy.
const HOSTILE: [&str; 4] = ["redirect", "huge", "html", "absurd"];

fn policy(mode: &str, mx: &str) -> serde_json::Value {
    let text = format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n");
    serde_json::json!([200, "text/plain", text])
}

/// The zone lines of the hostile domains (MX, record, policy host).
fn hostile_zone() -> String {
    HOSTILE
        .iter()
        .map(|d| {
            format!(
                "{d} MX 10 mx.sts\n_mta-sts.{d} TXT \"v=STSv1; id=one\"\nmta-sts.{d} A 127.0.0.1\n"
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mta_sts_policies_are_fetched_cached_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    // The policy host's certificate names every domain's policy host, the hostile ones too:
    // their misbehaviour must be met past the TLS handshake.
    let hosts: Vec<String> = ["sts", "bad", "wrong", "try"]
        .iter()
        .chain(HOSTILE.iter())
        .map(|d| format!("mta-sts.{d}.test"))
        .collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let ca = pki(dir.path(), &[("mx", &["mx.sts.test"]), ("web", &hosts)]);
    bridgehead_backend::tls_client::trust_extra_cas(&ca).unwrap();
    let zone = ZONE.replace("$INCLUDE hostile\n", &hostile_zone());
    let dns = blocking(move || Dns::start(&[("test", &zone)])).await;
    // A policy that would hold the mail back, reached only by following a redirect; one too
    // large; one served as HTML; one with an absurd max_age. None of them counts.
    let blocking_policy =
        "version: STSv1\r\nmode: enforce\r\nmx: *.elsewhere.test\r\nmax_age: 86400\r\n";
    let policies = serde_json::json!({
        "mta-sts.sts.test": policy("enforce", "mx.sts.test"),
        "mta-sts.bad.test": policy("enforce", "*.elsewhere.test"),
        "mta-sts.wrong.test": policy("enforce", "mx.wrong.test"),
        "mta-sts.try.test": policy("testing", "*.elsewhere.test"),
        "mta-sts.redirect.test": [301, "", "https://mta-sts.bad.test/.well-known/mta-sts.txt"],
        "mta-sts.huge.test": [200, "text/plain", format!("{blocking_policy}{}", "# padding\r\n".repeat(10_000))],
        "mta-sts.html.test": [200, "text/html", blocking_policy],
        "mta-sts.absurd.test": [200, "text/plain", blocking_policy.replace("86400", "99999999999")],
    });
    let web_port = free_port();
    let web = dir.path();
    let _policy_server = Proc(
        Command::new("python3")
            .args(["-c", POLICY_SERVER, &web_port.to_string()])
            .arg(web.join("web.pem"))
            .arg(web.join("web.key"))
            .arg(policies.to_string())
            .spawn()
            .expect("python3 HTTPS policy server"),
    );
    blocking(move || wait_port(web_port)).await;
    let sink = Sink::start_with_certificate(&web.join("mx.pem"), &web.join("mx.key"));
    let mut opts = Options::default();
    opts.transport.workers = 1;
    opts.transport.dns_server = Some(dns.addr);
    opts.transport.mx_port = sink.port;
    opts.transport.mta_sts_port = web_port;
    opts.transport.tls_report_period = std::time::Duration::from_secs(4);
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    let mut to: Vec<String> = ["sts", "bad", "wrong", "try", "plain"]
        .iter()
        .chain(HOSTILE.iter())
        .map(|d| format!("a@{d}.test"))
        .collect();
    for rcpt in &to {
        submit(&c, ALICE, PASS, &[rcpt], "NEVER").await;
    }
    // sts (enforced, verified), try (testing), plain (no policy) and the hostile ones arrive.
    let got = sink.wait_for(3 + HOSTILE.len()).await;
    let mut arrived: Vec<String> = got
        .iter()
        .map(|l| {
            let m: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(m["tls"], true, "{m}");
            m["to"][0].as_str().unwrap().to_string()
        })
        .collect();
    arrived.sort();
    to.retain(|t| t != "a@bad.test" && t != "a@wrong.test");
    to.sort();
    assert_eq!(arrived, to, "{}", dns.log());

    // bad (no listed MX) and wrong (certificate for another name) stay queued, with why.
    let errors = queue_errors(&c, 2).await;
    let all = errors.join("\n");
    assert_eq!(errors.len(), 2, "{all}");
    assert!(all.contains("MTA-STS policy"), "{all}");
    assert!(
        all.contains("TLS policy") && all.to_ascii_lowercase().contains("certificate"),
        "{all}"
    );
    assert_eq!(
        sink.received().len(),
        3 + HOSTILE.len(),
        "nothing more was sent"
    );

    // The policies are cached for every back-end.
    let cached = c
        .store
        .sts_policy("sts.test")
        .await
        .unwrap()
        .expect("cached");
    assert_eq!(
        (cached.id.as_str(), cached.policy.mx.as_slice()),
        ("one", &["mx.sts.test".to_string()][..])
    );
    assert!(!cached.expired);

    // TLS-RPT counted each session under the domain's policy, and the policy hosts that
    // misbehaved (RFC 8460 §4.3). Counts reach the store asynchronously: wait for all of them.
    let bin = env!("CARGO_BIN_EXE_bridgehead");
    let expected = [
        ("sts.test", "sts\tsuccess"),
        ("wrong.test", "sts\tcertificate-host-mismatch"),
        ("plain.test", "no-policy-found\tsuccess"),
        ("redirect.test", "sts\tsts-policy-fetch-error"),
        ("html.test", "sts\tsts-policy-invalid"),
        ("absurd.test", "sts\tsts-policy-invalid"),
    ];
    let counted = |shown: &str, domain: &str, result: &str| {
        let (d, r) = (format!("\t{domain}\t"), format!("\t{result}\t"));
        shown.lines().any(|l| l.contains(&d) && l.contains(&r))
    };
    let shown = eventually("the TLS-RPT counts", || async {
        let out = admin_cli(bin, &c, &["tls", "report"]);
        let all = expected.iter().all(|(d, r)| counted(&out, d, r));
        all.then_some(out)
    })
    .await;
    for (domain, result) in expected {
        assert!(counted(&shown, domain, result), "{domain}: {shown}");
    }

    // This cluster publishes no policy of its own: the admin command says how to.
    let out = Command::new(env!("CARGO_BIN_EXE_bridgehead"))
        .args(["admin", "--url", &format!("http://{}", c.backend_addr)])
        .args(["--token", bridgehead_tests::ADMIN_TOKEN, "mta-sts"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--mta-sts-mode"),
        "{err}"
    );
    c.stop().await;
}

/// The publishing side: a back-end started with `--mta-sts-mode` serves its policy at
/// `/.well-known/mta-sts.txt` on its HTTP listener, and `bridgehead admin mta-sts` prints the
/// records to publish for each domain with the policy's id; without a policy it says how to
/// publish one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_policy_is_published() {
    use bridgehead_backend::transport::policy::mta_sts::{Mode, Policy};
    use bridgehead_tests::procs::Node;
    use std::io::{Read, Write};
    const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");
    let url = bridgehead_tests::fresh_database().await;
    let (b, m) = (free_port(), free_port());
    let _back = Node::backend(BIN, &url, b)
        .arg(format!("--metrics-listen=127.0.0.1:{m}"))
        .arg("--admin-token=publish-token")
        .arg("--mta-sts-mode=enforce")
        .arg("--mta-sts-mx=mx1.example.org,*.mx.example.org")
        .spawn();
    blocking(move || [b, m].map(wait_port)).await;
    let served = blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", m)).unwrap();
        s.write_all(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.org\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await;
    let (head, body) = served.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("Content-Type: text/plain"),
        "{head}"
    );
    let policy = Policy::parse(body.as_bytes()).unwrap();
    assert_eq!(policy.mode, Mode::Enforce);
    assert_eq!(policy.mx, ["mx1.example.org", "*.mx.example.org"]);
    assert_eq!(policy.max_age, 604_800);

    let admin = |args: &[&str]| {
        Command::new(BIN)
            .args([
                "admin",
                "--url",
                &format!("http://127.0.0.1:{b}"),
                "--token",
                "publish-token",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    assert!(admin(&["domain", "add", "example.org"]).status.success());
    let out = admin(&["mta-sts"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let record = format!(
        "_mta-sts.example.org. IN TXT \"v=STSv1; id={}\"",
        policy.id()
    );
    assert!(text.contains(&record), "{text}");
    assert!(
        text.contains("mode: enforce\nmx: mx1.example.org\nmx: *.mx.example.org\nmax_age: 604800"),
        "{text}"
    );
}

//! Routes with `--tls verify`: STARTTLS is required and the next hop's certificate must
//! verify for the route's host, against the Mozilla roots and the extra CAs the operator
//! trusts (`--extra-ca-file`; here a test CA made with rcgen). Peers: aiosmtpd sinks with
//! certificates of their own. A certificate from the trusted CA for the host → delivered
//! over TLS; one for another name, a self-signed one, or no STARTTLS at all → nothing sent
//! (the message stays queued with the reason); the same self-signed peer under `required`
//! (encryption without verification) → delivered.
//!
//! REQUIRETLS (RFC 8689), submitted with Python's smtplib: sent only over verified TLS to a
//! peer that offers REQUIRETLS (the parameter passed on); to a verified peer without it, or
//! over a route that does not verify, the message is returned to the sender (5.7.10)
//! without its body, and nothing is sent.
use bridgehead_tests::outbound::{parse_dsn, queue_errors, route, submit, submit_with};
use bridgehead_tests::{eventually, read_mailbox, Cluster, Options, Sink};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

/// A CA (its certificate written to `dir/ca.pem`) and two leaf certificates it signed: one
/// for 127.0.0.1 (the routes' host), one for another name.
fn pki(dir: &Path) -> (PathBuf, (PathBuf, PathBuf), (PathBuf, PathBuf)) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let leaf = |name: &str, file: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{file}.pem")),
            dir.join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    (
        ca_path,
        leaf("127.0.0.1", "good"),
        leaf("other.test", "wrong"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_routes_deliver_only_to_certificates_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, good, wrong) = pki(dir.path());
    let n = bridgehead_backend::tls_client::trust_extra_cas(&ca).unwrap();
    assert_eq!(n, 1);
    let mut opts = Options::default();
    opts.transport.workers = 1;
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    let good_sink = Sink::start_with_certificate(&good.0, &good.1);
    let wrong_sink = Sink::start_with_certificate(&wrong.0, &wrong.1);
    let self_signed = Sink::start(&[], true);
    let plain = Sink::start(&[], false);
    route(&c, "good.test", good_sink.port, "verify").await;
    route(&c, "wrong.test", wrong_sink.port, "verify").await;
    route(&c, "selfsigned.test", self_signed.port, "verify").await;
    route(&c, "plain.test", plain.port, "verify").await;
    for to in [
        "a@good.test",
        "a@wrong.test",
        "a@selfsigned.test",
        "a@plain.test",
    ] {
        submit(&c, ALICE, PASS, &[to], "NEVER").await;
    }
    let got = good_sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let m: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(m["tls"], true, "{m}");

    // The others stay queued, each with why, and their peers got nothing.
    let reasons = queue_errors(&c, 3).await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    let all = reasons.join("\n").to_ascii_lowercase();
    assert!(all.contains("certificate"), "{all}");
    assert!(all.contains("starttls"), "{all}");
    for sink in [&wrong_sink, &self_signed, &plain] {
        assert!(
            sink.received().is_empty(),
            "nothing sent to an unverified peer"
        );
    }

    // Encryption without verification reaches the self-signed peer.
    route(&c, "selfsigned.test", self_signed.port, "required").await;
    submit(&c, ALICE, PASS, &["b@selfsigned.test"], "NEVER").await;
    assert!(!self_signed.wait_for(1).await.is_empty());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiretls_mail_goes_only_over_verified_tls_to_peers_that_offer_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, good, _) = pki(dir.path());
    bridgehead_backend::tls_client::trust_extra_cas(&ca).unwrap();
    let mut opts = Options::default();
    opts.transport.workers = 1;
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    let offering = Sink::start_with_certificate_and(&good.0, &good.1, &["--requiretls"]);
    let not_offering = Sink::start_with_certificate(&good.0, &good.1);
    route(&c, "offers.test", offering.port, "verify").await;
    route(&c, "lacks.test", not_offering.port, "verify").await;
    route(&c, "unverified.test", offering.port, "required").await;
    submit_with(&c, ALICE, PASS, &["a@offers.test"], "FAILURE", "REQUIRETLS").await;
    let got = offering.wait_for(1).await;
    let m: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(m["tls"], true, "{m}");
    assert!(
        m["mail_options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "REQUIRETLS"),
        "the parameter is passed on: {m}"
    );

    for to in ["a@lacks.test", "a@unverified.test"] {
        submit_with(&c, ALICE, PASS, &[to], "FAILURE", "REQUIRETLS").await;
    }
    let reports = eventually("two reports", || async {
        let mb = read_mailbox(&c.store, ALICE, None).await;
        (mb.len() == 2).then_some(mb)
    })
    .await;
    let mut diagnostics = Vec::new();
    for r in reports {
        let dsn = parse_dsn(r).await;
        assert_eq!(dsn["recipients"][0]["status"], "5.7.10", "{dsn}");
        assert!(
            !dsn["types"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "message/rfc822"),
            "no body returned: {dsn}"
        );
        diagnostics.push(dsn["recipients"][0]["diagnostic"].to_string());
    }
    diagnostics.sort();
    assert!(
        diagnostics[0].contains("does not offer REQUIRETLS"),
        "{diagnostics:?}"
    );
    assert!(diagnostics[1].contains("verified TLS"), "{diagnostics:?}");
    assert!(not_offering.received().is_empty(), "nothing sent to it");
    assert_eq!(
        offering.received().len(),
        1,
        "nothing sent without verification"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_deferral_ends_in_a_report_that_says_why() {
    let mut opts = Options::default();
    opts.transport.workers = 1;
    opts.transport.lifetime = std::time::Duration::from_secs(3);
    opts.transport.first_retry = std::time::Duration::from_millis(200);
    opts.transport.max_retry = std::time::Duration::from_millis(400);
    opts.transport.delay_warning = std::time::Duration::from_secs(3600);
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    let self_signed = Sink::start(&[], true);
    route(&c, "selfsigned.test", self_signed.port, "verify").await;
    submit(&c, ALICE, PASS, &["a@selfsigned.test"], "FAILURE").await;
    let reports = eventually("the failure report", || async {
        let mb = read_mailbox(&c.store, ALICE, None).await;
        (!mb.is_empty()).then_some(mb)
    })
    .await;
    let dsn = parse_dsn(reports[0].clone()).await;
    let r = &dsn["recipients"][0];
    assert_eq!(r["action"], "failed", "{dsn}");
    assert_eq!(r["status"], "4.4.7", "{dsn}");
    let why = r["diagnostic"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        why.contains("tls policy") && why.contains("certificate"),
        "the report says why: {why}"
    );
    assert!(self_signed.received().is_empty(), "nothing was sent");
    c.stop().await;
}

//! The outbound transport's MX path against a real DNS server (Knot, started by the test on
//! loopback, the back-end told `--dns-server`): MX preference order and fallback to the next
//! host, no MX → the domain's own address, a null MX (RFC 7505) and a domain that does not
//! exist → failure at once with a DSN, SERVFAIL → deferral.
use bridgehead_tests::dns::Dns;
use bridgehead_tests::outbound::{parse_dsn, queue_empty, submit};
use bridgehead_tests::{blocking, eventually, procs, read_mailbox, Cluster, Options, Sink};

const ALICE: &str = "alice@example.com";
const PASS: &str = "alice's password";

/// pref: two MX hosts, the preferred one refusing connections; nomx: an address, no MX;
/// nullmx: "takes no mail"; broken.test: configured without a zone file (SERVFAIL).
const ZONE: &str = "$ORIGIN example.test.
$TTL 60
@       SOA ns.example.test. admin.example.test. 1 3600 600 86400 60
@       NS  ns
ns      A   127.0.0.1
pref    MX  20 mx-good
pref    MX  10 mx-bad
mx-bad  A   127.0.0.61
mx-good A   127.0.0.62
nomx    A   127.0.0.63
nullmx  MX  0 .
";

async fn cluster(dns: &Dns, mx_port: u16) -> Cluster {
    let mut opts = Options::default();
    opts.transport.workers = 1;
    opts.transport.dns_server = Some(dns.addr);
    opts.transport.mx_port = mx_port;
    let c = Cluster::start_with(opts).await;
    c.add_user(ALICE, PASS).await;
    c
}

fn dns() -> Dns {
    Dns::start(&[("example.test", ZONE), ("broken.test", "")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_hosts_by_preference_with_fallback_and_the_address_without_mx() {
    let dns = blocking(dns).await;
    let port = procs::free_port();
    let good = blocking(move || Sink::start_on("127.0.0.62", port, &[])).await;
    let nomx = blocking(move || Sink::start_on("127.0.0.63", port, &[])).await;
    let c = cluster(&dns, port).await;
    // The preferred MX (127.0.0.61) refuses the connection: the next one gets the message.
    submit(&c, ALICE, PASS, &["friend@pref.example.test"], "FAILURE").await;
    let got = good.wait_for(1).await;
    assert!(got[0].contains("friend@pref.example.test"), "{got:?}");
    // No MX record: the domain's own address.
    submit(&c, ALICE, PASS, &["someone@nomx.example.test"], "FAILURE").await;
    let got = nomx.wait_for(1).await;
    assert!(got[0].contains("someone@nomx.example.test"), "{got:?}");
    queue_empty(&c).await;
    assert!(
        read_mailbox(&c.store, ALICE, None).await.is_empty(),
        "no report"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_and_unknown_domains_fail_at_once_and_servfail_defers() {
    let dns = blocking(dns).await;
    let c = cluster(&dns, procs::free_port()).await;
    let rcpts = [
        "a@nullmx.example.test",
        "b@nothing.example.test",
        "c@x.broken.test",
    ];
    submit(&c, ALICE, PASS, &rcpts, "FAILURE").await;
    let report = eventually("the report of the failures", || async {
        read_mailbox(&c.store, ALICE, None).await.pop()
    })
    .await;
    let dsn = parse_dsn(report).await;
    let failed: Vec<(String, String)> = dsn["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let who = r["final"].as_str().unwrap().to_string();
            (who, r["status"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(failed.len(), 2, "{dsn}");
    assert!(
        failed.contains(&("rfc822; a@nullmx.example.test".into(), "5.1.10".into())),
        "{failed:?}"
    );
    assert!(
        failed.contains(&("rfc822; b@nothing.example.test".into(), "5.1.2".into())),
        "{failed:?}"
    );
    // SERVFAIL: still queued, to be tried again, with the DNS failure as its last error.
    let queued = c.store.queue_list().await.unwrap();
    assert_eq!(queued.len(), 1, "{}", dns.log());
    let last_error = queued[0].last_error.clone().unwrap_or_default();
    assert!(last_error.contains("x.broken.test"), "{last_error}");
    c.stop().await;
}

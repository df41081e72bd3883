//! Between the tiers: with mutual TLS, the mailbox API answers only front-ends (a client
//! certificate signed by the cluster CA); the admin API is TLS and needs its token; and the
//! whole path (client → front-end → back-end) works through it.
use bridgehead_proto::v1 as pb;
use bridgehead_proto::v1::maildrop_client::MaildropClient;
use bridgehead_tests::{blocking, curl, Cluster, Options, ADMIN_TOKEN};
use std::process::Command;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

async fn channel(
    c: &Cluster,
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let pki = c.pki.as_ref().unwrap();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()));
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Channel::from_shared(format!("https://{}", c.backend_addr))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn open_request() -> pb::OpenRequest {
    pb::OpenRequest {
        credentials: Some(pb::Credentials {
            username: "alice@example.com".into(),
            password: "pw".into(),
            client_address: "192.0.2.1".into(),
        }),
        session_token: "t".into(),
        lease_seconds: 60,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_front_ends_reach_the_mailbox_api() {
    let c = Cluster::start_with(Options {
        mtls: true,
        ..Options::default()
    })
    .await;
    c.add_user("alice@example.com", "pw").await;
    c.deliver("alice@example.com", b"Subject: through mTLS\r\n\r\nhi\r\n")
        .await;

    // The real path works: curl → POP3S front-end → mTLS → back-end.
    let url = format!("pop3s://{}/1", c.pop3s);
    let (ok, body, err) =
        blocking(move || curl(&["-k", "--user", "alice@example.com:pw", &url])).await;
    assert!(ok, "{err}");
    assert_eq!(body, b"Subject: through mTLS\r\n\r\nhi\r\n");

    // TLS without a client certificate: the mailbox API refuses.
    let mut anonymous = MaildropClient::new(channel(&c, None).await.unwrap());
    let status = anonymous.open(open_request()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    // With the front-end's certificate it answers.
    let pki = c.pki.as_ref().unwrap();
    let id = Identity::from_pem(
        std::fs::read(&pki.frontend_cert).unwrap(),
        std::fs::read(&pki.frontend_key).unwrap(),
    );
    let mut front_end = MaildropClient::new(channel(&c, Some(id)).await.unwrap());
    let reply = front_end.open(open_request()).await.unwrap().into_inner();
    assert!(matches!(
        reply.outcome,
        Some(pb::open_reply::Outcome::Opened(_))
    ));

    // Plaintext gRPC gets nowhere.
    let plain = Channel::from_shared(format!("http://{}", c.backend_addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(MaildropClient::new(ch).open(open_request()).await.is_err());
    }

    // The admin CLI: TLS with the CA and the token.
    let admin = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_bridgehead"))
            .args([
                "admin",
                "--url",
                &c.backend_addr.to_string(),
                "--token",
                token,
                "--ca",
            ])
            .arg(&pki.ca)
            .args(["user", "list"])
            .output()
            .unwrap()
    };
    let ok = admin(ADMIN_TOKEN);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("alice@example.com\t1 messages"));
    let bad = admin("wrong");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("wrong or missing admin token"));
    c.stop().await;
}

/// The back-end's PostgreSQL connection can require TLS and verify the server: against a server
/// that refuses unencrypted connections, a `sslmode=verify-full` URL with the right CA opens the
/// store, plain connections and a wrong CA are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_over_verified_tls() {
    use bridgehead_backend::pgrunner::PgServer;
    use bridgehead_backend::{pki, store::Store};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (mut server, ca, wrong_ca) = blocking(move || {
        let mut first = PgServer::start(&root.join("pg"), 0).unwrap();
        first.stop();
        let data = first.data_dir().to_path_buf();
        let meta = std::fs::metadata(&data).unwrap();
        let good = pki::ensure(&root.join("pki"), &[]).unwrap();
        let wrong = pki::ensure(&root.join("other"), &[]).unwrap();
        for (from, to) in [
            (&good.backend_cert, "server.crt"),
            (&good.backend_key, "server.key"),
        ] {
            let to = data.join(to);
            std::fs::copy(from, &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&to, Some(meta.uid()), Some(meta.gid())).unwrap();
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let server = PgServer::start(&root.join("pg"), 0).unwrap();
        (server, good.ca, wrong.ca)
    })
    .await;
    let url = server.url("postgres");

    let plain = Store::open(&format!("{url}?sslmode=disable"), 1).await;
    assert!(plain.is_err(), "the server accepted an unencrypted login");
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let store = Store::open(&verified, 2)
        .await
        .expect("TLS with the right CA");
    assert!(store.ping().await);
    store.close().await;
    let wrong = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        wrong_ca.display()
    );
    assert!(
        Store::open(&wrong, 1).await.is_err(),
        "a server certificate from another CA was accepted"
    );
    blocking(move || server.stop()).await;
}

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

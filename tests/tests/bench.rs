//! A short smoke run of `bridgehead bench` against a test cluster, to keep the tool working
//! (benchmarks are measured by the tool, not by timed tests).
use bridgehead_tests::{blocking, Cluster, ADMIN_TOKEN};
use std::net::SocketAddr;
use std::process::{Command, Output};

/// Runs `bridgehead bench ARGS --json`, with the admin API of `admin` when given.
async fn bench(args: Vec<String>, admin: Option<SocketAddr>) -> Output {
    blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bridgehead"));
        cmd.arg("bench")
            .args(&args)
            .arg("--json")
            .env("BRIDGEHEAD_ADMIN_TOKEN", ADMIN_TOKEN);
        cmd.env_remove("BRIDGEHEAD_DATA_DIR")
            .env_remove("BRIDGEHEAD_ADMIN_URL");
        if let Some(a) = admin {
            cmd.env("BRIDGEHEAD_ADMIN_URL", format!("http://{a}"));
        }
        cmd.output().unwrap()
    })
    .await
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON result")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn stored(c: &Cluster) -> usize {
    let mut total = 0;
    for n in 0..4 {
        total += c.uids(&format!("user{n}@example.com")).await.len();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smtp_and_pop3_smoke() {
    let c = Cluster::start().await;
    for n in 0..4 {
        c.add_user(&format!("user{n}@example.com"), "pw").await;
    }
    let smtp = c.smtp.to_string();
    let load = args(&[
        "smtp",
        "--server",
        &smtp,
        "--connections",
        "4",
        "--messages",
        "60",
        "--per-connection",
        "5",
        "--recipients",
        "2",
        "--users",
        "4",
        "--size",
        "2000",
        "--verify",
    ]);
    // Without an admin API, --verify cannot count, and says so.
    let out = bench(load.clone(), None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no admin API given"));

    let report = json(&bench(load, Some(c.backend_addr)).await);
    assert_eq!(report["messages"], 60);
    assert_eq!(report["errors"], serde_json::json!({}));
    assert_eq!(report["verify"]["arrived"], 120);
    assert_eq!(report["latency_ms"]["final_250"]["count"], 60);
    assert_eq!(stored(&c).await, 120, "2 recipients × 60 messages stored");

    let pop3s = c.pop3s.to_string();
    let report = json(
        &bench(
            args(&[
                "pop3",
                "--server",
                &pop3s,
                "--tls",
                "--sessions",
                "2",
                "--total",
                "4",
                "--users",
                "4",
                "--password",
                "pw",
                "--mode",
                "retr-dele",
            ]),
            None,
        )
        .await,
    );
    assert_eq!(report["sessions"], 4);
    assert_eq!(report["messages"], 120);
    assert_eq!(report["errors"], serde_json::json!({}));
    assert_eq!(stored(&c).await, 0, "RETR+DELE emptied every mailbox");
    c.stop().await;
}

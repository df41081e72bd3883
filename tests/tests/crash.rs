//! Crash and fault test: under a steady SMTP load, SIGKILL a back-end, then the front-end,
//! then restart PostgreSQL. Afterwards every message that got a `250` is in every recipient's
//! mailbox exactly once, and no message is there twice. Rounds alternate between two
//! recipients per message (one transaction) and one (one statement, no transaction).
//!
//! Real processes (the `bridgehead` binary), a private PostgreSQL, Python smtplib as the
//! client. The short version (two rounds) runs in CI; `BRIDGEHEAD_CRASH_ROUNDS=20` repeats it.
use bridgehead_backend::address::Address;
use bridgehead_backend::pgrunner::PgServer;
use bridgehead_backend::{password, store, Store};
use bridgehead_tests::checks::{assert_exactly_once, assert_quits_kept};
use bridgehead_tests::deliver;
use bridgehead_tests::procs::{free_port, wait_port, Node, Proc};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");
const RCPTS: [&str; 2] = ["r1@crash.test", "r2@crash.test"];

fn backend(url: &str, port: u16) -> Proc {
    Node::backend(BIN, url, port).spawn()
}

/// A front-end process over `backends`, with `args` naming its listener and settings.
fn frontend(backends: &[u16], args: &[String]) -> Proc {
    args.iter()
        .fold(Node::frontend(BIN, backends), |n, a| n.arg(a.clone()))
        .spawn()
}

fn smtp_on(port: u16) -> Vec<String> {
    vec!["--smtp-listen".into(), format!("127.0.0.1:{port}")]
}

/// One round of load and failures. `rcpts` are the two recipients of every message; the
/// same address twice makes one-recipient messages, which are stored by a single statement
/// outside any explicit transaction.
fn round(seconds: f64, rcpts: [&'static str; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let pg_port = free_port();
    let mut pg = PgServer::start(dir.path(), pg_port).expect("PostgreSQL");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = pg.url("crash");
    rt.block_on(async {
        store::ensure_database(&pg.url("postgres"), "crash")
            .await
            .unwrap();
        let s = Store::open(&url, 2).await.unwrap();
        s.add_domain("crash.test").await.unwrap();
        for r in RCPTS {
            s.add_user(
                &Address::parse(r).unwrap(),
                &password::hash("pw").unwrap(),
                None,
            )
            .await
            .unwrap();
        }
        s.close().await;
    });
    let (pa, pb, smtp) = (free_port(), free_port(), free_port());
    let mut a = backend(&url, pa);
    let _b = backend(&url, pb);
    wait_port(pa);
    wait_port(pb);
    let mut f = frontend(&[pa, pb], &smtp_on(smtp));
    wait_port(smtp);

    let out = dir.path().join("load.json");
    let load = {
        let out = out.clone();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_load.py");
        std::thread::spawn(move || {
            let status = Command::new("python3")
                .arg(script)
                .args([
                    "127.0.0.1",
                    &smtp.to_string(),
                    &seconds.to_string(),
                    "4",
                    rcpts[0],
                    rcpts[1],
                ])
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success());
        })
    };
    let step = Duration::from_secs_f64(seconds / 8.0);
    sleep(step);
    a.kill9(); // a back-end dies mid-load
    sleep(step);
    let _a = backend(&url, pa);
    sleep(step);
    f.kill9(); // the front-end dies mid-load
    sleep(step / 2);
    let _f = frontend(&[pa, pb], &smtp_on(smtp));
    sleep(step);
    pg.stop(); // PostgreSQL goes away…
    sleep(step);
    let _pg = PgServer::start(dir.path(), pg_port).expect("PostgreSQL again"); // …and comes back
    load.join().unwrap();

    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let accepted = result["accepted"].as_array().unwrap();
    assert!(
        accepted.len() > 10,
        "the load got through at times: {result}"
    );
    rt.block_on(async {
        let s = Store::open(&url, 2).await.unwrap();
        assert_exactly_once(&s, &RCPTS, accepted).await;
        s.close().await;
    });
    eprintln!(
        "round: {} accepted, errors {}",
        accepted.len(),
        result["errors"]
    );
}

#[test]
fn nothing_acknowledged_is_lost_or_doubled_when_nodes_die() {
    let rounds: usize = std::env::var("BRIDGEHEAD_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let seconds: f64 = std::env::var("BRIDGEHEAD_CRASH_SECONDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(8.0);
    for n in 0..rounds {
        let rcpts = if n % 2 == 0 {
            RCPTS
        } else {
            [RCPTS[0], RCPTS[0]]
        };
        round(seconds, rcpts);
    }
}

/// POP3 under a dying back-end: a session cut before QUIT deletes nothing; a QUIT that
/// answered +OK deleted everything marked.
#[test]
fn pop3_deletes_only_what_quit_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start_ephemeral(&dir.path().join("pg")).expect("PostgreSQL");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = pg.url("pop3crash");
    let accounts: Vec<String> = (0..16).map(|n| format!("u{n}@crash.test")).collect();
    rt.block_on(async {
        store::ensure_database(&pg.url("postgres"), "pop3crash")
            .await
            .unwrap();
        let s = Store::open(&url, 2).await.unwrap();
        s.add_domain("crash.test").await.unwrap();
        let hash = password::hash("pw").unwrap();
        for a in &accounts {
            let addr = Address::parse(a).unwrap();
            s.add_user(&addr, &hash, None).await.unwrap();
            for n in 0..5 {
                deliver(&s, a, format!("Subject: {n}\r\n\r\nbody\r\n").as_bytes()).await;
            }
        }
        s.close().await;
    });
    let (pa, pb, pop3) = (free_port(), free_port(), free_port());
    let mut a = backend(&url, pa);
    let _b = backend(&url, pb);
    wait_port(pa);
    wait_port(pb);
    let pop3_args = [
        format!("--pop3-listen=127.0.0.1:{pop3}"),
        "--allow-plaintext-auth".into(),
        "--lease-secs=10".into(),
    ];
    let _f = frontend(&[pa, pb], &pop3_args);
    wait_port(pop3);
    let out = dir.path().join("pop3.json");
    let load = {
        let (out, accounts) = (out.clone(), accounts.clone());
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pop3_load.py");
        std::thread::spawn(move || {
            let status = Command::new("python3")
                .arg(script)
                .args(["127.0.0.1", &pop3.to_string(), "pw"])
                .arg(&out)
                .args(&accounts)
                .status()
                .unwrap();
            assert!(status.success());
        })
    };
    sleep(Duration::from_millis(400));
    a.kill9(); // a back-end dies while sessions mark and quit
    load.join().unwrap();
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    rt.block_on(async {
        let s = Store::open(&url, 2).await.unwrap();
        assert_quits_kept(&s, &accounts, &results, 5).await;
        s.close().await;
    });
}

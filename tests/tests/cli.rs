//! The `bridgehead` binary: the admin CLI against a cluster, and `bridgehead dev` end to end.
use bridgehead_tests::{blocking, curl, python, Cluster, ADMIN_TOKEN};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");

/// Runs `bridgehead admin` with `args` and `stdin`.
fn admin(url: &str, token: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("admin")
        .args(["--url", url, "--token", token])
        .args(args)
        .env_remove("BRIDGEHEAD_ADMIN_URL")
        .env_remove("BRIDGEHEAD_ADMIN_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bridgehead");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_manages_the_directory_and_imports_mail() {
    let c = Cluster::start().await;
    let url = format!("http://{}", c.backend_addr);
    let run = move |args: Vec<&'static str>, stdin: &'static [u8]| {
        let url = url.clone();
        blocking(move || admin(&url, ADMIN_TOKEN, &args, stdin))
    };

    let o = run(vec!["domain", "add", "Example.COM"], b"").await;
    assert!(o.status.success(), "{}", text(&o));
    let o = run(vec!["domain", "add", "example.com"], b"").await;
    assert!(!o.status.success());
    assert!(text(&o).contains("exists already"), "{}", text(&o));
    let o = run(vec!["domain", "add", "bad..name"], b"").await;
    assert!(
        !o.status.success() && text(&o).contains("empty label"),
        "{}",
        text(&o)
    );

    let o = run(
        vec!["user", "add", "alice@example.com", "--quota", "10M"],
        b"pw one\n",
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = run(vec!["user", "add", "alice@example.com"], b"pw\n").await;
    assert!(
        !o.status.success() && text(&o).contains("taken already"),
        "{}",
        text(&o)
    );
    let o = run(vec!["user", "add", "bob@unknown.org"], b"pw\n").await;
    assert!(
        !o.status.success() && text(&o).contains("not served here"),
        "{}",
        text(&o)
    );
    let o = run(vec!["user", "add", "not-an-address"], b"pw\n").await;
    assert!(
        !o.status.success() && text(&o).contains("missing @"),
        "{}",
        text(&o)
    );
    let o = run(vec!["user", "add", "carol@example.com"], b"").await;
    assert!(
        !o.status.success() && text(&o).contains("empty password"),
        "{}",
        text(&o)
    );

    let o = run(
        vec!["alias", "add", "info@example.com", "alice@example.com"],
        b"",
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        vec!["alias", "add", "alice@example.com", "alice@example.com"],
        b"",
    )
    .await;
    assert!(!o.status.success(), "an alias cannot shadow a user");
    let o = run(vec!["alias", "list"], b"").await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "info@example.com\talice@example.com\n"
    );

    // deliver through the alias, from standard input with LF line endings
    let o = run(
        vec!["deliver", "--to", "info@example.com"],
        b"Subject: imported\n\nhi\n",
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("delivered to alice@example.com"),
        "{}",
        text(&o)
    );
    let o = run(vec!["deliver", "--to", "nobody@example.com"], b"x\n").await;
    assert!(
        !o.status.success() && text(&o).contains("no mailbox for nobody@example.com"),
        "{}",
        text(&o)
    );

    let o = run(vec!["user", "list", "--domain", "example.com"], b"").await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "alice@example.com\t1 messages\t25 bytes used\tquota 10485760\n"
    );
    let o = run(vec!["user", "quota", "alice@example.com", "20"], b"").await;
    assert!(o.status.success());
    let o = run(
        vec!["deliver", "--to", "alice@example.com"],
        b"Subject: too big for the quota\n\n",
    )
    .await;
    assert!(
        !o.status.success() && text(&o).contains("over quota"),
        "{}",
        text(&o)
    );

    // the password set by passwd works over POP3S
    let o = run(
        vec!["user", "passwd", "alice@example.com"],
        b"new password\n",
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let url = format!("pop3s://{}/1", c.pop3s);
    let (ok, body, err) =
        blocking(move || curl(&["-k", "--user", "alice@example.com:new password", &url])).await;
    assert!(ok, "{err}");
    assert_eq!(body, b"Subject: imported\r\n\r\nhi\r\n");

    let o = run(vec!["domain", "remove", "example.com"], b"").await;
    assert!(
        !o.status.success() && text(&o).contains("remove them first"),
        "{}",
        text(&o)
    );
    let o = run(vec!["user", "remove", "alice@example.com"], b"").await;
    assert!(o.status.success(), "{}", text(&o));
    let o = run(vec!["alias", "list"], b"").await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "",
        "aliases go with their user"
    );
    let o = run(vec!["domain", "remove", "example.com"], b"").await;
    assert!(o.status.success(), "{}", text(&o));
    let o = run(vec!["domain", "list"], b"").await;
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_refuses_a_wrong_token_and_a_dead_url() {
    let c = Cluster::start().await;
    let url = format!("http://{}", c.backend_addr);
    let o = blocking(move || admin(&url, "wrong", &["domain", "list"], b"")).await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("wrong or missing admin token"),
        "{}",
        text(&o)
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{dead}");
    let o = blocking(move || admin(&url, ADMIN_TOKEN, &["domain", "list"], b"")).await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("cannot reach the admin API"),
        "{}",
        text(&o)
    );
    c.stop().await;
}

fn wait_for_file(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(start.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

const POPLIB_STLS: &str = r#"
import poplib, ssl, sys
host, port, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = poplib.POP3(host, int(port), timeout=20)
c.stls(ctx)
c.user(user); c.pass_(password)
resp, lines, size = c.retr(1)
sys.stdout.write("\r\n".join(l.decode() for l in lines) + "\r\n")
c.quit()
"#;

/// The README's promise: start the cluster, deliver with the admin CLI, read with curl and
/// poplib, stop with SIGTERM, start again with the mail still there — from a data directory
/// whose parent only its owner may enter (as `mktemp -d` or a home directory under `/root`
/// makes it), where PostgreSQL, run as `postgres` when we are root, cannot go.
#[test]
fn dev_cluster_end_to_end() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = dir.path().join("data");
    // Everything the cluster logs, at debug level, to check that no secret is in it.
    let log = dir.path().join("dev.log");
    let start_dev = || {
        Command::new(BIN)
            .args(["dev", "--data-dir"])
            .arg(&data)
            .args([
                "--pop3-port",
                "0",
                "--pop3s-port",
                "0",
                "--grpc-port",
                "0",
                "--metrics-port",
                "0",
                "--console-port",
                "0",
            ])
            .args([
                "--smtp-port",
                "0",
                "--submission-port",
                "0",
                "--submissions-port",
                "0",
            ])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .expect("start bridgehead dev")
    };
    let stop_dev = |mut child: std::process::Child| {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc_kill(child.id() as i32, 15) };
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "bridgehead dev exits cleanly on SIGTERM: {status}"
        );
    };
    let endpoints_path = data.join("endpoints.json");
    let child = start_dev();
    let e: serde_json::Value =
        serde_json::from_str(&wait_for_file(&endpoints_path, Duration::from_secs(120))).unwrap();
    for key in [
        "smtp",
        "submission",
        "submissions",
        "pop3",
        "pop3s",
        "grpc",
        "metrics",
        "console",
        "admin_token",
        "demo_user",
        "demo_password",
    ] {
        assert!(e[key].is_string(), "endpoints.json has {key}: {e}");
    }
    let user = e["demo_user"].as_str().unwrap().to_string();
    let pass = e["demo_password"].as_str().unwrap().to_string();
    let message = b"From: someone@example.org\r\nSubject: tour\r\n\r\nWelcome to Bridgehead.\r\n";
    let mut deliver = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(&data)
        .args(["deliver", "--to", &user])
        .env_remove("BRIDGEHEAD_ADMIN_URL")
        .env_remove("BRIDGEHEAD_ADMIN_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    deliver.stdin.take().unwrap().write_all(message).unwrap();
    assert!(deliver.wait_with_output().unwrap().status.success());

    let userpw = format!("{user}:{pass}");
    let url = format!("pop3s://{}/1", e["pop3s"].as_str().unwrap());
    let (ok, body, err) = curl(&["-k", "--user", &userpw, &url]);
    assert!(ok, "{err}");
    assert_eq!(
        body,
        message.to_vec(),
        "curl pop3s retrieves the message byte for byte"
    );
    let pop3 = e["pop3"].as_str().unwrap();
    let (host, port) = pop3.rsplit_once(':').unwrap();
    let got = python(POPLIB_STLS, &[host, port, &user, &pass]);
    assert_eq!(got.as_bytes(), message);

    // The operator console it printed answers with its sign-in page.
    let console = format!("{}login", e["console"].as_str().unwrap());
    let (ok, page, err) = curl(&[&console]);
    assert!(
        ok && String::from_utf8_lossy(&page).contains("Sign in"),
        "{err}"
    );

    // The operations endpoint: metrics of both tiers, health and readiness.
    let base = format!("http://{}", e["metrics"].as_str().unwrap());
    let (ok, metrics, err) = curl(&[&format!("{base}/metrics")]);
    assert!(ok, "{err}");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("bridgehead_frontend_logins_total{protocol=\"pop3\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bridgehead_frontend_messages_retrieved_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bridgehead_backend_queue_depth"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bridgehead_frontend_backend_call_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"));
    let (ok, ready, _) = curl(&[&format!("{base}/readyz")]);
    assert!(ok && ready == b"ready\n");
    stop_dev(child);

    // Second run: same data, same credentials, the message is still there.
    std::fs::remove_file(&endpoints_path).unwrap();
    let child = start_dev();
    let e2: serde_json::Value =
        serde_json::from_str(&wait_for_file(&endpoints_path, Duration::from_secs(120))).unwrap();
    assert_eq!(e2["demo_password"], e["demo_password"]);
    let url = format!("pop3s://{}/1", e2["pop3s"].as_str().unwrap());
    let (ok, body, err) = curl(&["-k", "--user", &userpw, &url]);
    assert!(ok, "{err}");
    assert_eq!(body, message.to_vec());
    // SMTP AUTH too, and a failed login, so that both kinds of credentials went by.
    let submission = e2["submissions"].as_str().unwrap().to_string();
    let smtp_url = format!("smtps://{submission}/dev.example");
    let mail = dir.path().join("m.eml");
    std::fs::write(&mail, b"Subject: logged?\r\n\r\nx\r\n").unwrap();
    let (ok, _, err) = curl(&[
        "-k",
        "--user",
        &userpw,
        "--mail-from",
        &user,
        "--mail-rcpt",
        &user,
        "--upload-file",
        mail.to_str().unwrap(),
        &smtp_url,
    ]);
    assert!(ok, "{err}");
    let (ok, _, _) = curl(&[
        "-k",
        "--user",
        &format!("{user}:not-the-password-xyz"),
        &url,
    ]);
    assert!(!ok);
    stop_dev(child);

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("POP3 login"), "the log has the sessions");
    // As root, PostgreSQL's files had to go where `postgres` can reach them, and dev said so.
    let pg_data = Path::new(e["postgres_data"].as_str().unwrap());
    // SAFETY: geteuid(2) has no preconditions.
    let as_root = unsafe { geteuid() } == 0;
    assert_eq!(
        !pg_data.starts_with(&data),
        as_root,
        "{}",
        pg_data.display()
    );
    let pg_dir = pg_data.parent().unwrap();
    let pg_password = std::fs::read_to_string(pg_dir.join("pg-password")).unwrap();
    let token = e["admin_token"].as_str().unwrap();
    for secret in [
        pass.as_str(),
        token,
        pg_password.trim(),
        "not-the-password-xyz",
    ] {
        assert!(!logged.contains(secret), "a secret is in the log");
    }
    if as_root {
        std::fs::remove_dir_all(pg_dir).unwrap();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
    fn geteuid() -> u32;
}

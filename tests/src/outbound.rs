//! Helpers for the outbound tests: routes to a peer, submissions through a cluster with
//! Python's smtplib, reports parsed with Python's `email` package, the queue watched, and
//! back-end processes of our own with fast transport settings.
use crate::procs::Proc;
use crate::{blocking, eventually, python, Cluster};
use bridgehead_backend::store::Route;
use std::process::{Command, Stdio};

/// Routes `domain` to a peer on 127.0.0.1:`port` with the given TLS mode.
pub async fn route(c: &Cluster, domain: &str, port: u16, tls: &str) {
    c.store
        .set_route(&Route {
            domain: domain.into(),
            host: "127.0.0.1".into(),
            port,
            tls: tls.into(),
            auth_user: None,
            auth_secret: None,
        })
        .await
        .unwrap();
}

const SEND: &str = r#"
import smtplib, ssl, sys
host, port, user, password = sys.argv[1:5]
rcpts = sys.argv[5].split(",")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
s.login(user, password)
msg = "From: <%s>\r\nTo: <%s>\r\nSubject: outbound test\r\nMessage-ID: <out1@client.example>\r\n\r\nHello out there.\r\n" % (user, rcpts[0])
notify = sys.argv[6] if len(sys.argv) > 6 else "FAILURE,DELAY"
mail_options = sys.argv[7].split() if len(sys.argv) > 7 else []
s.sendmail(user, rcpts, msg, mail_options=mail_options, rcpt_options=["NOTIFY=" + notify])
s.quit()
"#;

/// Submits a short message from `user` to `rcpts` over implicit TLS, with NOTIFY=`notify`.
pub async fn submit(c: &Cluster, user: &str, pass: &str, rcpts: &[&str], notify: &str) {
    submit_with(c, user, pass, rcpts, notify, "").await
}

/// As `submit`, with MAIL parameters (space-separated, e.g. "REQUIRETLS").
pub async fn submit_with(
    c: &Cluster,
    user: &str,
    pass: &str,
    rcpts: &[&str],
    notify: &str,
    mail_options: &str,
) {
    let (host, port) = (
        c.submissions.ip().to_string(),
        c.submissions.port().to_string(),
    );
    let args = [
        host,
        port,
        user.into(),
        pass.into(),
        rcpts.join(","),
        notify.into(),
        mail_options.into(),
    ];
    blocking(move || python(SEND, &args.each_ref().map(String::as_str))).await;
}

/// Parses a report with Python's email package: content type, report type, and per recipient
/// (Final-Recipient, Action, Status), plus the type of the returned original.
const PARSE_DSN: &str = r#"
import email, json, sys
from email import policy
msg = email.message_from_string(open(sys.argv[1]).read(), policy=policy.compat32)
assert msg.get_content_type() == "multipart/report", msg.get_content_type()
parts = msg.get_payload()
status = [p for p in parts if p.get_content_type() == "message/delivery-status"][0]
blocks = status.get_payload()
recipients = [{"final": b["Final-Recipient"], "action": b["Action"], "status": b["Status"],
               "diagnostic": b.get("Diagnostic-Code", "")} for b in blocks[1:]]
print(json.dumps({
    "report_type": msg.get_param("report-type"),
    "from": msg["From"], "auto": msg["Auto-Submitted"], "in_reply_to": msg["In-Reply-To"],
    "reporting_mta": blocks[0]["Reporting-MTA"],
    "recipients": recipients,
    "types": [p.get_content_type() for p in parts],
    "defects": [str(d) for d in msg.defects],
}))
"#;

/// A stored report, parsed (see `PARSE_DSN`).
pub async fn parse_dsn(stored: Vec<u8>) -> serde_json::Value {
    blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dsn.eml");
        std::fs::write(&path, &stored).unwrap();
        let out = python(PARSE_DSN, &[path.to_str().unwrap()]);
        serde_json::from_str(&out).unwrap()
    })
    .await
}

/// Waits (at most 10 s) until the queue holds `n` entries, each with its last error, and
/// returns those errors.
pub async fn queue_errors(c: &Cluster, n: usize) -> Vec<String> {
    let mut errors = Vec::new();
    for _ in 0..100 {
        let queue = c.store.queue_list().await.unwrap();
        errors = queue
            .iter()
            .map(|q| q.last_error.clone().unwrap_or_default())
            .collect();
        if queue.len() == n && errors.iter().all(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    errors
}

/// Waits until the outbound queue is empty.
pub async fn queue_empty(c: &Cluster) {
    eventually("the queue to empty", || async {
        c.store.queue_list().await.unwrap().is_empty().then_some(())
    })
    .await;
}

/// A `bridgehead backend` process (the binary `bin`) on `database_url` with one transport
/// worker, fast polling and retries, and `claim_secs` claims; its output is discarded, and it
/// is killed when the handle drops.
pub fn spawn_backend(bin: &str, database_url: &str, claim_secs: u32) -> Proc {
    let child = Command::new(bin)
        .args([
            "backend",
            "--listen",
            "127.0.0.1:0",
            "--transport-workers",
            "1",
        ])
        .args([
            "--claim-secs",
            &claim_secs.to_string(),
            "--queue-poll-ms",
            "50",
        ])
        .args(["--retry-first-secs", "1", "--hostname", "mx.test.example"])
        .args(["--database-url", database_url, "--check-mail-auth=false"])
        .env_remove("BRIDGEHEAD_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a back-end process");
    Proc(child)
}

//! The compose stack for real: the images `deploy/docker-compose.yml` uses are built without
//! a registry (`tests/support/compose/build-images.sh`: a debootstrapped Debian base,
//! PostgreSQL and HAProxy from Debian's packages, Bridgehead from `deploy/Dockerfile`'s
//! `prebuilt` target with this build's binary; cached by content hash), the user's compose
//! file is started with them (`docker-compose up -d`, the secrets made as its header says),
//! the `init` job and the `admin` service run, and mail moves through HAProxy's published
//! ports: submission with STARTTLS and AUTH, inbound MX, POP3S retrieval — the bytes
//! checked. Then, under a steady SMTP load through HAProxy (`tests/support/smtp_load.py`):
//! `docker kill` of a back-end, then of a front-end, then a PostgreSQL restart; a rolling
//! `up -d --no-deps --force-recreate` of every front-end and back-end; one back-end cut off
//! from the database network for 30 s. After each, every message that got a `250` is in each
//! of its recipients' mailboxes exactly once (read over POP3S through HAProxy), no message is
//! there twice, errors were only temporary, and the longest pause in acceptances is printed and
//! bounded. Everything it created is removed, also when it fails.
//!
//! Needs the Docker Engine (with docker-compose) and debootstrap; `.ci/run` checks both.
use bridgehead_tests::compose::{images, project_dir, root, text, Stack};
use bridgehead_tests::procs::free_listen_ports;
use bridgehead_tests::python;
use serde_json::Value;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bridgehead");
const PASSWORD: &str = "alice's compose password";

/// Submission (STARTTLS, AUTH), inbound MX, then POP3S: prints the retrieved messages as JSON.
const MAIL: &str = r#"
import json, poplib, smtplib, ssl, sys, time
smtp, sub, pop3s, pw = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
me = "alice@example.org"
s = smtplib.SMTP("127.0.0.1", sub, timeout=30); s.starttls(context=ctx); s.login(me, pw)
s.sendmail(me, [me], "From: <%s>\r\nTo: <%s>\r\nSubject: submitted\r\n\r\ntoken-submitted\r\n" % (me, me))
s.quit()
m = smtplib.SMTP("127.0.0.1", smtp, timeout=30); m.ehlo("outside.example")
m.sendmail("someone@outside.example", [me],
           "From: <someone@outside.example>\r\nTo: <%s>\r\nSubject: inbound\r\n\r\ntoken-inbound\r\n" % me)
m.quit()
p = poplib.POP3_SSL("127.0.0.1", pop3s, context=ctx, timeout=30)
p.user(me); p.pass_(pw)
n = p.stat()[0]
print(json.dumps([b"\r\n".join(p.retr(i + 1)[1]).decode() for i in range(n)]))
p.quit()
"#;

#[test]
fn the_compose_stack_moves_mail_through_haproxy() {
    let info = Command::new("docker").arg("info").output();
    assert!(
        info.as_ref().is_ok_and(|o| o.status.success()),
        "the Docker Engine is not running (docker info failed); this test needs it"
    );
    let built = Instant::now();
    let mut env = images(BIN);
    eprintln!("images ready in {:?}", built.elapsed());
    let names = [
        "SMTP_PORT",
        "SUBMISSION_PORT",
        "SUBMISSIONS_PORT",
        "POP3_PORT",
        "POP3S_PORT",
        "CONSOLE_PORT",
    ];
    for (name, port) in names.iter().zip(free_listen_ports(names.len())) {
        env.push((name.to_string(), port.to_string()));
    }
    // No DNS reaches the outside from here: inbound checks would defer outside mail.
    env.push(("CHECK_MAIL_AUTH".into(), "false".into()));
    let stack = Stack {
        project: format!("bhcompose{}", std::process::id()),
        dir: project_dir(BIN),
        env,
    };
    let began = Instant::now();
    stack.run(&["up", "-d"]);
    let healthy = stack.wait_healthy(began);
    eprintln!("compose up to healthy: {healthy:?}");

    // The init job made the domain; the admin service adds a user (password on stdin).
    let init = stack.health_of("init", "{{.State.ExitCode}}");
    assert_eq!(init, "0", "{}", stack.logs());
    add_user(&stack, "alice@example.org");
    let domains = stack.run(&["run", "--rm", "-T", "admin", "domain", "list"]);
    assert!(text(&domains).contains("example.org"), "{}", text(&domains));

    // The operator console, through HAProxy to either back-end: its sign-in page.
    let console = format!("http://127.0.0.1:{}/login", stack.env("CONSOLE_PORT"));
    let (ok, page, err) = bridgehead_tests::curl(&[&console]);
    let page = String::from_utf8_lossy(&page);
    assert!(ok && page.contains("Sign in"), "{err}{page}");

    let ports = [
        stack.env("SMTP_PORT"),
        stack.env("SUBMISSION_PORT"),
        stack.env("POP3S_PORT"),
    ]
    .map(|p| p.to_string());
    let out = python(MAIL, &[&ports[0], &ports[1], &ports[2], PASSWORD]);
    let messages: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("\r\n\r\ntoken-submitted"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("\r\n\r\ntoken-inbound"),
        "{}",
        messages[1]
    );
    // HAProxy passes the client's address on (PROXY v2): the front-end names the client,
    // not HAProxy's container.
    let haproxy = stack.health_of(
        "haproxy",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    assert!(
        messages[1].contains("Received: from outside.example ([")
            && !messages[1].contains(&format!("[{haproxy}]")),
        "HAProxy is {haproxy}: {}",
        messages[1]
    );

    for user in LOAD_RCPTS {
        add_user(&stack, user);
    }
    let mut seen = Vec::new();
    seen.extend(kills(&stack));
    seen.extend(rolling_restart(&stack));
    seen.extend(database_cut(&stack));
    let boxes = mailboxes(&stack);
    exactly_once(&boxes, &seen);
}

const LOAD_RCPTS: [&str; 2] = ["load1@example.org", "load2@example.org"];

fn add_user(stack: &Stack, user: &str) {
    let mut add = stack
        .command(&["run", "--rm", "-T", "admin", "user", "add", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut add.stdin.take().unwrap(),
        format!("{PASSWORD}\n").as_bytes(),
    )
    .unwrap();
    let added = add.wait_with_output().unwrap();
    assert!(
        added.status.success(),
        "admin user add {user}: {}",
        text(&added)
    );
}

/// SMTP load through HAProxy for `seconds`, in a thread: its JSON result.
fn load(stack: &Stack, seconds: u32, prefix: &str) -> std::thread::JoinHandle<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.json");
    let args: Vec<String> = vec![
        "127.0.0.1".into(),
        stack.env("SMTP_PORT").to_string(),
        seconds.to_string(),
        "2".into(),
        LOAD_RCPTS[0].into(),
        LOAD_RCPTS[1].into(),
        out.display().to_string(),
        prefix.into(),
    ];
    let script = root().join("tests/support/smtp_load.py");
    std::thread::spawn(move || {
        let status = Command::new("python3")
            .arg(script)
            .args(&args)
            .status()
            .expect("python3");
        assert!(status.success());
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        drop(dir);
        v
    })
}

/// Checks a finished load: some mail accepted, only temporary errors; returns what was
/// accepted, after printing the errors and the longest pause between acceptances.
fn judge(name: &str, result: &Value, max_pause: f64, max_4xx: u64) -> Vec<Value> {
    let accepted = result["accepted"].as_array().unwrap().clone();
    let mut times: Vec<f64> = accepted.iter().map(|a| a[2].as_f64().unwrap()).collect();
    times.sort_by(f64::total_cmp);
    let pause = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let errors = result["errors"].as_object().unwrap();
    eprintln!(
        "{name}: {} accepted, longest pause {pause:.1} s, errors {errors:?}",
        accepted.len()
    );
    assert!(accepted.len() > 20, "{name}: the load went on: {result}");
    let mut four = 0;
    for (kind, n) in errors {
        let code = kind.trim_start_matches("rcpt ");
        assert!(
            !code.starts_with('5'),
            "{name}: {n} × {kind}, a permanent error"
        );
        if code.starts_with('4') {
            four += n.as_u64().unwrap();
        }
    }
    assert!(four <= max_4xx, "{name}: {four} 4xx replies: {errors:?}");
    assert!(pause < max_pause, "{name}: acceptances paused {pause:.1} s");
    accepted
}

/// Kills a back-end, then a front-end, then restarts PostgreSQL, under load; brings the
/// killed ones back.
fn kills(stack: &Stack) -> Vec<Value> {
    let running = load(stack, 36, "kill-");
    let at = |s: u64| std::thread::sleep(Duration::from_secs(s));
    at(4);
    stack.docker(&["kill", &stack.container("backend1")]);
    at(8);
    stack.docker(&["kill", &stack.container("frontend1")]);
    at(8);
    stack.docker(&["restart", "-t", "5", &stack.container("postgres")]);
    at(6);
    stack.docker(&[
        "start",
        &stack.container("backend1"),
        &stack.container("frontend1"),
    ]);
    let result = running.join().unwrap();
    for s in ["backend1", "frontend1"] {
        stack.wait_service(s);
    }
    judge("kills", &result, 20.0, 1000)
}

/// Recreates every front-end and back-end, one at a time, under load.
fn rolling_restart(stack: &Stack) -> Vec<Value> {
    let running = load(stack, 50, "roll-");
    let began = Instant::now();
    for s in ["frontend1", "frontend2", "backend1", "backend2"] {
        stack.run(&["up", "-d", "--no-deps", "--force-recreate", s]);
        stack.wait_service(s);
    }
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(45),
        "the rolling restart took {took:?}"
    );
    eprintln!("rolling restart of 4 nodes: {took:?}");
    judge("rolling restart", &running.join().unwrap(), 10.0, 50)
}

/// Cuts one back-end off the database network for 30 s under load, then reconnects it.
fn database_cut(stack: &Stack) -> Vec<Value> {
    let running = load(stack, 40, "cut-");
    let network = format!("{}_db", stack.project);
    std::thread::sleep(Duration::from_secs(3));
    stack.docker(&[
        "network",
        "disconnect",
        &network,
        &stack.container("backend1"),
    ]);
    std::thread::sleep(Duration::from_secs(30));
    stack.docker(&["network", "connect", &network, &stack.container("backend1")]);
    let result = running.join().unwrap();
    stack.wait_service("backend1");
    judge("database cut", &result, 20.0, 1000)
}

/// The Message-IDs in each load recipient's mailbox, read over POP3S through HAProxy.
fn mailboxes(stack: &Stack) -> HashMap<String, Vec<String>> {
    const READ: &str = r#"
import json, poplib, ssl, sys
port, pw, users = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {}
for u in users:
    p = poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=60)
    p.user(u); p.pass_(pw)
    ids = []
    for i in range(p.stat()[0]):
        for line in p.top(i + 1, 0)[1]:
            if line.lower().startswith(b"message-id:"):
                ids.append(line.split(b":", 1)[1].strip().strip(b"<>").decode())
    p.quit()
    out[u] = ids
print(json.dumps(out))
"#;
    let port = stack.env("POP3S_PORT").to_string();
    let mut args = vec![port.as_str(), PASSWORD];
    args.extend(LOAD_RCPTS);
    serde_json::from_str(python(READ, &args).trim()).unwrap()
}

/// Every acknowledged message is in each recipient that took it exactly once; none twice.
fn exactly_once(boxes: &HashMap<String, Vec<String>>, accepted: &[Value]) {
    for (user, ids) in boxes {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for id in ids {
            *count.entry(id).or_default() += 1;
        }
        for (id, n) in &count {
            assert_eq!(*n, 1, "{id} is in {user} {n} times");
        }
        for a in accepted {
            let (id, took) = (a[0].as_str().unwrap(), a[1].as_array().unwrap());
            if took.iter().any(|t| t == user.as_str()) {
                assert_eq!(
                    count.get(id),
                    Some(&1),
                    "{id} got a 250 but is not in {user}"
                );
            }
        }
    }
    eprintln!(
        "{} acknowledged messages, each stored exactly once",
        accepted.len()
    );
}

//! Real content filters for the milter tests, each started privately on loopback by the test
//! and stopped by PID when its handle drops: ClamAV (`clamd` with a signature database of the
//! test's own — the EICAR test string, its pattern made with `sigtool`, since the official
//! database cannot be downloaded here — and `clamav-milter` in front of it). A missing
//! package fails the test with the command that installs it.
use crate::procs::free_port;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sends argv[5] (LF line ends) to 127.0.0.1:argv[1] from argv[2] to argv[3]; argv[4] is
/// "-" (port 25, no login) or "USER:PASS" (submission: STARTTLS, AUTH). Prints "250" or
/// "<code> <text>".
const SEND: &str = r#"
import smtplib, ssl, sys
port, sender, rcpt, how, msg = sys.argv[1:6]
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="mta.sender.test", timeout=120)
if how != "-":
    user, password = how.split(":", 1)
    s.starttls(context=ssl._create_unverified_context())
    s.login(user, password)
try:
    s.sendmail(sender, [rcpt], msg.replace("\n", "\r\n").encode())
    print("250")
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

/// One message through the SMTP port `port` with Python's smtplib, logged in as `login`
/// (user, password) on submission; the reply to its end of DATA ("250" or "<code> <text>").
pub async fn smtp_send(
    port: u16,
    sender: &str,
    rcpt: &str,
    login: Option<(&str, &str)>,
    msg: &str,
) -> String {
    let how = login.map_or("-".to_string(), |(u, p)| format!("{u}:{p}"));
    let args = [
        port.to_string(),
        sender.into(),
        rcpt.into(),
        how,
        msg.into(),
    ];
    crate::blocking(move || crate::python(SEND, &args.each_ref().map(String::as_str)))
        .await
        .trim()
        .to_string()
}

/// The EICAR anti-virus test string (not a virus: every scanner detects it by agreement).
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn need(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: apt-get install {package}"
    );
}

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"))
}

/// Waits until `port` accepts connections, or `limit` passes (then panics with `log`).
fn wait_port(port: u16, limit: Duration, log: &Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < limit,
            "nothing listens on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// clamd and clamav-milter.
pub struct ClamAv {
    /// Where clamav-milter listens.
    pub milter: SocketAddr,
    /// Where clamd listens.
    pub clamd_addr: SocketAddr,
    clamd: Option<Child>,
    milter_child: Option<Child>,
    dir: tempfile::TempDir,
}

impl ClamAv {
    pub fn start() -> ClamAv {
        need("/usr/sbin/clamd", "clamav-daemon");
        need("/usr/sbin/clamav-milter", "clamav-milter");
        need("/usr/bin/sigtool", "clamav");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for sub in ["db", "tmp"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        // The signature: EICAR's text as a hex pattern, as sigtool writes it.
        let hex = Command::new("sigtool")
            .arg("--hex-dump")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(&EICAR.as_bytes()[..60])?;
                c.wait_with_output()
            })
            .expect("sigtool --hex-dump");
        let hex = String::from_utf8_lossy(&hex.stdout).trim().to_string();
        let sig = format!("Bridgehead.Test.EICAR:0:*:{hex}\n");
        std::fs::write(root.join("db/test.ndb"), sig).unwrap();
        let (clamd_port, milter_port) = (free_port(), free_port());
        let r = root.display();
        std::fs::write(
            root.join("clamd.conf"),
            format!(
                "Foreground yes\nLogFile {r}/clamd.log\nLogVerbose yes\nPidFile {r}/clamd.pid\n\
                 DatabaseDirectory {r}/db\nTemporaryDirectory {r}/tmp\nTCPSocket {clamd_port}\n\
                 TCPAddr 127.0.0.1\n"
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("milter.conf"),
            format!(
                "Foreground yes\nLogFile {r}/milter.log\nLogVerbose yes\nPidFile {r}/milter.pid\n\
                 MilterSocket inet:{milter_port}@127.0.0.1\nClamdSocket tcp:127.0.0.1:{clamd_port}\n\
                 OnInfected Reject\nOnFail Defer\nAddHeader Replace\nReadTimeout 10\n"
            ),
        )
        .unwrap();
        let clamd_conf = root.join("clamd.conf");
        let clamd = spawn("clamd", &["-c", clamd_conf.to_str().unwrap()]);
        wait_port(clamd_port, Duration::from_secs(60), &root.join("clamd.log"));
        let milter_conf = root.join("milter.conf");
        let milter = spawn("clamav-milter", &["-c", milter_conf.to_str().unwrap()]);
        wait_port(
            milter_port,
            Duration::from_secs(30),
            &root.join("milter.log"),
        );
        ClamAv {
            milter: SocketAddr::from(([127, 0, 0, 1], milter_port)),
            clamd_addr: SocketAddr::from(([127, 0, 0, 1], clamd_port)),
            clamd: Some(clamd),
            milter_child: Some(milter),
            dir,
        }
    }

    /// Stops clamd (the milter stays, and must say it cannot scan).
    pub fn stop_clamd(&mut self) {
        stop(self.clamd.take());
    }

    /// Stops clamav-milter itself.
    pub fn stop_milter(&mut self) {
        stop(self.milter_child.take());
    }

    /// Both logs, for failure messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "clamd:\n{}\nclamav-milter:\n{}",
            read("clamd.log"),
            read("milter.log")
        )
    }
}

fn stop(child: Option<Child>) {
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for ClamAv {
    fn drop(&mut self) {
        stop(self.milter_child.take());
        stop(self.clamd.take());
    }
}

/// rspamd with its milter-speaking proxy worker scanning by itself, on a free loopback port,
/// with the distribution's rules and a local configuration of the test's own: nothing is
/// treated as local (loopback clients are scanned like any), DNS answers nothing at once (no
/// network here), and the result headers are added (`X-Spamd-Result`, `X-Spam-Status`).
/// Runs in its own process group, stopped with SIGTERM (then SIGKILL) on drop.
pub struct Rspamd {
    pub milter: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Rspamd {
    pub fn start() -> Rspamd {
        need("/usr/bin/rspamd", "rspamd");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for sub in ["local.d", "run", "db", "log"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        let port = free_port();
        std::fs::write(root.join("rspamd.conf"), rspamd_conf(port)).unwrap();
        std::fs::write(
            root.join("local.d/options.inc"),
            "local_addrs = [];\ndns {\n  nameserver = [\"127.0.0.1:1\"];\n  timeout = 0.5s;\n  retransmits = 1;\n}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("local.d/milter_headers.conf"),
            "use = [\"x-spamd-result\", \"x-spam-status\", \"x-spam-level\"];\nskip_local = false;\nskip_authenticated = false;\n",
        )
        .unwrap();
        let var = |k: &str, v: &Path| format!("--var={k}={}", v.display());
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new("rspamd")
                .args(["-f", "-i", "-u", "root", "-g", "root", "-c"])
                .arg(root.join("rspamd.conf"))
                .arg(var("CONFDIR", Path::new("/etc/rspamd")))
                .arg(var("LOCAL_CONFDIR", root))
                .arg(var("RUNDIR", &root.join("run")))
                .arg(var("DBDIR", &root.join("db")))
                .arg(var("LOGDIR", &root.join("log")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start rspamd")
        };
        let r = Rspamd {
            milter: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            dir,
        };
        wait_port(
            port,
            Duration::from_secs(120),
            &r.dir.path().join("log/rspamd.log"),
        );
        r
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/rspamd.log")).unwrap_or_default()
    }
}

fn rspamd_conf(port: u16) -> String {
    format!(
        ".include \"$CONFDIR/common.conf\"
options {{
    pidfile = \"$RUNDIR/rspamd.pid\";
    .include \"$CONFDIR/options.inc\"
    .include(try=true; priority=1,duplicate=merge) \"$LOCAL_CONFDIR/local.d/options.inc\"
}}
logging {{
    type = \"file\";
    filename = \"$LOGDIR/rspamd.log\";
    level = \"info\";
}}
worker \"rspamd_proxy\" {{
    bind_socket = \"127.0.0.1:{port}\";
    milter = yes;
    timeout = 60s;
    upstream \"local\" {{
        default = yes;
        self_scan = yes;
    }}
    count = 1;
    spam_header = \"X-Spam\";
    reject_message = \"Spam message rejected\";
}}
"
    )
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// OpenDKIM as a signing milter for `domain` (selector `od`, a key made by
/// `opendkim-genkey`), on a free loopback port; `record` is the TXT record to publish.
pub struct OpenDkim {
    pub milter: SocketAddr,
    pub record: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl OpenDkim {
    pub fn start(domain: &str) -> OpenDkim {
        need("/usr/sbin/opendkim", "opendkim");
        need("/usr/sbin/opendkim-genkey", "opendkim-tools");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let made = Command::new("opendkim-genkey")
            .args(["-D", root.to_str().unwrap(), "-d", domain, "-s", "od"])
            .status()
            .expect("opendkim-genkey");
        assert!(made.success());
        let txt = std::fs::read_to_string(root.join("od.txt")).unwrap();
        // The record's quoted strings, joined.
        let record: String = txt
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        let port = free_port();
        let r = root.display();
        std::fs::write(
            root.join("opendkim.conf"),
            format!(
                "Mode s\nDomain {domain}\nSelector od\nKeyFile {r}/od.private\n\
                 Socket inet:{port}@127.0.0.1\nSyslog no\nBackground no\nPidFile {r}/opendkim.pid\n\
                 Canonicalization relaxed/relaxed\nInternalHosts 127.0.0.1\nLogWhy yes\nRequireSafeKeys false\n"
            ),
        )
        .unwrap();
        let conf = root.join("opendkim.conf");
        let child = spawn("opendkim", &["-f", "-x", conf.to_str().unwrap()]);
        wait_port(port, Duration::from_secs(30), &conf);
        OpenDkim {
            milter: SocketAddr::from(([127, 0, 0, 1], port)),
            record,
            child,
            dir,
        }
    }
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

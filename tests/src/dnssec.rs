//! DNSSEC for the DANE tests: zones signed with `ldns-signzone` (Debian's ldnsutils) —
//! properly, with signatures long expired, or under a key the validator does not trust —
//! served by the private Knot (`dns::Dns`), and a private unbound that validates them with
//! the test's trust anchors: the trusted local validating resolver a back-end is given as
//! `--dane-resolver`. Stopped by PID when the handle drops.
use crate::procs::free_port;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a zone is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Valid signatures under a key the validator trusts: answers are secure (AD).
    Good,
    /// Signatures that expired in 2020: answers are bogus (SERVFAIL).
    Expired,
    /// Valid signatures under a key the validator does not trust: bogus (SERVFAIL).
    UntrustedKey,
    /// Not signed, no trust anchor: answers are insecure (no AD).
    Unsigned,
}

/// A zone ready to serve: its text (signed or not) and the trust anchor the validator gets.
pub struct Zone {
    pub name: String,
    pub text: String,
    anchor: Option<String>,
}

fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (apt-get install ldnsutils)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `text` (a zone file for `name`) signed as `how` says, with keys made in `dir`.
pub fn sign(dir: &Path, name: &str, text: &str, how: Signing) -> Zone {
    if how == Signing::Unsigned {
        return Zone {
            name: name.into(),
            text: text.into(),
            anchor: None,
        };
    }
    let file = format!("{name}.zone");
    std::fs::write(dir.join(&file), text).expect("zone file");
    let key = tool(dir, "ldns-keygen", &["-a", "ECDSAP256SHA256", "-k", name]);
    let mut args = vec!["-o", name];
    if how == Signing::Expired {
        args.extend(["-i", "20200101000000", "-e", "20200201000000"]);
    }
    args.extend([file.as_str(), key.as_str()]);
    tool(dir, "ldns-signzone", &args);
    let trusted = match how {
        Signing::UntrustedKey => tool(dir, "ldns-keygen", &["-a", "ECDSAP256SHA256", "-k", name]),
        _ => key,
    };
    Zone {
        name: name.into(),
        text: std::fs::read_to_string(dir.join(format!("{file}.signed"))).expect("signed zone"),
        anchor: Some(std::fs::read_to_string(dir.join(format!("{trusted}.ds"))).expect("DS")),
    }
}

/// A validating unbound on a free loopback port, asking `authority` for `zones`.
pub struct Validator {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Validator {
    pub fn start(authority: SocketAddr, zones: &[Zone]) -> Validator {
        assert!(
            Path::new("/usr/sbin/unbound").exists(),
            "unbound is not installed: apt-get install unbound"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let anchors: String = zones.iter().filter_map(|z| z.anchor.clone()).collect();
        std::fs::write(root.join("anchors"), anchors).expect("anchors");
        let port = free_port();
        let mut conf = format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  \
             username: \"\"\n  chroot: \"\"\n  directory: \"{root}\"\n  pidfile: \"\"\n  \
             use-syslog: no\n  logfile: \"{root}/unbound.log\"\n  verbosity: 1\n  \
             val-log-level: 2\n  do-not-query-localhost: no\n  do-ip6: no\n  \
             module-config: \"validator iterator\"\n  trust-anchor-file: \"{root}/anchors\"\n  \
             access-control: 127.0.0.0/8 allow\n  local-zone: \"test.\" nodefault\n\
             remote-control:\n  control-enable: no\n",
            root = root.display()
        );
        for z in zones {
            conf.push_str(&format!(
                "stub-zone:\n  name: \"{}\"\n  stub-addr: {}@{}\n",
                z.name,
                authority.ip(),
                authority.port()
            ));
        }
        std::fs::write(root.join("unbound.conf"), conf).expect("unbound.conf");
        let child = Command::new("/usr/sbin/unbound")
            .arg("-d")
            .arg("-c")
            .arg(root.join("unbound.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unbound");
        let v = Validator {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            dir,
        };
        let start = Instant::now();
        while !v.log().contains("start of service") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "unbound did not start: {}",
                v.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        v
    }

    /// unbound's log (validation failures and their reasons), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

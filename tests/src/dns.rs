//! A private authoritative DNS server (Knot, Debian's `knot`) on a free loopback port,
//! serving the test's zones: the real DNS the transport (and, later, mail authentication)
//! asks when a back-end is given `--dns-server`. A zone given without text is configured but
//! has no file, so Knot answers SERVFAIL for it. Stopped by PID when the handle drops.
use crate::procs::free_port;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dns {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// Why a DNS server could not be had: the test fails with this (never skips silently).
fn unavailable() -> Option<&'static str> {
    let found = ["/usr/sbin/knotd", "/usr/bin/knotd"]
        .iter()
        .any(|p| Path::new(p).exists());
    (!found).then_some("Knot DNS is not installed: apt-get install knot")
}

impl Dns {
    /// Serves `zones`: (zone name, zone file text; "" for a zone that fails to load).
    pub fn start(zones: &[(&str, &str)]) -> Dns {
        Dns::start_on(free_port(), zones)
    }

    /// Stops this server and serves `zones` on the same address instead (records published
    /// after the cluster that asks it was started).
    pub fn restart(self, zones: &[(&str, &str)]) -> Dns {
        let port = self.addr.port();
        drop(self);
        Dns::start_on(port, zones)
    }

    fn start_on(port: u16, zones: &[(&str, &str)]) -> Dns {
        if let Some(why) = unavailable() {
            panic!("{why}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let mut conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {root}\n\
             database:\n    storage: {root}/db\n\
             log:\n  - target: {root}/knot.log\n    any: info\nzone:\n",
            root = root.display()
        );
        for (name, text) in zones {
            let file = format!("{name}.zone");
            if !text.is_empty() {
                std::fs::write(root.join(&file), text).expect("zone file");
            }
            conf.push_str(&format!(
                "  - domain: {name}\n    storage: {}\n    file: {file}\n",
                root.display()
            ));
        }
        std::fs::write(root.join("knot.conf"), conf).expect("knot.conf");
        let child = Command::new("knotd")
            .arg("-c")
            .arg(root.join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start knotd");
        let dns = Dns {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            dir,
        };
        let loaded: Vec<String> = zones
            .iter()
            .filter(|z| !z.1.is_empty())
            .map(|z| format!("[{}.] loaded", z.0))
            .collect();
        dns.wait_for(&loaded);
        dns
    }

    /// Waits until the log says the server started and every zone in `loaded` was loaded.
    fn wait_for(&self, loaded: &[String]) {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains("server started") && loaded.iter().all(|l| log.contains(l.as_str())) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "knotd did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Knot's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

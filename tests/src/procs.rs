//! Real `bridgehead` processes for multi-node and crash tests: start, wait for their port,
//! SIGTERM or SIGKILL them. Every process is killed when its handle drops.
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` distinct ports free on every address and below the kernel's range for outgoing
/// connections (32768 and up on Linux), so that no connection made meanwhile takes one as its
/// own end before the server it is meant for binds it (Docker's published ports, bound later
/// by `docker-proxy`, met exactly that).
pub fn free_listen_ports(n: usize) -> Vec<u16> {
    use std::hash::{BuildHasher, RandomState};
    let start = RandomState::new().hash_one(std::process::id()) % 12_000;
    // The probes stay bound until all are found: the ports are distinct.
    let held: Vec<TcpListener> = (0..12_000)
        .map(|i| 20_000 + ((start + i) % 12_000) as u16)
        .filter_map(|p| TcpListener::bind(("0.0.0.0", p)).ok())
        .take(n)
        .collect();
    assert_eq!(held.len(), n, "free ports in 20000..32000");
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Blocks until something accepts connections on `port` (at most 30 s).
pub fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "port {port} did not open"
        );
        sleep(Duration::from_millis(20));
    }
}

/// A child process, killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }

    /// SIGTERM: the polite stop.
    pub fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        let rc = unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to {}", self.0.id());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            sleep(Duration::from_millis(20));
        }
        None
    }
}

/// How to start one node: the binary, extra arguments and environment.
pub struct Node<'a> {
    pub bin: &'a str,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl<'a> Node<'a> {
    /// A back-end on `127.0.0.1:port` over `url`, with no queue or connector workers.
    pub fn backend(bin: &'a str, url: &str, port: u16) -> Node<'a> {
        let args = [
            "backend",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            url,
            "--transport-workers=0",
            "--connector-workers=0",
            "--db-connections=8",
            // Mail authentication asks DNS, which tests have only when they start one.
            "--check-mail-auth=false",
        ];
        Node {
            bin,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        }
    }

    /// A front-end over the back-ends on `backends`; add its listeners with `arg`.
    pub fn frontend(bin: &'a str, backends: &[u16]) -> Node<'a> {
        let list: Vec<String> = backends.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let args = [
            "frontend".to_string(),
            format!("--backend={}", list.join(",")),
            "--backend-timeout-secs=5".into(),
            "--hostname=mx.cluster.test".into(),
        ];
        Node {
            bin,
            args: args.to_vec(),
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Starts the process; its output goes nowhere unless `BRIDGEHEAD_TEST_NODE_LOGS` is set.
    pub fn spawn(self) -> Proc {
        let out = || match std::env::var_os("BRIDGEHEAD_TEST_NODE_LOGS") {
            Some(_) => Stdio::inherit(),
            None => Stdio::null(),
        };
        Proc(
            Command::new(self.bin)
                .args(&self.args)
                .env_remove("BRIDGEHEAD_ADMIN_TOKEN")
                .envs(self.env)
                .stdout(out())
                .stderr(out())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", self.bin)),
        )
    }
}

/// Debian's HAProxy, if installed.
pub fn haproxy_binary() -> Option<&'static str> {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// HAProxy in TCP mode: each `(listen, server)` pair is a front with one server that gets a
/// PROXY v2 header. The configuration goes to `dir`; returns once every listen port is open.
pub fn haproxy(dir: &std::path::Path, routes: &[(u16, u16)]) -> Proc {
    let bin = haproxy_binary().expect("haproxy is not installed (apt-get install haproxy)");
    let mut cfg = String::from(
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n",
    );
    for (listen, server) in routes {
        cfg.push_str(&format!(
            "listen p{listen}\n  bind 127.0.0.1:{listen}\n  server s 127.0.0.1:{server} send-proxy-v2\n"
        ));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    for (listen, _) in routes {
        wait_port(*listen);
    }
    proc
}

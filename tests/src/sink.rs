//! A destination SMTP server for the outbound tests: Python's aiosmtpd running
//! `tests/support/sink.py`, on a loopback address and port, recording what it receives.
use crate::{procs, write_certificate};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A destination SMTP server (Python aiosmtpd, `tests/support/sink.py`) on a free loopback
/// port; stops when dropped.
pub struct Sink {
    pub port: u16,
    out: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
    _cert_dir: Option<tempfile::TempDir>,
}

impl Sink {
    /// `args`: extra sink options, e.g. `["--reject", "nobody"]`; `tls` offers STARTTLS.
    /// A port taken between choosing it and binding it (other tests run beside) is retried
    /// with another.
    pub fn start(args: &[&str], tls: bool) -> Sink {
        for _ in 0..3 {
            let port = procs::free_port();
            if let Some(sink) = Sink::try_start("127.0.0.1", port, args, tls) {
                return sink;
            }
        }
        panic!("the sink did not start (is aiosmtpd installed?)");
    }

    /// A sink offering STARTTLS with the given certificate chain and key (PEM files).
    pub fn start_with_certificate(cert: &Path, key: &Path) -> Sink {
        Sink::start_with_certificate_and(cert, key, &[])
    }

    /// As `start_with_certificate`, with extra sink options (`--requiretls`).
    pub fn start_with_certificate_and(cert: &Path, key: &Path, args: &[&str]) -> Sink {
        for _ in 0..3 {
            let port = procs::free_port();
            if let Some(sink) = Sink::spawn("127.0.0.1", port, args, Some((cert, key))) {
                return sink;
            }
        }
        panic!("the sink did not start (is aiosmtpd installed?)");
    }

    /// A sink on `host`:`port` (another loopback address, a port chosen by the test).
    pub fn start_on(host: &str, port: u16, args: &[&str]) -> Sink {
        Sink::try_start(host, port, args, false)
            .unwrap_or_else(|| panic!("the sink did not start on {host}:{port}"))
    }

    fn try_start(host: &str, port: u16, args: &[&str], tls: bool) -> Option<Sink> {
        if !tls {
            return Sink::spawn(host, port, args, None);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = write_certificate(dir.path());
        let mut sink = Sink::spawn(host, port, args, Some((&cert, &key)))?;
        sink._cert_dir = Some(dir);
        Some(sink)
    }

    fn spawn(host: &str, port: u16, args: &[&str], tls: Option<(&Path, &Path)>) -> Option<Sink> {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("received.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(port.to_string()).arg(&out).args(args);
        cmd.args(["--host", host]);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls").arg(cert).arg(key);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect(
                "python3 with aiosmtpd (apt-get install python3-aiosmtpd, or pip install aiosmtpd)",
            );
        let mut first = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .expect("sink output");
        if first.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(Sink {
            port,
            out,
            child,
            _dir: dir,
            _cert_dir: None,
        })
    }

    /// The messages received so far, one JSON document each.
    pub fn received(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many times a DATA phase has started (with `--slow`).
    pub fn data_started(&self) -> usize {
        let marker = self.out.with_extension("jsonl.data-started");
        std::fs::read_to_string(marker)
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Waits until `n` messages have arrived (or 30 s), returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received();
            if got.len() >= n || std::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

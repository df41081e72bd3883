//! The deployment's compose stack, run for real by `tests/tests/compose.rs`: the images built
//! without a registry (`support/compose/build-images.sh`), a project directory with the
//! secrets made as the compose file's header says, and the started project (`Stack`): its
//! docker-compose and docker commands, health waits, logs, and `down -v` when dropped.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository (this crate is its `tests/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A started project; `docker-compose down -v` when dropped.
pub struct Stack {
    pub project: String,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Stack {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker-compose");
        c.args(["-p", &self.project, "-f"])
            .arg(root().join("deploy/docker-compose.yml"))
            .arg("--project-directory")
            .arg(self.dir.path())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("docker-compose");
        assert!(
            out.status.success(),
            "docker-compose {args:?}: {}",
            text(&out)
        );
        out
    }

    pub fn env(&self, name: &str) -> u16 {
        let v = &self.env.iter().find(|(k, _)| k == name).expect("set").1;
        v.parse().unwrap()
    }

    /// Waits until every long-running service is healthy (or running, for those without a
    /// check); returns how long that took.
    pub fn wait_healthy(&self, began: Instant) -> Duration {
        let services = ["postgres", "backend1", "backend2", "frontend1", "frontend2"];
        loop {
            let states: Vec<String> = services
                .iter()
                .map(|s| self.health(s))
                .chain([self.health_of("haproxy", "{{.State.Status}}")])
                .collect();
            if states.iter().all(|s| s == "healthy" || s == "running") {
                return began.elapsed();
            }
            assert!(
                began.elapsed() < Duration::from_secs(180),
                "not healthy in 3 minutes: {services:?} {states:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn health(&self, service: &str) -> String {
        self.health_of(service, "{{.State.Health.Status}}")
    }

    pub fn health_of(&self, service: &str, format: &str) -> String {
        let name = format!("{}_{service}_1", self.project);
        let out = Command::new("docker")
            .args(["inspect", "-f", format, &name])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    /// `docker ARGS`, which must succeed.
    pub fn docker(&self, args: &[&str]) {
        let out = Command::new("docker").args(args).output().expect("docker");
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    }

    /// Waits until `service` is healthy again.
    pub fn wait_service(&self, service: &str) {
        let began = Instant::now();
        while self.health(service) != "healthy" {
            assert!(
                began.elapsed() < Duration::from_secs(90),
                "{service} not healthy again: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn logs(&self) -> String {
        let out = self
            .command(&["logs", "--no-color", "--tail", "30"])
            .output()
            .expect("logs");
        text(&out)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::env::var_os("BRIDGEHEAD_COMPOSE_KEEP").is_some() {
            eprintln!("kept: project {} in {:?}", self.project, self.dir.path());
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            let _ = dir.keep();
            return;
        }
        let _ = self
            .command(&["down", "-v", "--remove-orphans", "--timeout", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The images, built (or found cached): NAME=image pairs for docker-compose.
pub fn images(bin: &str) -> Vec<(String, String)> {
    let out = Command::new("bash")
        .arg(root().join("tests/support/compose/build-images.sh"))
        .arg(bin)
        .output()
        .expect("bash");
    assert!(out.status.success(), "building the images: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The project directory: haproxy.cfg beside the secrets, made as the compose file's header
/// says, readable by the containers' users (uid 10001, postgres).
pub fn project_dir(bin: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("deploy/haproxy.cfg"),
        dir.path().join("haproxy.cfg"),
    )
    .unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let pki = Command::new(bin)
        .arg("pki")
        .arg(secrets.join("pki"))
        .args(["--name", "backend1", "--name", "backend2"])
        .output()
        .unwrap();
    assert!(pki.status.success(), "{}", text(&pki));
    let random = || format!("{:032x}", rand_u128());
    // As the compose file's header makes it: 32 random bytes, base64.
    let key = {
        use base64::Engine;
        let bytes = [rand_u128().to_le_bytes(), rand_u128().to_le_bytes()].concat();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let db_password = random();
    let files = [
        ("admin-token", random()),
        ("secret-key", key),
        ("postmaster-password", random()),
        ("db-password", db_password.clone()),
        (
            "db-url",
            format!("postgres://bridgehead:{db_password}@postgres/bridgehead"),
        ),
    ];
    for (name, value) in files {
        std::fs::write(secrets.join(name), format!("{value}\n")).unwrap();
    }
    std::fs::copy(
        secrets.join("pki/backend.pem"),
        secrets.join("tls-cert.pem"),
    )
    .unwrap();
    std::fs::copy(
        secrets.join("pki/backend-key.pem"),
        secrets.join("tls-key.pem"),
    )
    .unwrap();
    let chmod = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(chmod.success());
    dir
}

fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .expect("/dev/urandom");
    u128::from_le_bytes(b)
}

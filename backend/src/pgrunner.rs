//! A private PostgreSQL server for `bridgehead dev` and the tests, from the system's binaries.
//!
//! One job: `initdb` a data directory once, start `postgres` on a free loopback port, and
//! make sure it stops. The server runs under a small `sh` guard that reads its stdin: when
//! this process ends in any way (even SIGKILL), the pipe closes and the guard stops the
//! server with a fast shutdown. As root, the server runs as the `postgres` user, since
//! PostgreSQL refuses to run as root; when that user cannot reach the directory asked for
//! (a project under `/root`, a `mktemp -d` parent: mode 0700), the server's files live in a
//! directory of their own under that user's home instead (`/var/lib/postgresql/bridgehead/…`,
//! one per directory asked for, so a second start finds the same data), and `data_dir` says
//! where.
//!
//! Binaries are found on PATH or under `/usr/lib/postgresql/*/bin` (newest version first).
use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private server; dropping it stops the server.
pub struct PgServer {
    guard: Option<Child>,
    port: u16,
    password: String,
    data_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL's {0} was not found on PATH or under /usr/lib/postgresql/*/bin; install it (Debian: apt-get install postgresql)")]
    NotInstalled(&'static str),
    #[error("{0}: {1}")]
    Io(String, io::Error),
    #[error("initdb failed: {0}")]
    Initdb(String),
    #[error("PostgreSQL did not start within 30 s; see {0}")]
    Timeout(PathBuf),
    #[error("the user `postgres` is needed to run PostgreSQL as root, and does not exist")]
    NoPostgresUser,
}

impl PgServer {
    /// Starts the server with data in `dir` (created and initialised on first use),
    /// listening on `port` on 127.0.0.1 (0: a free port).
    pub fn start(dir: &Path, port: u16) -> Result<PgServer, PgError> {
        Self::start_inner(dir, port, false)
    }

    /// Like `start`, for tests: `dir` is removed once the server has stopped.
    pub fn start_ephemeral(dir: &Path) -> Result<PgServer, PgError> {
        Self::start_inner(dir, 0, true)
    }

    fn start_inner(dir: &Path, port: u16, remove_after: bool) -> Result<PgServer, PgError> {
        let bin = find_bin_dir()?;
        let owner = run_as()?;
        let dir = &server_dir(dir, owner.as_ref())?;
        let data_dir = dir.join("pgdata");
        let pwfile = dir.join("pg-password");
        if !data_dir.join("PG_VERSION").exists() {
            init(&bin, dir, &data_dir, &pwfile, owner.as_ref())?;
        }
        let password = fs::read_to_string(&pwfile)
            .map_err(|e| PgError::Io(pwfile.display().to_string(), e))?
            .trim()
            .to_string();
        let port = if port == 0 { free_port()? } else { port };
        let log = dir.join("postgres.log");
        let cleanup = if remove_after {
            format!("rm -rf {}", shell_quote(dir))
        } else {
            ":".into()
        };
        let script = format!(
            "{postgres} -D {data} -p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= \
             -c max_connections=300 >>{log} 2>&1 & pid=$!; \
             trap 'kill -INT $pid; wait $pid; {cleanup}; exit 0' TERM INT; \
             read _ignored; kill -INT $pid; wait $pid; {cleanup}",
            postgres = shell_quote(&bin.join("postgres")),
            data = shell_quote(&data_dir),
            log = shell_quote(&log),
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        // Its own process group: a Ctrl-C at the terminal reaches us, and we stop it in order.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        with_owner(&mut cmd, owner.as_ref());
        let guard = cmd.spawn().map_err(|e| PgError::Io("sh".into(), e))?;
        let server = PgServer {
            guard: Some(guard),
            port,
            password,
            data_dir,
        };
        server.wait_ready(&log)?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of a database on this server (the superuser is `bridgehead`).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://bridgehead:{}@127.0.0.1:{}/{}",
            self.password, self.port, database
        )
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take()); // the guard reads EOF and shuts the server down
            let _ = guard.wait();
        }
    }

    /// Waits until the server accepts connections: PostgreSQL writes "ready" into line 8
    /// of postmaster.pid then (it is still "starting" while it replays WAL).
    fn wait_ready(&self, log: &Path) -> Result<(), PgError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let status = fs::read_to_string(&pid_file).unwrap_or_default();
            let ready = status.lines().nth(7).is_some_and(|l| l.trim() == "ready");
            if ready && TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(PgError::Timeout(log.to_path_buf()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn init(
    bin: &Path,
    dir: &Path,
    data: &Path,
    pwfile: &Path,
    owner: Option<&Owner>,
) -> Result<(), PgError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e| PgError::Io(what, e)
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let password = random_password();
    fs::write(pwfile, format!("{password}\n")).map_err(io(pwfile))?;
    if let Some(o) = owner {
        chown(dir, o.uid, o.gid).map_err(io(dir))?;
        chown(pwfile, o.uid, o.gid).map_err(io(pwfile))?;
    }
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(data)
        .args([
            "-U",
            "bridgehead",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    with_owner(&mut cmd, owner);
    let out = cmd.output().map_err(io(&bin.join("initdb")))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(data);
        return Err(PgError::Initdb(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(())
}

/// The directory holding `initdb` and `postgres`.
pub fn find_bin_dir() -> Result<PathBuf, PgError> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versioned: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versioned.sort_by_key(|p| {
        let v = p
            .parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str());
        std::cmp::Reverse(v.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0))
    });
    on_path
        .into_iter()
        .chain(versioned)
        .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        .map(|d| {
            d.join("postgres")
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or(d)
        })
        .ok_or(PgError::NotInstalled("initdb/postgres"))
}

/// The user the server runs as, when it is not us (as root: `postgres`).
#[derive(Debug, Clone)]
struct Owner {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// Where the server's files go: `dir` when the owner can reach it (or we run the server
/// ourselves), else a directory named after `dir` under the owner's home.
fn server_dir(dir: &Path, owner: Option<&Owner>) -> Result<PathBuf, PgError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e| PgError::Io(what, e)
    };
    let Some(o) = owner else {
        return Ok(dir.to_path_buf());
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let dir = dir.canonicalize().map_err(io(dir))?;
    let parents_reachable = dir
        .ancestors()
        .skip(1)
        .all(|p| traversable_by(p, o.uid, o.gid));
    if parents_reachable {
        return Ok(dir);
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let own = o.home.join("bridgehead").join(format!(
        "{name}-{:016x}",
        fnv1a(dir.as_os_str().as_encoded_bytes())
    ));
    fs::create_dir_all(&own).map_err(io(&own))?;
    Ok(own)
}

/// Whether the user (uid, gid) may pass through directory `p` (search permission).
fn traversable_by(p: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::metadata(p) else {
        return false;
    };
    let mode = m.mode();
    if m.uid() == uid {
        mode & 0o100 != 0
    } else if m.gid() == gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// A stable 64-bit FNV-1a hash, to name a directory after a path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// As root: the `postgres` user; otherwise none (run as ourselves).
fn run_as() -> Result<Option<Owner>, PgError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = c"postgres";
    // SAFETY: getpwnam is given a valid C string; we copy the fields out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(PgError::NoPostgresUser);
    }
    // SAFETY: pw is non-null and points at a valid passwd record; the home directory is a
    // valid C string, copied out at once.
    let (uid, gid, home) = unsafe {
        let home = std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy();
        ((*pw).pw_uid, (*pw).pw_gid, PathBuf::from(home.as_ref()))
    };
    Ok(Some(Owner { uid, gid, home }))
}

fn with_owner(cmd: &mut Command, owner: Option<&Owner>) {
    use std::os::unix::process::CommandExt;
    if let Some(o) = owner {
        cmd.uid(o.uid).gid(o.gid); // std drops supplementary groups too
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// A free TCP port on 127.0.0.1 (free when asked; PostgreSQL binds it right after).
pub fn free_port() -> Result<u16, PgError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PgError::Io("bind 127.0.0.1:0".into(), e))
}

fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

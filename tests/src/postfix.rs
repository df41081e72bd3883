//! A private Postfix (Debian's package) as a real peer: it receives on a loopback port for
//! `domain`, delivers into one Maildir, and sends everything else — its delivery status
//! notifications included — to a relay host (the Bridgehead under test). Run as root (Postfix's
//! master needs it), with its own configuration, queue and data directories; stopped with
//! `postfix stop` and its master killed by PID when the handle drops. Its log holds the SMTP
//! conversations with loopback peers, so tests can see which commands were used.
use crate::procs::{free_port, wait_port};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postfix {
    pub port: u16,
    dir: tempfile::TempDir,
}

/// Why a Postfix could not be had: the test fails with this (never skips silently).
pub fn unavailable() -> Option<String> {
    if !Path::new("/usr/sbin/postfix").exists() {
        return Some(
            "Postfix is not installed: echo 'postfix postfix/main_mailer_type select No configuration' \
             | debconf-set-selections && apt-get install postfix"
                .into(),
        );
    }
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("a private Postfix needs root to start its master".into());
    }
    None
}

impl Postfix {
    /// Starts Postfix receiving mail for `domain` and relaying the rest to 127.0.0.1:`relay`.
    pub fn start(domain: &str, relay: u16) -> Postfix {
        if let Some(why) = unavailable() {
            panic!("{why}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let port = free_port();
        for sub in ["etc", "spool", "data", "mail"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        chown_postfix(&[root.join("data"), root.join("mail")]);
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::write(root.join("etc/master.cf"), master_cf(port)).unwrap();
        std::fs::write(root.join("etc/main.cf"), main_cf(root, domain, relay)).unwrap();
        let out = Command::new("postfix")
            .args(["-c", &root.join("etc").display().to_string(), "start"])
            .output()
            .expect("run postfix");
        assert!(
            out.status.success(),
            "postfix start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        wait_port(port);
        Postfix { port, dir }
    }

    /// The messages delivered to the Maildir so far.
    pub fn delivered(&self) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("mail/box/new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(new)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    /// Postfix's own log (with every SMTP command to and from 127.0.0.1: `debug_peer_list`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let etc = self.dir.path().join("etc");
        let _ = Command::new("postfix")
            .args(["-c", &etc.display().to_string(), "stop"])
            .output();
        let pid_file = self.dir.path().join("spool/pid/master.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on the master this test started; harmless if it is gone.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn chown_postfix(paths: &[PathBuf]) {
    let status = Command::new("chown")
        .arg("-R")
        .arg("postfix:postfix")
        .args(paths)
        .status()
        .expect("chown");
    assert!(status.success());
}

/// Debian's master.cf, with the SMTP listener on our port and no chroot (a private instance
/// has no copy of /etc in its queue directory).
fn master_cf(port: u16) -> String {
    let dist =
        std::fs::read_to_string("/usr/share/postfix/master.cf.dist").expect("master.cf.dist");
    dist.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if l.starts_with(|c: char| c.is_ascii_lowercase()) && f.len() >= 8 {
                let name = if f[0] == "smtp" && f[1] == "inet" {
                    format!("127.0.0.1:{port}")
                } else {
                    f[0].to_string()
                };
                let rest = f[5..].join(" ");
                format!("{name} {} {} {} n {rest}", f[1], f[2], f[3])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn main_cf(root: &Path, domain: &str, relay: u16) -> String {
    let uid = id("-u");
    let gid = id("-g");
    format!(
        "compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = peer.{domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
relayhost = [127.0.0.1]:{relay}
maillog_file = {root}/maillog
maillog_file_prefixes = /tmp
debug_peer_list = 127.0.0.1
",
        root = root.display()
    )
}

/// The postfix user's uid (`-u`) or gid (`-g`).
fn id(flag: &str) -> String {
    let out = Command::new("id")
        .args([flag, "postfix"])
        .output()
        .expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

//! `bridgehead bench pop3`: N sessions at once over a set of accounts, in one of three modes:
//! log in only, LIST and RETR everything, or RETR and DELE everything.
use super::stats::{print, Stats};
use super::wire::Wire;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Mode {
    /// USER/PASS, then QUIT.
    Login,
    /// Log in, LIST, RETR every message, QUIT.
    RetrAll,
    /// Log in, RETR and DELE every message, QUIT.
    RetrDele,
}

#[derive(Args, Clone)]
pub struct Pop3Args {
    /// The POP3 server, HOST:PORT.
    #[arg(long)]
    server: String,
    /// Sessions at once.
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Sessions in all.
    #[arg(long, default_value_t = 100)]
    total: u64,
    /// Account names; "{n}" is replaced by 0 .. --users-1, one per session in turn.
    #[arg(long, default_value = "user{n}@example.com")]
    user: String,
    #[arg(long, default_value_t = 1)]
    users: usize,
    /// The accounts' password.
    #[arg(long)]
    password: String,
    #[arg(long, value_enum, default_value = "login")]
    mode: Mode,
    /// STLS after the greeting.
    #[arg(long)]
    stls: bool,
    /// TLS from the start (port 995).
    #[arg(long)]
    tls: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: Pop3Args) -> Result<()> {
    if a.sessions == 0 || a.total == 0 || a.users == 0 {
        bail!("--sessions, --total and --users must be at least 1");
    }
    let a = Arc::new(a);
    let stats = Arc::new(Stats::default());
    let next = Arc::new(AtomicU64::new(0));
    let messages = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..a.sessions)
        .map(|_| {
            let (a, stats, next, messages) =
                (a.clone(), stats.clone(), next.clone(), messages.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= a.total {
                        return;
                    }
                    let user = a.user.replace("{n}", &(n as usize % a.users).to_string());
                    if let Err(e) = session(&a, &stats, &messages, &user).await {
                        stats.error(format!("{e:#}"));
                    }
                }
            })
        })
        .collect();
    let all = async {
        for w in workers {
            let _ = w.await;
        }
    };
    stats.progress("sessions", a.total, all).await;
    let elapsed = start.elapsed();
    let settings = json!({
        "server": a.server, "sessions": a.sessions, "total": a.total, "users": a.users,
        "mode": format!("{:?}", a.mode as u8), "stls": a.stls, "tls": a.tls,
    });
    let mut report = stats.report(elapsed, "sessions", settings);
    let m = messages.load(Ordering::Relaxed);
    report["messages"] = json!(m);
    report["messages_per_s"] = json!(m as f64 / elapsed.as_secs_f64().max(1e-9));
    print(&report, a.json);
    Ok(())
}

async fn session(a: &Pop3Args, stats: &Stats, messages: &AtomicU64, user: &str) -> Result<()> {
    let started = Instant::now();
    let mut w = Wire::connect(&a.server, a.tls).await?;
    ok(&mut w).await?;
    if a.stls {
        w.send(b"STLS\r\n").await?;
        ok(&mut w).await?;
        w.start_tls().await?;
    }
    let login = Instant::now();
    w.send(format!("USER {user}\r\nPASS {}\r\n", a.password).as_bytes())
        .await?;
    ok(&mut w).await?;
    ok(&mut w).await?;
    stats.sample("login", login.elapsed());
    if a.mode != Mode::Login {
        w.send(b"STAT\r\n").await?;
        let stat = ok(&mut w).await?;
        let count: u64 = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for i in 1..=count {
            let retr = Instant::now();
            w.send(format!("RETR {i}\r\n").as_bytes()).await?;
            ok(&mut w).await?;
            let size = w.pop3_body().await?;
            stats.sample("retr", retr.elapsed());
            stats.bytes.fetch_add(size, Ordering::Relaxed);
            messages.fetch_add(1, Ordering::Relaxed);
            if a.mode == Mode::RetrDele {
                w.send(format!("DELE {i}\r\n").as_bytes()).await?;
                ok(&mut w).await?;
            }
        }
    }
    w.send(b"QUIT\r\n").await?;
    ok(&mut w).await?;
    stats.ok.fetch_add(1, Ordering::Relaxed);
    stats.sample("session", started.elapsed());
    Ok(())
}

/// A "+OK" line's text; "-ERR" is an error.
async fn ok(w: &mut Wire) -> Result<String> {
    let l = w.line().await?;
    match l.strip_prefix("+OK") {
        Some(rest) => Ok(rest.trim().to_string()),
        None => bail!(
            "{}",
            l.split(']').next().unwrap_or(l).to_string() + if l.contains(']') { "]" } else { "" }
        ),
    }
}

//! `bridgehead bench smtp`: N connections send M messages of S octets to R recipients each,
//! K messages per connection, with optional STARTTLS, implicit TLS and AUTH.
use super::stats::{print, Stats};
use super::wire::Wire;
use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::Args;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Clone)]
pub struct SmtpArgs {
    /// The SMTP server, HOST:PORT.
    #[arg(long)]
    server: String,
    /// Connections at once.
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// Messages in all.
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Messages per connection.
    #[arg(long, default_value_t = 1)]
    per_connection: u64,
    /// Message size in octets.
    #[arg(long, default_value_t = 10240)]
    size: usize,
    /// Recipients per message.
    #[arg(long, default_value_t = 1)]
    recipients: usize,
    /// Envelope sender, also the message's From (empty: the null sender, From bench@example.com).
    #[arg(long, default_value = "bench@example.com")]
    from: String,
    /// Recipient addresses; "{n}" is replaced by 0 .. --users-1, used in turn.
    #[arg(long, default_value = "user{n}@example.com")]
    to: String,
    /// How many different recipients "{n}" takes.
    #[arg(long, default_value_t = 1)]
    users: usize,
    /// STARTTLS after EHLO.
    #[arg(long)]
    starttls: bool,
    /// TLS from the start (port 465).
    #[arg(long)]
    tls: bool,
    /// AUTH PLAIN as USER:PASSWORD.
    #[arg(long)]
    auth: Option<String>,
    /// Count what arrived through the admin API afterwards (needs --data-dir, or
    /// BRIDGEHEAD_ADMIN_URL and BRIDGEHEAD_ADMIN_TOKEN); fail on any missing or extra message.
    #[arg(long)]
    verify: bool,
    #[arg(long, env = "BRIDGEHEAD_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: SmtpArgs) -> Result<()> {
    if a.connections == 0 || a.messages == 0 || a.per_connection == 0 || a.recipients == 0 {
        bail!("--connections, --messages, --per-connection and --recipients must be at least 1");
    }
    let before = if a.verify {
        Some(super::verify::counts(&a.data_dir).await?)
    } else {
        None
    };
    let a = Arc::new(a);
    let stats = Arc::new(Stats::default());
    let next = Arc::new(AtomicU64::new(0));
    let body = Arc::new(message(a.size, &a.from));
    let start = Instant::now();
    let workers: Vec<_> = (0..a.connections)
        .map(|_| tokio::spawn(worker(a.clone(), stats.clone(), next.clone(), body.clone())))
        .collect();
    let all = async {
        for w in workers {
            let _ = w.await;
        }
    };
    stats.progress("messages", a.messages, all).await;
    let elapsed = start.elapsed();
    let settings = json!({
        "server": a.server, "connections": a.connections, "messages": a.messages,
        "per_connection": a.per_connection, "size": a.size, "recipients": a.recipients,
        "starttls": a.starttls, "tls": a.tls, "auth": a.auth.is_some(),
    });
    let mut report = stats.report(elapsed, "messages", settings);
    if let Some(before) = before {
        let after = super::verify::counts(&a.data_dir).await?;
        let arrived: i64 = after
            .iter()
            .map(|(k, v)| v - before.get(k).copied().unwrap_or(0))
            .sum();
        let expected = stats.ok.load(Ordering::Relaxed) as i64 * a.recipients as i64;
        report["verify"] = json!({"expected": expected, "arrived": arrived});
        print(&report, a.json);
        if arrived != expected {
            bail!("verify: {expected} deliveries were accepted but {arrived} arrived");
        }
        return Ok(());
    }
    print(&report, a.json);
    Ok(())
}

/// Takes message numbers until all are sent; one connection per `per_connection` messages.
async fn worker(a: Arc<SmtpArgs>, stats: Arc<Stats>, next: Arc<AtomicU64>, body: Arc<Vec<u8>>) {
    loop {
        let first = next.fetch_add(a.per_connection, Ordering::Relaxed);
        if first >= a.messages {
            return;
        }
        let count = a.per_connection.min(a.messages - first);
        if let Err(e) = connection(&a, &stats, first, count, &body).await {
            stats.error(format!("connection: {e:#}"));
        }
    }
}

async fn connection(
    a: &SmtpArgs,
    stats: &Stats,
    first: u64,
    count: u64,
    body: &[u8],
) -> Result<()> {
    let mut w = Wire::connect(&a.server, a.tls).await?;
    expect(&mut w, 220).await?;
    w.send(b"EHLO bench.example\r\n").await?;
    expect(&mut w, 250).await?;
    if a.starttls {
        w.send(b"STARTTLS\r\n").await?;
        expect(&mut w, 220).await?;
        w.start_tls().await?;
        w.send(b"EHLO bench.example\r\n").await?;
        expect(&mut w, 250).await?;
    }
    if let Some(auth) = &a.auth {
        let (user, pass) = auth.split_once(':').context("--auth is USER:PASSWORD")?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        w.send(format!("AUTH PLAIN {token}\r\n").as_bytes()).await?;
        expect(&mut w, 235).await?;
    }
    for i in 0..count {
        let n = first + i;
        let started = Instant::now();
        let mut cmds = format!("MAIL FROM:<{}> SIZE={}\r\n", a.from, body.len());
        for r in 0..a.recipients {
            let user = (n as usize * a.recipients + r) % a.users.max(1);
            cmds.push_str(&format!(
                "RCPT TO:<{}>\r\n",
                a.to.replace("{n}", &user.to_string())
            ));
        }
        cmds.push_str("DATA\r\n");
        w.send(cmds.as_bytes()).await?;
        let mut failed = None;
        for _ in 0..=a.recipients {
            let (code, _) = w.smtp_reply().await?;
            if code >= 400 && failed.is_none() {
                failed = Some(code);
            }
        }
        let (code, _) = w.smtp_reply().await?;
        if code != 354 {
            stats.error(format!("{}", failed.unwrap_or(code)));
            w.send(b"RSET\r\n").await?;
            w.smtp_reply().await?;
            continue;
        }
        w.send(body).await?;
        let sent = Instant::now();
        let (code, _) = w.smtp_reply().await?;
        if code == 250 && failed.is_none() {
            stats.ok.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            stats.sample("final_250", sent.elapsed());
            stats.sample("transaction", started.elapsed());
        } else {
            stats.error(format!("{}", failed.unwrap_or(code)));
        }
    }
    w.send(b"QUIT\r\n").await?;
    let _ = w.smtp_reply().await;
    Ok(())
}

async fn expect(w: &mut Wire, code: u16) -> Result<()> {
    let (got, text) = w.smtp_reply().await?;
    if got != code {
        bail!("expected {code}, got {text}");
    }
    Ok(())
}

/// A message of `size` octets from `from` (dot-stuffing needs none), ended by "\r\n.\r\n".
fn message(size: usize, from: &str) -> Vec<u8> {
    let from = if from.is_empty() {
        "bench@example.com"
    } else {
        from
    };
    let mut m = format!("From: {from}\r\nSubject: bridgehead bench\r\n\r\n").into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    while m.len() + 2 < size {
        m.push(b'x');
    }
    m.extend_from_slice(b"\r\n.\r\n");
    m
}

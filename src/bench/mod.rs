//! `bridgehead bench`: a load generator for SMTP and POP3 servers — Bridgehead or any other —
//! that also checks that what it measured was really stored (`--verify`).
//!
//! Measures throughput (messages/s, MB/s, logins/s) and latency percentiles, counts errors by
//! reply, prints a progress line while it runs and, with `--json`, one JSON document at the end
//! so runs can be compared. Benchmarks are measured here, not in timed tests.
mod pop3;
mod smtp;
mod stats;
mod verify;
mod wire;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Send mail over SMTP.
    Smtp(smtp::SmtpArgs),
    /// Log in and read mail over POP3.
    Pop3(pop3::Pop3Args),
}

pub async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Smtp(args) => smtp::run(args).await,
        BenchCmd::Pop3(args) => pop3::run(args).await,
    }
}

//! `bridgehead`: one binary, roles as subcommands. A thin clap dispatcher; each role lives
//! in its own module (`dev`, `admin`) or library (`bridgehead-frontend`, `bridgehead-backend`).
mod admin;
mod bench;
mod certs;
mod config;
mod dev;
mod health;
mod http;
mod telemetry;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc: the hot paths allocate and free many small buffers per message across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "bridgehead",
    version,
    about = "Bridgehead mail cluster: POP3 and SMTP front-ends over PostgreSQL back-ends"
)]
struct Cli {
    /// Log format: text or json.
    #[arg(
        long,
        global = true,
        env = "BRIDGEHEAD_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a front-end node (POP3 and SMTP listeners proxying to back-ends).
    Frontend(Box<config::FrontendArgs>),
    /// Run a back-end store node (gRPC API over PostgreSQL).
    Backend(Box<config::BackendArgs>),
    /// Administer domains, users, aliases and mailboxes through a back-end's admin API.
    Admin(admin::AdminArgs),
    /// Run a whole cluster on this machine, with a private PostgreSQL.
    Dev(dev::DevArgs),
    /// Make a private CA and certificates for mutual TLS between front-ends and back-ends.
    Pki {
        /// Directory for ca.pem, backend.pem, backend-key.pem, frontend.pem, frontend-key.pem.
        dir: std::path::PathBuf,
        /// Extra names (DNS or IP) for the back-end certificate, e.g. the back-ends' service name.
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Load generator for SMTP and POP3 servers (Bridgehead or any other).
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Probe a node's readiness (container health checks): exit 0 when URL answers 200.
    Health {
        #[arg(default_value = "http://127.0.0.1:9100/readyz")]
        url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thread names tell the load generator's CPU time from the server's in a profile.
    let threads = match cli.command {
        Command::Bench(_) => "bench",
        _ => "bridgehead",
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(threads)
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bridgehead: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = match cli.command {
        Command::Frontend(_) => Some("bridgehead-frontend"),
        Command::Backend(_) => Some("bridgehead-backend"),
        Command::Dev(_) => Some("bridgehead-dev"),
        Command::Admin(_) | Command::Bench(_) | Command::Pki { .. } | Command::Health { .. } => {
            None
        }
    };
    let telemetry = match service {
        Some(name) => {
            let _entered = runtime.enter();
            match telemetry::init(&cli.log_format, name) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("bridgehead: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let result = runtime.block_on(run(cli.command));
    if let Some(t) = telemetry {
        t.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridgehead: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Frontend(args) => config::run_frontend(*args).await,
        Command::Backend(args) => config::run_backend(*args).await,
        Command::Admin(args) => admin::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Bench(cmd) => bench::run(cmd).await,
        Command::Health { url } => health::probe(&url),
        Command::Pki { dir, names } => {
            let pki = bridgehead_backend::pki::ensure(&dir, &names)?;
            println!(
                "CA {}\nback-end {} {}\nfront-end {} {}",
                pki.ca.display(),
                pki.backend_cert.display(),
                pki.backend_key.display(),
                pki.frontend_cert.display(),
                pki.frontend_key.display()
            );
            Ok(())
        }
    }
}

/// Resolves when SIGINT (Ctrl-C) or SIGTERM arrives.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

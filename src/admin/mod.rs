//! `bridgehead admin`: the operator's CLI over the admin gRPC API.
//!
//! Connection: `--url`/`--token` (or `BRIDGEHEAD_ADMIN_URL`/`BRIDGEHEAD_ADMIN_TOKEN`), else
//! `--data-dir` of a dev cluster (its endpoints.json). Passwords come from standard input or a
//! prompt, never from argv. Errors say what to fix and exit non-zero.
//!
//! Layout: this file holds the arguments and the dispatch; `client` the connection; one file
//! per command group (`accounts`, `directory`, `queue`, `connector`, `dkim`, `tls`, …), each depending on
//! `client` only.
mod accounts;
mod client;
mod connector;
mod console;
mod directory;
mod dkim;
mod mta_sts;
mod quarantine;
mod queue;
mod tls;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
pub use client::connect;
use std::path::PathBuf;

#[derive(Args)]
pub struct AdminArgs {
    /// Admin API address of a back-end, e.g. http://127.0.0.1:7000.
    #[arg(long, env = "BRIDGEHEAD_ADMIN_URL")]
    url: Option<String>,
    /// Admin token.
    #[arg(long, env = "BRIDGEHEAD_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the admin token.
    #[arg(long, env = "BRIDGEHEAD_ADMIN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate (PEM) of the back-end, for an https admin URL.
    #[arg(long, env = "BRIDGEHEAD_ADMIN_CA")]
    ca: Option<PathBuf>,
    /// Data directory of a `bridgehead dev` cluster (reads its endpoints.json).
    #[arg(long, env = "BRIDGEHEAD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Mail domains served here.
    #[command(subcommand)]
    Domain(accounts::DomainCmd),
    /// User accounts (mailboxes).
    #[command(subcommand)]
    User(accounts::UserCmd),
    /// Extra addresses that deliver to a user.
    #[command(subcommand)]
    Alias(accounts::AliasCmd),
    /// Distribution groups.
    #[command(subcommand)]
    Group(directory::GroupCmd),
    /// Contacts: outside addresses with a local directory address.
    #[command(subcommand)]
    Contact(directory::ContactCmd),
    /// The outbound queue.
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// Next hops for outside mail: per domain, and the smart host ("*").
    #[command(subcommand)]
    Route(queue::RouteCmd),
    /// DKIM keys that sign outgoing mail.
    #[command(subcommand)]
    Dkim(dkim::DkimCmd),
    /// What to publish for MTA-STS (RFC 8461): records and the policy file.
    MtaSts,
    /// Outbound TLS (RFC 8460 TLS-RPT counts).
    #[command(subcommand)]
    Tls(tls::TlsCmd),
    /// Messages a content filter quarantined.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCmd),
    /// POP3 connectors: outside POP3 mailboxes brought into local mailboxes.
    #[command(subcommand)]
    Connector(connector::ConnectorCmd),
    /// Operators of the web console.
    #[command(subcommand)]
    Operator(console::OperatorCmd),
    /// The cluster at a glance: nodes (heartbeats), queue, quarantine, connectors, traffic.
    Overview,
    /// Message tracking: what happened to messages matching a queue id, Message-ID, sender
    /// or recipient.
    Track {
        text: String,
        /// How far back, in hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Only messages from or to this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Import a message from FILE (or standard input) into a mailbox.
    Deliver {
        /// Address whose mailbox receives the message (a user or an alias).
        #[arg(long)]
        to: String,
        file: Option<PathBuf>,
    },
}

pub async fn run(args: AdminArgs) -> Result<()> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the admin token from {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let mut client = client::connect(
        args.url.clone(),
        token,
        args.ca.clone(),
        args.data_dir.clone(),
    )
    .await?;
    match args.command {
        AdminCommand::Domain(cmd) => accounts::domain(&mut client, cmd).await,
        AdminCommand::User(cmd) => accounts::user(&mut client, cmd).await,
        AdminCommand::Alias(cmd) => accounts::alias(&mut client, cmd).await,
        AdminCommand::Deliver { to, file } => accounts::deliver(&mut client, to, file).await,
        AdminCommand::Queue(cmd) => queue::queue(&mut client, cmd).await,
        AdminCommand::Group(cmd) => directory::group(&mut client, cmd).await,
        AdminCommand::Contact(cmd) => directory::contact(&mut client, cmd).await,
        AdminCommand::Connector(cmd) => connector::run(&mut client, cmd).await,
        AdminCommand::Dkim(cmd) => dkim::run(&mut client, cmd).await,
        AdminCommand::Quarantine(cmd) => quarantine::run(&mut client, cmd).await,
        AdminCommand::MtaSts => mta_sts::run(&mut client).await,
        AdminCommand::Tls(cmd) => tls::run(&mut client, cmd).await,
        AdminCommand::Route(cmd) => queue::route(&mut client, cmd).await,
        AdminCommand::Operator(cmd) => console::operator(&mut client, cmd).await,
        AdminCommand::Overview => console::overview(&mut client).await,
        AdminCommand::Track {
            text,
            hours,
            domain,
        } => console::track(&mut client, text, hours, domain).await,
    }
    .map_err(client::explain)
}

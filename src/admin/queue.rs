//! `bridgehead admin queue …` and `bridgehead admin route …`: the outbound queue and next hops.
use super::client::{read_password, Client};
use anyhow::{bail, Result};
use bridgehead_proto::v1 as pb;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum QueueCmd {
    /// The queued messages, oldest first: id, age, attempts, next attempt, last error,
    /// recipients (fetched a page at a time, however long the queue).
    List {
        /// Show at most this many.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        filter: Filter,
    },
    /// Apply ACTION (retry, hold, release, delete, bounce) to every message the filter
    /// matches (at least one filter option is required).
    Act {
        action: String,
        #[command(flatten)]
        filter: Filter,
    },
    /// One message in detail, recipient by recipient.
    Show {
        queue_id: String,
    },
    /// Try a message (or, with --all, every message) now.
    Retry {
        queue_id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Remove a message; with --bounce its sender gets a failure report.
    Delete {
        queue_id: String,
        #[arg(long)]
        bounce: bool,
    },
    /// Keep a message from being tried until it is released.
    Hold {
        queue_id: String,
    },
    Release {
        queue_id: String,
    },
}

/// Which queued messages (every option narrows the choice).
#[derive(clap::Args, Default)]
pub struct Filter {
    /// The sender's or a recipient's domain.
    #[arg(long)]
    domain: Option<String>,
    /// Text in the sender.
    #[arg(long)]
    sender: Option<String>,
    /// Text in a recipient.
    #[arg(long)]
    recipient: Option<String>,
    /// held, deferred (tried before) or waiting (never tried).
    #[arg(long)]
    status: Option<String>,
    /// At least this many minutes in the queue.
    #[arg(long)]
    older_than_minutes: Option<u64>,
}

impl Filter {
    fn to_pb(&self) -> pb::QueueFilter {
        pb::QueueFilter {
            domain: self.domain.clone().unwrap_or_default(),
            sender: self.sender.clone().unwrap_or_default(),
            recipient: self.recipient.clone().unwrap_or_default(),
            status: self.status.clone().unwrap_or_default(),
            min_age_secs: self.older_than_minutes.unwrap_or(0) * 60,
        }
    }
}

#[derive(Subcommand)]
pub enum RouteCmd {
    /// Send mail for DOMAIN ("*": every domain without a route, the smart host) to HOST:PORT.
    Set {
        domain: String,
        /// host:port of the next hop.
        next_hop: String,
        /// none, opportunistic, required (STARTTLS or no delivery), verify (and the host's
        /// certificate must verify for its name), dane (and match the host's DNSSEC-validated
        /// TLSA records, which must exist; needs the back-ends' --dane-resolver) or implicit.
        #[arg(long, default_value = "opportunistic")]
        tls: String,
        /// Authenticate as this user (the secret is read from standard input or a prompt).
        #[arg(long)]
        auth_user: Option<String>,
    },
    List,
    Remove {
        domain: String,
    },
}

pub async fn queue(c: &mut Client, cmd: QueueCmd) -> Result<()> {
    let req = |id: &str| pb::QueueRequest {
        queue_id: id.to_string(),
    };
    match cmd {
        QueueCmd::List { limit, filter } => list(c, limit.unwrap_or(u64::MAX), &filter).await?,
        QueueCmd::Act { action, filter } => {
            let f = filter.to_pb();
            if f == pb::QueueFilter::default() {
                bail!("give at least one of --domain, --sender, --recipient, --status, --older-than-minutes");
            }
            let req = pb::QueueActionRequest {
                filter: Some(f),
                action: action.clone(),
            };
            let n = c.act_on_queue(req).await?.into_inner().count;
            println!("{action}: {n} message(s)");
        }
        QueueCmd::Show { queue_id } => {
            print_entry(&c.show_queued(req(&queue_id)).await?.into_inner(), true)
        }
        QueueCmd::Retry { queue_id, all } => {
            let id = match (queue_id, all) {
                (Some(id), false) => id,
                (None, true) => String::new(),
                _ => bail!("give a queue id or --all"),
            };
            let n = c.retry_queued(req(&id)).await?.into_inner().count;
            println!("{n} message(s) will be tried now");
        }
        QueueCmd::Delete { queue_id, bounce } => {
            c.delete_queued(pb::DeleteQueuedRequest {
                queue_id: queue_id.clone(),
                bounce,
            })
            .await?;
            let how = if bounce { " and its sender told" } else { "" };
            println!("removed {queue_id} from the queue{how}");
        }
        QueueCmd::Hold { queue_id } => {
            c.hold_queued(req(&queue_id)).await?;
            println!("{queue_id} is on hold");
        }
        QueueCmd::Release { queue_id } => {
            c.release_queued(req(&queue_id)).await?;
            println!("{queue_id} is released");
        }
    }
    Ok(())
}

/// Up to `limit` entries, page by page.
async fn list(c: &mut Client, limit: u64, filter: &Filter) -> Result<()> {
    let (mut shown, mut after) = (0u64, 0);
    if limit == 0 {
        return Ok(());
    }
    loop {
        let want = (limit - shown).min(1_000) as u32;
        let req = pb::QueueListRequest {
            limit: want,
            after,
            filter: Some(filter.to_pb()),
        };
        let page = c.list_queue(req).await?.into_inner();
        if shown == 0 && page.entries.is_empty() {
            println!("no queued message matches");
        }
        shown += page.entries.len() as u64;
        for e in &page.entries {
            print_entry(e, false);
        }
        if page.next == 0 || shown >= limit {
            return Ok(());
        }
        after = page.next;
    }
}

fn print_entry(e: &pb::QueueEntry, detail: bool) {
    let state = if e.held { "held" } else { "queued" };
    println!(
        "{}  {} bytes  from <{}>  {state} since {}  attempts {}  next attempt {}",
        e.queue_id, e.size, e.mail_from, e.created_at, e.attempts, e.next_attempt_at
    );
    if !e.last_error.is_empty() {
        println!("    last error: {}", e.last_error);
    }
    for r in &e.recipients {
        if detail || r.status == "pending" {
            let why = if r.diagnostic.is_empty() {
                String::new()
            } else {
                format!("  {} {}", r.dsn_status, r.diagnostic)
            };
            println!("    <{}> {}{why}", r.address, r.status);
        }
    }
}

pub async fn route(c: &mut Client, cmd: RouteCmd) -> Result<()> {
    match cmd {
        RouteCmd::Set {
            domain,
            next_hop,
            tls,
            auth_user,
        } => {
            let Some((host, port)) = next_hop.rsplit_once(':') else {
                bail!("the next hop must be HOST:PORT, e.g. smtp.provider.example:587");
            };
            let Ok(port) = port.parse::<u32>() else {
                bail!("bad port in {next_hop:?}");
            };
            let auth_secret = match &auth_user {
                Some(u) => read_password(&format!("Secret for {u}: "))?,
                None => String::new(),
            };
            let info = pb::RouteInfo {
                domain: domain.clone(),
                host: host.to_string(),
                port,
                tls,
                auth_user: auth_user.unwrap_or_default(),
                auth_secret,
            };
            c.set_route(info).await?;
            println!("mail for {domain} goes to {next_hop}");
        }
        RouteCmd::List => {
            for r in c.list_routes(pb::Empty {}).await?.into_inner().routes {
                let auth = if r.auth_user.is_empty() {
                    String::new()
                } else {
                    format!("  auth {}", r.auth_user)
                };
                println!("{}\t{}:{}\ttls {}{auth}", r.domain, r.host, r.port, r.tls);
            }
        }
        RouteCmd::Remove { domain } => {
            c.remove_route(pb::DomainRequest {
                name: domain.clone(),
            })
            .await?;
            println!("removed the route for {domain}");
        }
    }
    Ok(())
}

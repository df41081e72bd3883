//! `bridgehead admin operator …`, `admin overview` and `admin track …`: what the operator
//! console shows and manages, from the command line (the console adds nothing the CLI can't
//! do).
use super::client::{read_password, Client};
use anyhow::Result;
use bridgehead_proto::v1 as pb;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Add an operator of the web console; the password is read from standard input or a
    /// prompt.
    Add {
        name: String,
        /// admin, readonly, or domain:NAME (that domain only).
        #[arg(long)]
        role: String,
    },
    /// Set a new password (read from standard input or a prompt); their sessions end.
    Passwd {
        name: String,
    },
    /// Change the role; their sessions end.
    Role {
        name: String,
        role: String,
    },
    List,
    Remove {
        name: String,
    },
}

pub async fn operator(c: &mut Client, cmd: OperatorCmd) -> Result<()> {
    match cmd {
        OperatorCmd::Add { name, role } => {
            let password = read_password(&format!("Password for operator {name}: "))?;
            let req = pb::OperatorRequest {
                name: name.clone(),
                password,
                role: role.clone(),
            };
            c.add_operator(req).await?;
            println!("operator {name} added ({role})");
        }
        OperatorCmd::Passwd { name } => {
            let password = read_password(&format!("New password for operator {name}: "))?;
            let req = pb::OperatorRequest {
                name: name.clone(),
                password,
                role: String::new(),
            };
            c.edit_operator(req).await?;
            println!("password of operator {name} changed");
        }
        OperatorCmd::Role { name, role } => {
            let req = pb::OperatorRequest {
                name: name.clone(),
                password: String::new(),
                role: role.clone(),
            };
            c.edit_operator(req).await?;
            println!("operator {name} is {role} now");
        }
        OperatorCmd::List => {
            for o in c.list_operators(pb::Empty {}).await?.into_inner().operators {
                println!("{}\t{}", o.name, o.role);
            }
        }
        OperatorCmd::Remove { name } => {
            let req = pb::OperatorRequest {
                name: name.clone(),
                ..Default::default()
            };
            c.remove_operator(req).await?;
            println!("operator {name} removed");
        }
    }
    Ok(())
}

/// The cluster at a glance: nodes, the queue, trouble, the last hour's traffic.
pub async fn overview(c: &mut Client) -> Result<()> {
    let o = c.overview(pb::Empty {}).await?.into_inner();
    println!("nodes:");
    for n in &o.nodes {
        let health = if n.healthy { "up" } else { "DOWN" };
        println!(
            "  {}\t{}\t{}\t{health}\t{}",
            n.name, n.role, n.version, n.detail
        );
    }
    println!(
        "queue: {} message(s), oldest {} s",
        o.queue_depth, o.queue_oldest_secs
    );
    println!(
        "quarantined: {}   connectors failing: {}",
        o.quarantined, o.connector_errors
    );
    let hour_ago = chrono::Utc::now().timestamp() - 3600;
    let last_hour = o.minutes.iter().filter(|m| m.minute_unix >= hour_ago);
    let sum = last_hour.fold([0i64; 4], |a, m| {
        [
            a[0] + m.accepted,
            a[1] + m.delivered,
            a[2] + m.deferred,
            a[3] + m.bounced,
        ]
    });
    println!(
        "last hour: {} accepted, {} delivered, {} deferred, {} bounced",
        sum[0], sum[1], sum[2], sum[3]
    );
    Ok(())
}

/// Messages matching TEXT (queue id, Message-ID, sender or recipient), with their events.
pub async fn track(c: &mut Client, text: String, hours: u32, domain: Option<String>) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    let req = pb::TrackRequest {
        text,
        domain: domain.unwrap_or_default(),
        since_unix: now - i64::from(hours.max(1)) * 3600,
        until_unix: now,
        limit: 50,
    };
    let found = c.track_messages(req).await?.into_inner().messages;
    if found.is_empty() {
        println!("no message matches");
    }
    for m in found {
        println!(
            "{}  from <{}>  message-id <{}>",
            m.queue_id, m.mail_from, m.message_id
        );
        for e in m.events {
            let at = chrono::DateTime::from_timestamp_millis(e.at_unix_ms).unwrap_or_default();
            println!(
                "  {}  {:<11} {}  [{}]  {}",
                at.format("%Y-%m-%d %H:%M:%S%.3f"),
                e.kind,
                e.node,
                e.recipients.join(", "),
                e.detail
            );
        }
    }
    Ok(())
}

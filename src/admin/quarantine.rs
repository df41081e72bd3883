//! `admin quarantine list|release|delete`: messages a content filter held.
use super::client::Client;
use anyhow::Result;
use bridgehead_proto::v1 as pb;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum QuarantineCmd {
    /// The held messages, newest first: number, queue id, age, size, sender, recipients and
    /// the filter's reason.
    List,
    /// Deliver a held message now, to the recipients it had (ID: its number or queue id).
    Release { id: String },
    /// Remove a held message for good.
    Delete { id: String },
}

pub async fn run(c: &mut Client, cmd: QuarantineCmd) -> Result<()> {
    match cmd {
        QuarantineCmd::List => {
            let list = c.list_quarantine(pb::Empty {}).await?.into_inner();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            for e in list.entries {
                let age = (now - e.created_unix).max(0);
                let from = if e.mail_from.is_empty() {
                    "<>"
                } else {
                    &e.mail_from
                };
                println!(
                    "{}\t{}\t{}s\t{}\t{}\t{}\t{}",
                    e.id,
                    e.queue_id,
                    age,
                    e.size,
                    from,
                    e.recipients.join(","),
                    e.reason
                );
            }
        }
        QuarantineCmd::Release { id } => {
            let req = pb::QuarantineRequest { id: id.clone() };
            let released = c.release_quarantine(req).await?.into_inner();
            println!("released {id}: delivered as {}", released.queue_id);
        }
        QuarantineCmd::Delete { id } => {
            c.delete_quarantine(pb::QuarantineRequest { id: id.clone() })
                .await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

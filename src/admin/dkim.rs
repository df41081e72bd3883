//! `admin dkim add|list|rotate|activate|remove`: the keys that sign outgoing mail, and the
//! DNS records to publish for them.
use super::client::Client;
use anyhow::Result;
use bridgehead_proto::v1 as pb;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DkimCmd {
    /// Make a key that signs mail from DOMAIN at once, and print its DNS record.
    Add {
        domain: String,
        /// The selector (default: bh<date><r|e>).
        #[arg(long)]
        selector: Option<String>,
        /// rsa (2048 bits) or ed25519; add one of each to sign twice.
        #[arg(long, default_value = "rsa")]
        algorithm: String,
    },
    /// The keys (of DOMAIN, or all) with their state and records.
    List {
        domain: Option<String>,
    },
    /// Make new keys for DOMAIN (one per algorithm in use) that do not sign yet: publish
    /// their records, then `activate`.
    Rotate {
        domain: String,
        #[arg(long)]
        selector: Option<String>,
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// The new keys sign from now on; the old ones retire (keep their records published
    /// until mail signed with them has been delivered, then `remove` them).
    Activate {
        domain: String,
    },
    Remove {
        domain: String,
        selector: String,
    },
}

pub async fn run(c: &mut Client, cmd: DkimCmd) -> Result<()> {
    let req =
        |domain: String, selector: Option<String>, algorithm: Option<String>| pb::DkimKeyRequest {
            domain,
            selector: selector.unwrap_or_default(),
            algorithm: algorithm.unwrap_or_default(),
        };
    match cmd {
        DkimCmd::Add {
            domain,
            selector,
            algorithm,
        } => {
            let k = c
                .add_dkim_key(req(domain, selector, Some(algorithm)))
                .await?;
            let k = k.into_inner();
            println!("added DKIM key {} for {}; publish:", k.selector, k.domain);
            print_record(&k);
        }
        DkimCmd::List { domain } => {
            let name = domain.unwrap_or_default();
            for k in c
                .list_dkim_keys(pb::DomainRequest { name })
                .await?
                .into_inner()
                .keys
            {
                println!("{}\t{}\t{}\t{}", k.domain, k.selector, k.algorithm, k.state);
                print_record(&k);
            }
        }
        DkimCmd::Rotate {
            domain,
            selector,
            algorithm,
        } => {
            let keys = c.rotate_dkim_keys(req(domain, selector, algorithm)).await?;
            println!("new keys (they sign once activated); publish first:");
            for k in keys.into_inner().keys {
                print_record(&k);
            }
        }
        DkimCmd::Activate { domain } => {
            let keys = c
                .activate_dkim_keys(pb::DomainRequest { name: domain })
                .await?;
            for k in keys.into_inner().keys {
                println!("{}\t{}\t{}\t{}", k.domain, k.selector, k.algorithm, k.state);
            }
        }
        DkimCmd::Remove { domain, selector } => {
            c.remove_dkim_key(req(domain.clone(), Some(selector.clone()), None))
                .await?;
            println!("removed DKIM key {selector} of {domain}");
        }
    }
    Ok(())
}

/// The record as a zone file line.
fn print_record(k: &pb::DkimKeyInfo) {
    println!("  {}. IN TXT \"{}\"", k.record_name, k.record);
}

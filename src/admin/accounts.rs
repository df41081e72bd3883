//! `admin domain|user|alias|deliver`: domains, accounts, aliases, and importing a message.
use super::client::{read_password, Client};
use anyhow::{anyhow, Context, Result};
use bridgehead_proto::v1 as pb;
use bridgehead_proto::CHUNK_SIZE;
use clap::Subcommand;
use std::io::Read;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DomainCmd {
    Add {
        name: String,
    },
    List,
    Remove {
        name: String,
    },
    /// authoritative (every name is local), shared (unknown names go to the domain's route) or
    /// relay (all mail goes to the domain's route); --catch-all for authoritative domains.
    Kind {
        name: String,
        kind: String,
        #[arg(long)]
        catch_all: Option<String>,
    },
    /// What the checks of mail from other servers (SPF, DKIM, DMARC) do for the domain's
    /// recipients; without options, shows the settings.
    Auth {
        name: String,
        /// on: check and write Authentication-Results (the default); off: neither.
        #[arg(long, value_parser = ["on", "off"])]
        checks: Option<String>,
        /// enforce: as the sender's DMARC policy says (the default); quarantine: p=reject
        /// failures delivered marked instead; report: only recorded.
        #[arg(long, value_parser = ["enforce", "quarantine", "report"])]
        dmarc: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is read from standard input or a prompt.
    Add {
        address: String,
        /// Quota: bytes, or with K/M/G suffix, or "unlimited".
        #[arg(long)]
        quota: Option<String>,
    },
    /// The users (fetched a page at a time, however many there are).
    List {
        #[arg(long)]
        domain: Option<String>,
        /// Only addresses containing this text.
        #[arg(long)]
        search: Option<String>,
    },
    Remove {
        address: String,
    },
    /// Set a new password, read from standard input or a prompt.
    Passwd {
        address: String,
    },
    /// Set the quota: bytes, or with K/M/G suffix, or "unlimited".
    Quota {
        address: String,
        quota: String,
    },
}

#[derive(Subcommand)]
pub enum AliasCmd {
    Add {
        alias: String,
        target: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Remove {
        alias: String,
    },
}

pub async fn domain(c: &mut Client, cmd: DomainCmd) -> Result<()> {
    match cmd {
        DomainCmd::Add { name } => {
            c.add_domain(pb::DomainRequest { name: name.clone() })
                .await?;
            println!("added domain {name}");
        }
        DomainCmd::List => {
            for d in c.list_domains(pb::Empty {}).await?.into_inner().domains {
                let catch_all = if d.catch_all.is_empty() {
                    String::new()
                } else {
                    format!("\tcatch-all {}", d.catch_all)
                };
                println!("{}\t{}\t{} users{catch_all}", d.name, d.kind, d.users);
            }
        }
        DomainCmd::Kind {
            name,
            kind,
            catch_all,
        } => {
            let req = pb::DomainKindRequest {
                name: name.clone(),
                kind: kind.clone(),
                catch_all: catch_all.unwrap_or_default(),
            };
            c.set_domain_kind(req).await?;
            println!("{name} is {kind}");
        }
        DomainCmd::Auth {
            name,
            checks,
            dmarc,
        } => {
            let req = pb::DomainAuthRequest {
                name,
                checks: checks.map(|c| c == "on"),
                dmarc: dmarc.unwrap_or_default(),
            };
            let a = c.set_domain_auth(req).await?.into_inner();
            let checks = if a.checks { "on" } else { "off" };
            println!("{}\tchecks {checks}\tdmarc {}", a.name, a.dmarc);
        }
        DomainCmd::Remove { name } => {
            c.remove_domain(pb::DomainRequest { name: name.clone() })
                .await?;
            println!("removed domain {name}");
        }
    }
    Ok(())
}

pub async fn user(c: &mut Client, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add { address, quota } => {
            let quota_bytes = quota.as_deref().map(parse_quota).transpose()?.flatten();
            let password = read_password(&format!("Password for {address}: "))?;
            let u = c
                .add_user(pb::AddUserRequest {
                    address,
                    password,
                    quota_bytes,
                })
                .await?
                .into_inner();
            println!("added user {}", u.address);
        }
        UserCmd::List { domain, search } => {
            let mut after = String::new();
            loop {
                let req = pb::ListUsersRequest {
                    domain: domain.clone().unwrap_or_default(),
                    search: search.clone().unwrap_or_default(),
                    after,
                    limit: 1_000,
                };
                let page = c.list_users(req).await?.into_inner();
                for u in &page.users {
                    let quota = u
                        .quota_bytes
                        .map_or("unlimited".to_string(), |q| q.to_string());
                    println!(
                        "{}\t{} messages\t{} bytes used\tquota {}",
                        u.address, u.messages, u.used_bytes, quota
                    );
                }
                if page.next.is_empty() {
                    break;
                }
                after = page.next;
            }
        }
        UserCmd::Remove { address } => {
            c.remove_user(pb::UserRequest {
                address: address.clone(),
            })
            .await?;
            println!("removed user {address} and its mailbox");
        }
        UserCmd::Passwd { address } => {
            let password = read_password(&format!("New password for {address}: "))?;
            c.set_password(pb::SetPasswordRequest {
                address: address.clone(),
                password,
            })
            .await?;
            println!("password of {address} changed");
        }
        UserCmd::Quota { address, quota } => {
            let quota_bytes = parse_quota(&quota)?;
            c.set_quota(pb::SetQuotaRequest {
                address: address.clone(),
                quota_bytes,
            })
            .await?;
            println!("quota of {address} set to {quota}");
        }
    }
    Ok(())
}

pub async fn alias(c: &mut Client, cmd: AliasCmd) -> Result<()> {
    match cmd {
        AliasCmd::Add { alias, target } => {
            c.add_alias(pb::AliasRequest {
                alias: alias.clone(),
                target: target.clone(),
            })
            .await?;
            println!("added alias {alias} -> {target}");
        }
        AliasCmd::List { domain } => {
            let req = pb::ListAliasesRequest {
                domain: domain.unwrap_or_default(),
            };
            for a in c.list_aliases(req).await?.into_inner().aliases {
                println!("{}\t{}", a.alias, a.target);
            }
        }
        AliasCmd::Remove { alias } => {
            c.remove_alias(pb::AliasRequest {
                alias: alias.clone(),
                target: String::new(),
            })
            .await?;
            println!("removed alias {alias}");
        }
    }
    Ok(())
}

pub async fn deliver(c: &mut Client, to: String, file: Option<PathBuf>) -> Result<()> {
    let mut data = Vec::new();
    match &file {
        Some(path) => {
            data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut data)
                .context("reading the message from standard input")?;
        }
    }
    let mut parts = vec![pb::ImportPart {
        part: Some(pb::import_part::Part::Recipient(to)),
    }];
    parts.extend(data.chunks(CHUNK_SIZE).map(|c| pb::ImportPart {
        part: Some(pb::import_part::Part::Data(c.to_vec())),
    }));
    let r = c
        .import_message(futures::stream::iter(parts))
        .await?
        .into_inner();
    println!(
        "delivered to {} as message {} ({} octets)",
        r.address, r.uid, r.size
    );
    Ok(())
}

/// Bytes, or a number with K/M/G (powers of 1024), or "unlimited" (None).
fn parse_quota(s: &str) -> Result<Option<u64>> {
    let t = s.trim().to_ascii_lowercase();
    if t == "unlimited" || t == "none" {
        return Ok(None);
    }
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t.as_str(), 1),
    };
    let n: u64 = num.parse().map_err(|_| {
        anyhow!("bad quota {s:?}: use bytes, a number with K, M or G, or \"unlimited\"")
    })?;
    n.checked_mul(mult)
        .map(Some)
        .ok_or_else(|| anyhow!("quota {s:?} is too large"))
}

/// A password from the terminal (not echoed) or the first line of standard input.
#[cfg(test)]
mod tests {
    use super::parse_quota;

    #[test]
    fn quotas() {
        assert_eq!(parse_quota("1024").unwrap(), Some(1024));
        assert_eq!(parse_quota("10M").unwrap(), Some(10 << 20));
        assert_eq!(parse_quota("unlimited").unwrap(), None);
        assert!(parse_quota("ten").is_err());
    }
}

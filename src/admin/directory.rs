//! `bridgehead admin group …` and `bridgehead admin contact …`: distribution groups and
//! contacts (outside addresses with a local directory address).
use super::client::Client;
use anyhow::Result;
use bridgehead_proto::v1 as pb;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Add a group. --policy: who may send to it (anyone, authenticated, members).
    Add {
        address: String,
        #[arg(long, default_value = "anyone")]
        policy: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Remove {
        address: String,
    },
    /// Set who may send to the group: anyone, authenticated or members.
    Policy {
        address: String,
        policy: String,
    },
    /// Members: local users, aliases, groups (nested), contacts or outside addresses.
    #[command(subcommand)]
    Member(MemberCmd),
}

#[derive(Subcommand)]
pub enum MemberCmd {
    Add { group: String, member: String },
    Remove { group: String, member: String },
}

#[derive(Subcommand)]
pub enum ContactCmd {
    /// Add ADDRESS here, forwarding to EXTERNAL (a mail-enabled outside user).
    Add {
        address: String,
        external: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Remove {
        address: String,
    },
}

pub async fn group(c: &mut Client, cmd: GroupCmd) -> Result<()> {
    let req = |address: &str, policy: &str| pb::GroupRequest {
        address: address.to_string(),
        policy: policy.to_string(),
    };
    match cmd {
        GroupCmd::Add { address, policy } => {
            c.add_group(req(&address, &policy)).await?;
            println!("added group {address} (senders: {policy})");
        }
        GroupCmd::List { domain } => {
            let groups = c
                .list_groups(pb::ListGroupsRequest {
                    domain: domain.unwrap_or_default(),
                })
                .await?;
            for g in groups.into_inner().groups {
                println!(
                    "{}\tsenders: {}\tmembers: {}",
                    g.address,
                    g.policy,
                    g.members.join(", ")
                );
            }
        }
        GroupCmd::Remove { address } => {
            c.remove_group(req(&address, "")).await?;
            println!("removed group {address}");
        }
        GroupCmd::Policy { address, policy } => {
            c.set_group_policy(req(&address, &policy)).await?;
            println!("senders of {address}: {policy}");
        }
        GroupCmd::Member(MemberCmd::Add { group, member }) => {
            c.add_group_member(pb::GroupMemberRequest {
                group: group.clone(),
                member: member.clone(),
            })
            .await?;
            println!("{member} is a member of {group}");
        }
        GroupCmd::Member(MemberCmd::Remove { group, member }) => {
            c.remove_group_member(pb::GroupMemberRequest {
                group: group.clone(),
                member: member.clone(),
            })
            .await?;
            println!("{member} is no longer a member of {group}");
        }
    }
    Ok(())
}

pub async fn contact(c: &mut Client, cmd: ContactCmd) -> Result<()> {
    match cmd {
        ContactCmd::Add { address, external } => {
            c.add_contact(pb::ContactInfo {
                address: address.clone(),
                external: external.clone(),
            })
            .await?;
            println!("added contact {address} -> {external}");
        }
        ContactCmd::List { domain } => {
            let list = c
                .list_contacts(pb::ListGroupsRequest {
                    domain: domain.unwrap_or_default(),
                })
                .await?;
            for x in list.into_inner().contacts {
                println!("{}\t{}", x.address, x.external);
            }
        }
        ContactCmd::Remove { address } => {
            c.remove_contact(pb::ContactInfo {
                address: address.clone(),
                external: String::new(),
            })
            .await?;
            println!("removed contact {address}");
        }
    }
    Ok(())
}

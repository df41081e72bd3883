//! `bridgehead admin`: the operator's CLI over the admin gRPC API.
//!
//! Connection: `--url`/`--token` (or `BRIDGEHEAD_ADMIN_URL`/`BRIDGEHEAD_ADMIN_TOKEN`), else
//! `--data-dir` of a dev cluster (its endpoints.json). Passwords come from standard input or a
//! prompt, never from argv. Errors say what to fix and exit non-zero.
use anyhow::{anyhow, bail, Context, Result};
use bridgehead_proto::v1 as pb;
use bridgehead_proto::v1::admin_client::AdminClient;
use bridgehead_proto::CHUNK_SIZE;
use clap::{Args, Subcommand};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

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
    Domain(DomainCmd),
    /// User accounts (mailboxes).
    #[command(subcommand)]
    User(UserCmd),
    /// Extra addresses that deliver to a user.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Distribution groups.
    #[command(subcommand)]
    Group(crate::admin_directory::GroupCmd),
    /// Contacts: outside addresses with a local directory address.
    #[command(subcommand)]
    Contact(crate::admin_directory::ContactCmd),
    /// The outbound queue.
    #[command(subcommand)]
    Queue(crate::admin_queue::QueueCmd),
    /// Next hops for outside mail: per domain, and the smart host ("*").
    #[command(subcommand)]
    Route(crate::admin_queue::RouteCmd),
    /// POP3 connectors: outside POP3 mailboxes brought into local mailboxes.
    #[command(subcommand)]
    Connector(crate::admin_connector::ConnectorCmd),
    /// Import a message from FILE (or standard input) into a mailbox.
    Deliver {
        /// Address whose mailbox receives the message (a user or an alias).
        #[arg(long)]
        to: String,
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DomainCmd {
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
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from standard input or a prompt.
    Add {
        address: String,
        /// Quota: bytes, or with K/M/G suffix, or "unlimited".
        #[arg(long)]
        quota: Option<String>,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
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
enum AliasCmd {
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

pub type Client = AdminClient<InterceptedService<Channel, Bearer>>;

#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
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
    let mut client = connect(
        args.url.clone(),
        token,
        args.ca.clone(),
        args.data_dir.clone(),
    )
    .await?;
    match args.command {
        AdminCommand::Domain(cmd) => domain(&mut client, cmd).await,
        AdminCommand::User(cmd) => user(&mut client, cmd).await,
        AdminCommand::Alias(cmd) => alias(&mut client, cmd).await,
        AdminCommand::Deliver { to, file } => deliver(&mut client, to, file).await,
        AdminCommand::Queue(cmd) => crate::admin_queue::queue(&mut client, cmd).await,
        AdminCommand::Group(cmd) => crate::admin_directory::group(&mut client, cmd).await,
        AdminCommand::Contact(cmd) => crate::admin_directory::contact(&mut client, cmd).await,
        AdminCommand::Connector(cmd) => crate::admin_connector::run(&mut client, cmd).await,
        AdminCommand::Route(cmd) => crate::admin_queue::route(&mut client, cmd).await,
    }
    .map_err(explain)
}

/// Where the admin API is, as given.
struct Endpoint {
    url: Option<String>,
    token: Option<String>,
    ca: Option<PathBuf>,
    data_dir: Option<PathBuf>,
}

/// Connects to the admin API: from flags or environment, else a dev cluster's data directory.
pub async fn connect(
    url: Option<String>,
    token: Option<String>,
    ca: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> Result<Client> {
    let (url, token, ca) = connection(&Endpoint {
        url,
        token,
        ca,
        data_dir,
    })?;
    let bearer = MetadataValue::try_from(format!("Bearer {token}"))
        .context("the admin token has characters that are not allowed")?;
    let mut endpoint =
        Channel::from_shared(url.clone()).with_context(|| format!("bad admin URL {url:?}"))?;
    if let Some(ca) = ca {
        let pem = std::fs::read(&ca)
            .with_context(|| format!("reading the CA certificate {}", ca.display()))?;
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem));
        endpoint = endpoint
            .tls_config(tls)
            .context("TLS settings for the admin API")?;
    }
    let channel = endpoint.connect().await.with_context(|| {
        format!("cannot reach the admin API at {url} (is the back-end running?)")
    })?;
    Ok(AdminClient::with_interceptor(channel, Bearer(bearer)))
}

/// The URL and token to use, from flags, environment or a dev data directory.
fn connection(args: &Endpoint) -> Result<(String, String, Option<PathBuf>)> {
    let mut dir = (None, None, None);
    if let Some(d) = &args.data_dir {
        if args.url.is_none() || args.token.is_none() {
            let path = d.join("endpoints.json");
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading {} (is this a `bridgehead dev` data directory?)",
                    path.display()
                )
            })?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let ca = get("grpc_ca").map(PathBuf::from);
            let scheme = if ca.is_some() { "https" } else { "http" };
            dir = (
                get("grpc").map(|g| format!("{scheme}://{g}")),
                get("admin_token"),
                ca,
            );
        }
    }
    let ca = args.ca.clone().or(dir.2);
    let url = args.url.clone().or(dir.0).ok_or_else(|| {
        anyhow!("no admin API given: use --url, BRIDGEHEAD_ADMIN_URL or --data-dir")
    })?;
    let url = match (url.contains("://"), ca.is_some()) {
        (true, _) => url,
        (false, true) => format!("https://{url}"),
        (false, false) => format!("http://{url}"),
    };
    let token = args.token.clone().or(dir.1).ok_or_else(|| {
        anyhow!("no admin token given: use --token, BRIDGEHEAD_ADMIN_TOKEN or --data-dir")
    })?;
    Ok((url, token, ca))
}

/// Turns a gRPC status into a message for the operator.
fn explain(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<Status>() {
        Some(s) if s.code() == Code::Unavailable => {
            anyhow!("the back-end is unavailable: {}", s.message())
        }
        Some(s) => anyhow!("{}", s.message()),
        None => e,
    }
}

async fn domain(c: &mut Client, cmd: DomainCmd) -> Result<()> {
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
        DomainCmd::Remove { name } => {
            c.remove_domain(pb::DomainRequest { name: name.clone() })
                .await?;
            println!("removed domain {name}");
        }
    }
    Ok(())
}

async fn user(c: &mut Client, cmd: UserCmd) -> Result<()> {
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
        UserCmd::List { domain } => {
            let req = pb::ListUsersRequest {
                domain: domain.unwrap_or_default(),
            };
            for u in c.list_users(req).await?.into_inner().users {
                let quota = u
                    .quota_bytes
                    .map_or("unlimited".to_string(), |q| q.to_string());
                println!(
                    "{}\t{} messages\t{} bytes used\tquota {}",
                    u.address, u.messages, u.used_bytes, quota
                );
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

async fn alias(c: &mut Client, cmd: AliasCmd) -> Result<()> {
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

async fn deliver(c: &mut Client, to: String, file: Option<PathBuf>) -> Result<()> {
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
pub fn read_password(prompt: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        bail!("empty password: give one on standard input or at the prompt");
    }
    Ok(password)
}

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

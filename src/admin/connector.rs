//! `bridgehead admin connector …`: POP3 connectors that bring mail from outside POP3
//! mailboxes into local mailboxes. Passwords come from standard input or a prompt and are
//! never shown.
use super::client::{read_password, Client};
use anyhow::{bail, Result};
use bridgehead_proto::v1 as pb;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ConnectorCmd {
    /// Add a connector; the outside account's password is read from standard input or a prompt.
    Add {
        name: String,
        #[command(flatten)]
        settings: Settings,
        /// Add it switched off (e.g. to add routing rules first); `edit --enable` starts it.
        #[arg(long)]
        disabled: bool,
    },
    List,
    /// Settings and status: last poll, messages fetched, last error.
    Show {
        name: String,
    },
    /// Change settings; only the options given change.
    Edit {
        name: String,
        #[command(flatten)]
        settings: Settings,
        /// Read a new password from standard input or a prompt.
        #[arg(long)]
        password: bool,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    Remove {
        name: String,
    },
    /// Poll a connector (or, with --all, every connector) now.
    RetrieveNow {
        name: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Routing rules of a global mailbox: text in To or Cc → a local mailbox.
    #[command(subcommand)]
    Rule(RuleCmd),
}

#[derive(Subcommand)]
pub enum RuleCmd {
    Add {
        connector: String,
        text: String,
        target: String,
    },
    Remove {
        connector: String,
        text: String,
    },
}

#[derive(Args, Default)]
pub struct Settings {
    /// The outside POP3 server, HOST:PORT.
    #[arg(long)]
    server: Option<String>,
    /// implicit (POP3S, the default), stls, or none (only when chosen explicitly).
    #[arg(long)]
    tls: Option<String>,
    /// Do not verify the server's certificate.
    #[arg(long)]
    no_verify: bool,
    /// The outside account's user name.
    #[arg(long)]
    user: Option<String>,
    /// user (USER/PASS, the default), plain (AUTH PLAIN) or apop.
    #[arg(long)]
    auth: Option<String>,
    /// User mailbox: deliver everything to this local address (or group).
    #[arg(long, conflicts_with = "global")]
    to: Option<String>,
    /// Global mailbox: deliver to the local recipients of this domain named in To and Cc.
    #[arg(long)]
    global: Option<String>,
    /// Seconds between polls (default 300).
    #[arg(long)]
    interval: Option<i32>,
    /// Keep messages on the server (no duplicates: UIDLs are remembered).
    #[arg(long)]
    leave_on_server: bool,
    /// With --leave-on-server: delete them on the server after this many days.
    #[arg(long)]
    delete_after_days: Option<i32>,
    /// Where messages with no local recipient go (default postmaster@<first domain>).
    #[arg(long)]
    undeliverable: Option<String>,
    /// info, or debug to log every message.
    #[arg(long)]
    log_level: Option<String>,
}

impl Settings {
    /// Applies the options given onto `c`.
    fn apply(self, c: &mut pb::ConnectorInfo) -> Result<()> {
        if let Some(server) = self.server {
            let Some((host, port)) = server.rsplit_once(':') else {
                bail!("--server must be HOST:PORT, e.g. pop.isp.example:995");
            };
            c.server = host.to_string();
            c.port = port
                .parse()
                .map_err(|_| anyhow::anyhow!("bad port in --server {server:?}"))?;
        }
        let set = |field: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut c.tls, self.tls);
        set(&mut c.auth, self.auth);
        set(&mut c.username, self.user);
        set(&mut c.log_level, self.log_level);
        set(&mut c.undeliverable, self.undeliverable);
        if let Some(to) = self.to {
            c.mode = "user".into();
            c.target = to;
        }
        if let Some(domain) = self.global {
            c.mode = "global".into();
            c.target = domain;
        }
        if self.no_verify {
            c.verify_cert = false;
        }
        if let Some(i) = self.interval {
            c.interval_secs = i;
        }
        if self.leave_on_server {
            c.leave_on_server = true;
        }
        if self.delete_after_days.is_some() {
            c.delete_after_days = self.delete_after_days;
        }
        Ok(())
    }
}

pub async fn run(c: &mut Client, cmd: ConnectorCmd) -> Result<()> {
    let req = |n: &str| pb::ConnectorRequest {
        name: n.to_string(),
    };
    match cmd {
        ConnectorCmd::Add {
            name,
            settings,
            disabled,
        } => add(c, name, settings, disabled).await?,
        ConnectorCmd::List => list(c).await?,
        ConnectorCmd::Show { name } => show(&c.show_connector(req(&name)).await?.into_inner()),
        ConnectorCmd::Edit {
            name,
            settings,
            password,
            enable,
            disable,
        } => {
            let mut info = c.show_connector(req(&name)).await?.into_inner();
            settings.apply(&mut info)?;
            if enable || disable {
                info.enabled = enable;
            }
            info.secret = if password {
                read_password("New password: ")?
            } else {
                String::new()
            };
            c.edit_connector(info).await?;
            println!("connector {name} changed");
        }
        ConnectorCmd::Remove { name } => {
            c.remove_connector(req(&name)).await?;
            println!("removed connector {name}");
        }
        ConnectorCmd::RetrieveNow { name, all } => {
            let name = match (name, all) {
                (Some(n), false) => n,
                (None, true) => String::new(),
                _ => bail!("give a connector name or --all"),
            };
            let n = c.retrieve_now(req(&name)).await?.into_inner().count;
            println!("{n} connector(s) will be polled now");
        }
        ConnectorCmd::Rule(cmd) => rule(c, cmd).await?,
    }
    Ok(())
}

async fn add(c: &mut Client, name: String, settings: Settings, disabled: bool) -> Result<()> {
    let mut info = pb::ConnectorInfo {
        name: name.clone(),
        tls: "implicit".into(),
        auth: "user".into(),
        verify_cert: true,
        interval_secs: 300,
        enabled: !disabled,
        log_level: "info".into(),
        ..Default::default()
    };
    settings.apply(&mut info)?;
    if info.mode.is_empty() {
        bail!("say where the mail goes: --to ADDRESS (user mailbox) or --global DOMAIN");
    }
    if info.server.is_empty() || info.username.is_empty() {
        bail!("a connector needs --server HOST:PORT and --user NAME");
    }
    info.secret = read_password(&format!(
        "Password of {} at {}: ",
        info.username, info.server
    ))?;
    c.add_connector(info).await?;
    println!("added connector {name}");
    Ok(())
}

async fn list(c: &mut Client) -> Result<()> {
    let all = c.list_connectors(pb::Empty {}).await?.into_inner();
    for x in all.connectors {
        let state = if x.enabled { "enabled" } else { "disabled" };
        let error = if x.last_error.is_empty() {
            String::new()
        } else {
            format!("\terror: {}", x.last_error)
        };
        println!(
            "{}\t{} {}\t{}@{}:{}\t{state}\tlast poll {}\t{} fetched{error}",
            x.name,
            x.mode,
            x.target,
            x.username,
            x.server,
            x.port,
            or_never(&x.last_poll_at),
            x.fetched_total,
        );
    }
    Ok(())
}

async fn rule(c: &mut Client, cmd: RuleCmd) -> Result<()> {
    match cmd {
        RuleCmd::Add {
            connector,
            text,
            target,
        } => {
            c.set_connector_rule(pb::ConnectorRule {
                connector,
                match_text: text.clone(),
                target: target.clone(),
            })
            .await?;
            println!("mail whose To or Cc contains {text:?} goes to {target}");
        }
        RuleCmd::Remove { connector, text } => {
            c.remove_connector_rule(pb::ConnectorRule {
                connector,
                match_text: text,
                target: String::new(),
            })
            .await?;
            println!("rule removed");
        }
    }
    Ok(())
}

fn or_never(t: &str) -> &str {
    if t.is_empty() {
        "never"
    } else {
        t
    }
}

fn show(x: &pb::ConnectorInfo) {
    println!("name:            {}", x.name);
    println!("mailbox:         {} {}", x.mode, x.target);
    println!(
        "server:          {}:{} (tls {}, certificate {})",
        x.server,
        x.port,
        x.tls,
        if x.verify_cert {
            "verified"
        } else {
            "not verified"
        }
    );
    println!(
        "account:         {} (auth {}; password set, not shown)",
        x.username, x.auth
    );
    println!("enabled:         {}", x.enabled);
    println!("interval:        {} s", x.interval_secs);
    let keep = match (x.leave_on_server, x.delete_after_days) {
        (false, _) => "deleted after download".to_string(),
        (true, None) => "left on the server".to_string(),
        (true, Some(d)) => format!("left on the server for {d} days"),
    };
    println!("messages:        {keep}");
    println!(
        "undeliverable:   {}",
        if x.undeliverable.is_empty() {
            "postmaster (default)"
        } else {
            &x.undeliverable
        }
    );
    println!("log level:       {}", x.log_level);
    for r in &x.rules {
        println!("rule:            {:?} -> {}", r.match_text, r.target);
    }
    println!("last poll:       {}", or_never(&x.last_poll_at));
    println!("next poll:       {}", or_never(&x.next_poll_at));
    println!(
        "fetched:         {} last poll, {} in all",
        x.last_fetched, x.fetched_total
    );
    println!(
        "last error:      {}",
        if x.last_error.is_empty() {
            "none"
        } else {
            &x.last_error
        }
    );
}

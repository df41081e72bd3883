//! Where mail for a domain goes: a configured route, else the smart host ('*'), else the
//! domain's MX hosts (RFC 5321 §5.1: by preference, each host's addresses in turn; no MX →
//! the domain's own address records; a null MX, RFC 7505 → fail at once; a domain that does
//! not exist → fail; any other DNS failure → try later). Names are resolved by one resolver:
//! the system's, or the DNS server the back-end is given (`--dns-server`).
use super::policy::mta_sts::{Mode, Policy};
use super::sts::Sts;
use super::{Target, TlsMode, TransportConfig};
use crate::secrets::Secrets;
use crate::store::Store;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    Hosts(Vec<Target>),
    /// Permanent: the domain says it takes no mail, or does not exist.
    Refused {
        status: &'static str,
        reason: String,
    },
    /// Not now, for a reason with its own status (a policy: 4.7.5).
    Deferred {
        status: &'static str,
        reason: String,
    },
    /// Temporary: try later.
    Unknown(String),
}

pub struct Router {
    resolver: Option<TokioResolver>,
    mx_port: u16,
    /// Opens routes' stored AUTH secrets.
    secrets: Secrets,
    /// MTA-STS policies of the domains mail goes to.
    sts: Sts,
}

impl Router {
    pub fn new(config: &TransportConfig) -> Router {
        let resolver = match config.dns_server {
            Some(server) => Some(resolver_for(server)),
            None => match TokioResolver::builder_tokio() {
                Ok(b) => Some(b.build()),
                Err(e) => {
                    tracing::warn!(error = %e, "no DNS resolver configuration; only routes will work");
                    None
                }
            },
        };
        Router {
            resolver,
            mx_port: config.mx_port,
            secrets: config.secrets.clone(),
            sts: Sts::new(config.mta_sts_port),
        }
    }

    pub async fn next_hop(&self, store: &Store, domain: &str) -> NextHop {
        match store.route_for(domain).await {
            Ok(Some(r)) => {
                let secret = match r.auth_secret.map(|s| self.secrets.open("route", &s)) {
                    Some(Err(e)) => return NextHop::Unknown(format!("route {domain}: {e}")),
                    Some(Ok(s)) => Some(s),
                    None => None,
                };
                return NextHop::Hosts(vec![Target {
                    host: r.host,
                    ip: None,
                    port: r.port,
                    tls: TlsMode::parse(&r.tls).unwrap_or(TlsMode::Opportunistic),
                    auth: r.auth_user.zip(secret),
                }]);
            }
            Ok(None) => {}
            Err(e) => return NextHop::Unknown(format!("route lookup failed: {e}")),
        }
        self.mx(store, domain).await
    }

    async fn mx(&self, store: &Store, domain: &str) -> NextHop {
        let Some(resolver) = &self.resolver else {
            return NextHop::Unknown("no DNS resolver configured".into());
        };
        let fqdn = format!("{domain}.");
        let hosts = match resolver.mx_lookup(fqdn.as_str()).await {
            Ok(mx) => {
                let mut records: Vec<(u16, String, bool)> = mx
                    .iter()
                    .map(|r| {
                        (
                            r.preference(),
                            r.exchange().to_utf8(),
                            r.exchange().is_root(),
                        )
                    })
                    .collect();
                if records.len() == 1 && records[0].2 {
                    return NextHop::Refused {
                        status: "5.1.10",
                        reason: format!("{domain} does not accept mail (null MX, RFC 7505)"),
                    };
                }
                records.retain(|r| !r.2);
                records.sort();
                records.into_iter().map(|(_, host, _)| host).collect()
            }
            Err(e) if e.is_nx_domain() => {
                return NextHop::Refused {
                    status: "5.1.2",
                    reason: format!("Host or domain name not found: {domain}"),
                }
            }
            Err(e) if e.is_no_records_found() => vec![domain.to_string()],
            Err(e) => return NextHop::Unknown(format!("DNS lookup of {domain} failed: {e}")),
        };
        let (hosts, tls) = match self.sts.policy(store, resolver, domain).await {
            Some(policy) => match sts_hosts(&policy, domain, hosts) {
                Ok(h) => h,
                Err(deferred) => return deferred,
            },
            None => (hosts, TlsMode::Opportunistic),
        };
        self.addresses(resolver, domain, hosts, tls).await
    }

    /// Every address of each host, in the hosts' order.
    async fn addresses(
        &self,
        resolver: &TokioResolver,
        domain: &str,
        hosts: Vec<String>,
        tls: TlsMode,
    ) -> NextHop {
        let mut targets = Vec::new();
        let mut last_error = String::new();
        for host in hosts {
            let name = host.trim_end_matches('.').to_string();
            match resolver.lookup_ip(format!("{name}.")).await {
                Ok(ips) => targets.extend(ips.iter().map(|ip| Target {
                    host: name.clone(),
                    ip: Some(ip),
                    port: self.mx_port,
                    tls,
                    auth: None,
                })),
                Err(e) => last_error = format!("address of {name}: {e}"),
            }
        }
        if targets.is_empty() {
            return NextHop::Unknown(format!(
                "no address for the mail hosts of {domain}: {last_error}"
            ));
        }
        NextHop::Hosts(targets)
    }
}

/// The MX hosts an MTA-STS policy lets mail go to, and how: in `enforce` mode only the hosts
/// it names, over TLS whose certificate verifies for the host (none left: deferred 4.7.5);
/// in `testing` mode every host as without a policy, the mismatches logged.
fn sts_hosts(
    policy: &Policy,
    domain: &str,
    hosts: Vec<String>,
) -> Result<(Vec<String>, TlsMode), NextHop> {
    let (allowed, refused): (Vec<String>, Vec<String>) =
        hosts.iter().cloned().partition(|h| policy.allows(h));
    if policy.mode != Mode::Enforce {
        if !refused.is_empty() {
            tracing::info!(domain, hosts = ?refused, "MX hosts outside the MTA-STS policy (testing mode: used anyway)");
        }
        return Ok((hosts, TlsMode::Opportunistic));
    }
    if allowed.is_empty() {
        return Err(NextHop::Deferred {
            status: "4.7.5",
            reason: format!(
                "no mail host of {domain} matches its MTA-STS policy (hosts: {})",
                refused.join(", ")
            ),
        });
    }
    Ok((allowed, TlsMode::Verify))
}

/// A resolver that asks `server` only (UDP, then TCP for long answers).
fn resolver_for(server: SocketAddr) -> TokioResolver {
    let mut config = ResolverConfig::new();
    config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
    config.add_name_server(NameServerConfig::new(server, Protocol::Tcp));
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).build()
}

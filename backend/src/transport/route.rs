//! Where mail for a domain goes: a configured route, else the smart host ('*'), else the
//! domain's MX hosts (RFC 5321 §5.1: by preference; no MX → the domain's own address
//! records; a null MX, RFC 7505 → fail at once; a domain that does not exist → fail).
use super::{Target, TlsMode};
use crate::secrets::Secrets;
use crate::store::Store;
use hickory_resolver::TokioResolver;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    Hosts(Vec<Target>),
    /// Permanent: the domain says it takes no mail, or does not exist.
    Refused {
        status: &'static str,
        reason: String,
    },
    /// Temporary: try later.
    Unknown(String),
}

pub struct Router {
    resolver: Option<TokioResolver>,
    /// Opens routes' stored AUTH secrets.
    secrets: Secrets,
}

impl Router {
    pub fn new(secrets: Secrets) -> Router {
        let resolver = match TokioResolver::builder_tokio() {
            Ok(b) => Some(b.build()),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS resolver configuration; only routes will work");
                None
            }
        };
        Router { resolver, secrets }
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
                    port: r.port,
                    tls: TlsMode::parse(&r.tls).unwrap_or(TlsMode::Opportunistic),
                    auth: r.auth_user.zip(secret),
                }]);
            }
            Ok(None) => {}
            Err(e) => return NextHop::Unknown(format!("route lookup failed: {e}")),
        }
        self.mx(domain).await
    }

    async fn mx(&self, domain: &str) -> NextHop {
        let Some(resolver) = &self.resolver else {
            return NextHop::Unknown("no DNS resolver configured".into());
        };
        let fqdn = format!("{domain}.");
        match resolver.mx_lookup(fqdn.as_str()).await {
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
                NextHop::Hosts(
                    records
                        .into_iter()
                        .map(|(_, host, _)| smtp_target(host))
                        .collect(),
                )
            }
            Err(e) if e.is_nx_domain() => NextHop::Refused {
                status: "5.1.2",
                reason: format!("Host or domain name not found: {domain}"),
            },
            Err(e) if e.is_no_records_found() => {
                NextHop::Hosts(vec![smtp_target(domain.to_string())])
            }
            Err(e) => NextHop::Unknown(format!("DNS lookup of {domain} failed: {e}")),
        }
    }
}

fn smtp_target(host: String) -> Target {
    Target {
        host: host.trim_end_matches('.').to_string(),
        port: 25,
        tls: TlsMode::Opportunistic,
        auth: None,
    }
}

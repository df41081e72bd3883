//! Where mail for a domain goes: a configured route, else the smart host ('*'), else the
//! domain's MX hosts (RFC 5321 §5.1: by preference, each host's addresses in turn; no MX →
//! the domain's own address records; a null MX, RFC 7505 → fail at once; a domain that does
//! not exist → fail; any other DNS failure → try later). Names are resolved by one resolver:
//! the system's, or the DNS server the back-end is given (`--dns-server`).
//!
//! Each host gets its TLS policy here: DANE when its TLSA records are DNSSEC-validated (it
//! wins over MTA-STS, RFC 8461 §2), else the domain's MTA-STS policy, else opportunistic. A
//! host whose TLSA lookup failed, or that an enforced MTA-STS policy does not name, is not
//! used; none left is a 4.7.5 deferral.
use super::dane::DaneResolver;
use super::policy::dane::Dane;
use super::policy::mta_sts::{Mode, Policy};
use super::sts::Sts;
use super::tlsrpt::report::{ReportPolicy, ResultType};
use super::tlsrpt::{self, Recorder};
use super::{Target, TlsMode, TransportConfig};
use crate::secrets::Secrets;
use crate::store::Store;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// TLSA lookups through a validating resolver; none: no DANE.
    dane: Option<DaneResolver>,
    /// TLS-RPT counts (the failures found here, before any connection).
    recorder: Arc<Recorder>,
}

/// Why a TXT lookup failed; `temporary`: try later (not "no record").
#[derive(Debug)]
pub struct LookupError {
    pub temporary: bool,
    pub reason: String,
}

/// Whether the receiving domain's TLS policies apply (`Waived`: the sender's `TLS-Required:
/// No`, RFC 8689 §5 — every MX host, opportunistic TLS, sessions not counted for TLS-RPT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policies {
    Apply,
    Waived,
}

/// A host to send to and how its TLS is checked.
struct HostPolicy {
    host: String,
    tls: TlsMode,
    tlsa: Option<Records>,
    report: Option<Arc<ReportPolicy>>,
}

/// A host's usable TLSA records, shared by its targets.
type Records = Arc<Vec<super::policy::dane::Tlsa>>;

impl Router {
    pub fn new(config: &TransportConfig, recorder: Arc<Recorder>) -> Router {
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
            sts: Sts::new(config.mta_sts_port, recorder.clone()),
            dane: config.dane_resolver.map(DaneResolver::new),
            recorder,
        }
    }

    /// The TXT records at `name` (a fully qualified name).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let Some(resolver) = &self.resolver else {
            return Err(LookupError {
                temporary: true,
                reason: "no DNS resolver configured".into(),
            });
        };
        txt_records(resolver, name).await.map_err(|e| LookupError {
            temporary: !(e.is_nx_domain() || no_data(&e)),
            reason: e.to_string(),
        })
    }

    pub async fn next_hop(&self, store: &Store, domain: &str, policies: Policies) -> NextHop {
        match store.route_for(domain).await {
            Ok(Some(r)) => {
                let secret = match r.auth_secret.map(|s| self.secrets.open("route", &s)) {
                    Some(Err(e)) => return NextHop::Unknown(format!("route {domain}: {e}")),
                    Some(Ok(s)) => Some(s),
                    None => None,
                };
                let tls = TlsMode::parse(&r.tls).unwrap_or(TlsMode::Opportunistic);
                let (tls, tlsa) = match tls {
                    TlsMode::Dane => match self.route_dane(&r.host).await {
                        Ok(p) => p,
                        Err(deferred) => return deferred,
                    },
                    other => (other, None),
                };
                return NextHop::Hosts(vec![Target {
                    host: r.host,
                    ip: None,
                    port: r.port,
                    tls,
                    tlsa,
                    report: None,
                    auth: r.auth_user.zip(secret),
                }]);
            }
            Ok(None) => {}
            Err(e) => return NextHop::Unknown(format!("route lookup failed: {e}")),
        }
        self.mx(store, domain, policies).await
    }

    async fn mx(&self, store: &Store, domain: &str, policies: Policies) -> NextHop {
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
                            r.exchange().to_utf8().trim_end_matches('.').to_string(),
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
            Err(e) if no_data(&e) => vec![domain.to_string()],
            Err(e) => return NextHop::Unknown(lookup_failed(domain, &e)),
        };
        if policies == Policies::Waived {
            let chosen = hosts
                .into_iter()
                .map(|host| HostPolicy {
                    host,
                    tls: TlsMode::Opportunistic,
                    tlsa: None,
                    report: None,
                })
                .collect();
            return self.addresses(resolver, domain, chosen).await;
        }
        let policy = self.sts.policy(store, resolver, domain).await;
        // How hosts without DANE are reported (TLS-RPT), made once for all of them.
        let sts_report = Arc::new(match &policy {
            Some(p) => tlsrpt::sts_policy(domain, p),
            None => tlsrpt::no_policy(domain),
        });
        let mut chosen = Vec::new();
        let mut refused = Vec::new();
        for host in hosts {
            let sts = (policy.as_ref(), &sts_report);
            match self.host_policy(sts, domain, host).await {
                Ok(p) => chosen.push(p),
                Err(why) => refused.push(why),
            }
        }
        if chosen.is_empty() {
            return NextHop::Deferred {
                status: "4.7.5",
                reason: format!(
                    "no mail host of {domain} can be used: {}",
                    refused.join("; ")
                ),
            };
        }
        self.addresses(resolver, domain, chosen).await
    }

    /// How `host` is to be reached (DANE first, then the domain's MTA-STS policy and how it
    /// is reported), or why it is not used.
    async fn host_policy(
        &self,
        (policy, sts_report): (Option<&Policy>, &Arc<ReportPolicy>),
        domain: &str,
        host: String,
    ) -> Result<HostPolicy, String> {
        let dane = match &self.dane {
            Some(d) => d.lookup(&host).await,
            None => Dane::None,
        };
        let (tls, tlsa, report) = match dane {
            Dane::Authenticate(records) => {
                let report = Arc::new(tlsrpt::tlsa_policy(domain, &records));
                (TlsMode::Dane, Some(Arc::new(records)), report)
            }
            Dane::EncryptOnly => {
                let report = Arc::new(tlsrpt::tlsa_policy(domain, &[]));
                (TlsMode::Required, None, report)
            }
            Dane::Unusable(why) => {
                let report = tlsrpt::tlsa_policy(domain, &[]);
                let failed = ResultType::DnssecInvalid;
                self.recorder
                    .failure(&report, failed, &host, None, why.clone());
                return Err(why);
            }
            Dane::None => match sts_mode(policy, domain, &host) {
                Ok(mode) => (mode, None, sts_report.clone()),
                Err(why) => {
                    let failed = ResultType::ValidationFailure;
                    self.recorder
                        .failure(sts_report, failed, &host, None, why.clone());
                    return Err(why);
                }
            },
        };
        Ok(HostPolicy {
            host,
            tls,
            tlsa,
            report: Some(report),
        })
    }

    /// A route's `dane`: the host's TLSA records must be there and DNSSEC-validated.
    async fn route_dane(&self, host: &str) -> Result<(TlsMode, Option<Records>), NextHop> {
        let deferred = |reason: String| NextHop::Deferred {
            status: "4.7.5",
            reason,
        };
        let Some(resolver) = &self.dane else {
            return Err(deferred(format!(
                "the route to {host} asks for DANE, but no validating resolver is configured (--dane-resolver)"
            )));
        };
        match resolver.lookup(host).await {
            Dane::Authenticate(records) => Ok((TlsMode::Dane, Some(Arc::new(records)))),
            Dane::EncryptOnly => Ok((TlsMode::Required, None)),
            Dane::None => Err(deferred(format!(
                "the route to {host} asks for DANE, but {host} has no DNSSEC-validated TLSA records"
            ))),
            Dane::Unusable(why) => Err(deferred(why)),
        }
    }

    /// Every address of each host, in the hosts' order.
    async fn addresses(
        &self,
        resolver: &TokioResolver,
        domain: &str,
        hosts: Vec<HostPolicy>,
    ) -> NextHop {
        let mut targets = Vec::new();
        let mut last_error = String::new();
        for p in hosts {
            let name = p.host.trim_end_matches('.').to_string();
            match resolver.lookup_ip(format!("{name}.")).await {
                Ok(ips) => targets.extend(ips.iter().map(|ip| Target {
                    host: name.clone(),
                    ip: Some(ip),
                    port: self.mx_port,
                    tls: p.tls,
                    tlsa: p.tlsa.clone(),
                    report: p.report.clone(),
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

/// How an MX host without DANE is reached under the domain's MTA-STS policy: in `enforce`
/// mode only a host the policy names, over TLS whose certificate verifies for it; in
/// `testing` mode (or without a policy) as always, a mismatch only logged.
fn sts_mode(policy: Option<&Policy>, domain: &str, host: &str) -> Result<TlsMode, String> {
    let Some(policy) = policy else {
        return Ok(TlsMode::Opportunistic);
    };
    match (policy.allows(host), policy.mode == Mode::Enforce) {
        (true, true) => Ok(TlsMode::Verify),
        (false, true) => Err(format!(
            "{host} does not match the MTA-STS policy of {domain}"
        )),
        (allowed, false) => {
            if !allowed {
                tracing::info!(
                    domain,
                    host,
                    "MX host outside the MTA-STS policy (testing mode: used anyway)"
                );
            }
            Ok(TlsMode::Opportunistic)
        }
    }
}

/// The TXT records at `name`, each one string (its parts joined, RFC 7208 §3.3).
pub(super) async fn txt_records(
    resolver: &TokioResolver,
    name: &str,
) -> Result<Vec<String>, hickory_resolver::ResolveError> {
    let txt = resolver.txt_lookup(name).await?;
    Ok(txt
        .iter()
        .map(|t| {
            let parts: Vec<u8> = t
                .txt_data()
                .iter()
                .flat_map(|p| p.iter().copied())
                .collect();
            String::from_utf8_lossy(&parts).into_owned()
        })
        .collect())
}

/// Whether the lookup found the name without MX records (NODATA, RFC 5321 §5.1: use the
/// domain's own address) — not a SERVFAIL or REFUSED, which hickory also reports as "no
/// records" and which mean "try later" (a validating resolver's answer for a bogus zone).
fn no_data(e: &hickory_resolver::ResolveError) -> bool {
    use hickory_resolver::proto::op::ResponseCode;
    use hickory_resolver::proto::ProtoErrorKind;
    e.proto().is_some_and(|p| {
        matches!(
            p.kind(),
            ProtoErrorKind::NoRecordsFound {
                response_code: ResponseCode::NoError,
                ..
            }
        )
    })
}

/// Why an MX lookup failed, in words (hickory reports a SERVFAIL as "no records found").
fn lookup_failed(domain: &str, e: &hickory_resolver::ResolveError) -> String {
    use hickory_resolver::proto::ProtoErrorKind;
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
            format!("MX lookup of {domain} failed: {response_code} (try later)")
        }
        _ => format!("MX lookup of {domain} failed: {e}"),
    }
}

/// A resolver that asks `server` only (UDP, then TCP for long answers).
fn resolver_for(server: SocketAddr) -> TokioResolver {
    let mut config = ResolverConfig::new();
    config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
    config.add_name_server(NameServerConfig::new(server, Protocol::Tcp));
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).build()
}

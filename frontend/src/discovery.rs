//! Back-end discovery: which addresses the configured back-end entries stand for now.
//!
//! One job: turn `--backend` entries into call targets. An IP entry is one target. A name
//! entry (`bridgehead-backend:7000`, a Kubernetes headless Service) stands for every address
//! it resolves to, so calls spread over all back-end pods instead of riding one pinned
//! HTTP/2 connection; it is resolved again periodically. Invariants: a failed or empty
//! lookup never empties the set — the entry keeps its previous targets, or the name itself
//! (resolved again when connecting) before the first success; targets come out sorted and
//! without duplicates, so an unchanged answer gives an unchanged set. No tonic here.
use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// One `--backend` entry: `host:port`, optionally with `http://` or `https://`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendEntry {
    /// The scheme given, if any.
    pub scheme: Option<String>,
    /// A DNS name or an IP literal (without brackets); also the TLS server name.
    pub host: String,
    pub port: u16,
}

/// Where calls for one entry go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub entry: BackendEntry,
    /// A resolved address; `None`: connect by name.
    pub addr: Option<SocketAddr>,
}

impl BackendEntry {
    /// Parses `host:port`, `[v6]:port` or a `http(s)://` URL of that form.
    pub fn parse(s: &str) -> Result<BackendEntry, String> {
        let (scheme, rest) = match s.split_once("://") {
            Some((sc, rest)) if sc == "http" || sc == "https" => (Some(sc.to_string()), rest),
            Some((sc, _)) => return Err(format!("unknown scheme {sc:?} (use http or https)")),
            None => (None, s),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected host:port"))?;
        let port = port
            .parse()
            .map_err(|_| format!("{s:?}: {port:?} is not a port number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{s:?}: the host is missing"));
        }
        Ok(BackendEntry {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// The IP address, when the host is a literal.
    pub fn literal(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

/// Targets before any lookup: literals as they are, names to be resolved when connecting.
pub fn initial(entries: &[BackendEntry]) -> Vec<Target> {
    entries
        .iter()
        .map(|e| Target {
            entry: e.clone(),
            addr: e.literal(),
        })
        .collect()
}

/// Whether any entry is a name, i.e. whether refreshing can change anything.
pub fn has_names(entries: &[BackendEntry]) -> bool {
    entries.iter().any(|e| e.literal().is_none())
}

/// Resolves every name entry with `lookup`; see the module invariants.
pub async fn refresh<F, Fut>(
    entries: &[BackendEntry],
    previous: &[Target],
    lookup: F,
) -> Vec<Target>
where
    F: Fn(String, u16) -> Fut,
    Fut: Future<Output = io::Result<Vec<SocketAddr>>>,
{
    let mut out = BTreeSet::new();
    for e in entries {
        if let Some(addr) = e.literal() {
            out.insert(Target {
                entry: e.clone(),
                addr: Some(addr),
            });
            continue;
        }
        match lookup(e.host.clone(), e.port).await {
            Ok(addrs) if !addrs.is_empty() => {
                out.extend(addrs.into_iter().map(|a| Target {
                    entry: e.clone(),
                    addr: Some(a),
                }));
            }
            result => {
                if let Err(err) = result {
                    tracing::warn!(host = %e.host, error = %err, "back-end name lookup failed; keeping the known addresses");
                }
                let kept: Vec<Target> =
                    previous.iter().filter(|t| &t.entry == e).cloned().collect();
                if kept.is_empty() {
                    out.insert(Target {
                        entry: e.clone(),
                        addr: None,
                    });
                }
                out.extend(kept);
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn entry(s: &str) -> BackendEntry {
        BackendEntry::parse(s).unwrap()
    }

    fn addrs(v: &[&str]) -> Vec<SocketAddr> {
        v.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn resolved(t: &[Target]) -> Vec<Option<String>> {
        t.iter().map(|t| t.addr.map(|a| a.to_string())).collect()
    }

    #[test]
    fn entries_parse_with_and_without_scheme() {
        assert_eq!(entry("backend:7000").host, "backend");
        assert_eq!(
            entry("https://backend:7000/").scheme.as_deref(),
            Some("https")
        );
        assert_eq!(
            entry("[::1]:7000").literal(),
            Some("[::1]:7000".parse().unwrap())
        );
        assert_eq!(
            entry("10.0.0.5:7000").literal(),
            Some("10.0.0.5:7000".parse().unwrap())
        );
        assert!(BackendEntry::parse("backend")
            .unwrap_err()
            .contains("host:port"));
        assert!(BackendEntry::parse("backend:x")
            .unwrap_err()
            .contains("port number"));
        assert!(BackendEntry::parse("ftp://b:1")
            .unwrap_err()
            .contains("scheme"));
        assert!(BackendEntry::parse(":7000").unwrap_err().contains("host"));
    }

    #[tokio::test]
    async fn a_name_stands_for_every_address_and_follows_changes() {
        let entries = vec![entry("10.9.9.9:7000"), entry("backend:7000")];
        let answers = Mutex::new(HashMap::from([(
            "backend".to_string(),
            Ok(addrs(&["10.0.0.2:7000", "10.0.0.1:7000", "10.0.0.2:7000"])),
        )]));
        let lookup = |host: String, _port: u16| {
            let a = answers.lock().unwrap().remove(&host);
            async move { a.unwrap_or_else(|| Err(io::Error::other("no answer"))) }
        };
        let start = initial(&entries);
        assert_eq!(
            resolved(&start),
            vec![Some("10.9.9.9:7000".into()), None],
            "before a lookup, the name is dialled as it is"
        );
        let first = refresh(&entries, &start, &lookup).await;
        let want = vec![
            Some("10.9.9.9:7000".to_string()),
            Some("10.0.0.1:7000".into()),
            Some("10.0.0.2:7000".into()),
        ];
        assert_eq!(resolved(&first), want, "sorted by entry, no duplicates");
        // The lookup fails: the known addresses stay.
        let failed = refresh(&entries, &first, &lookup).await;
        assert_eq!(failed, first);
        // A pod went away, another came.
        answers.lock().unwrap().insert(
            "backend".into(),
            Ok(addrs(&["10.0.0.3:7000", "10.0.0.2:7000"])),
        );
        let moved = refresh(&entries, &failed, &lookup).await;
        assert_eq!(
            resolved(&moved),
            vec![
                Some("10.9.9.9:7000".to_string()),
                Some("10.0.0.2:7000".into()),
                Some("10.0.0.3:7000".into())
            ]
        );
        // An empty answer (no ready pods) keeps the last ones too.
        answers.lock().unwrap().insert("backend".into(), Ok(vec![]));
        assert_eq!(refresh(&entries, &moved, &lookup).await, moved);
    }

    #[tokio::test]
    async fn a_name_never_resolved_is_still_dialled_by_name() {
        let entries = vec![entry("backend:7000")];
        let lookup = |_h: String, _p: u16| async { Err(io::Error::other("NXDOMAIN")) };
        let t = refresh(&entries, &initial(&entries), lookup).await;
        assert_eq!(resolved(&t), vec![None]);
        assert_eq!(t[0].entry.host, "backend");
    }
}

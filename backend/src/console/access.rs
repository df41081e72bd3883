//! Who may see and change what in the console (pure).
//!
//! Rules: an administrator sees and changes everything; a read-only operator sees
//! everything and changes nothing; a domain administrator sees and changes only the
//! addresses, queue entries, messages, connectors and keys of their domain, and nothing of
//! the cluster's own settings (routes, operators).

/// An operator's role, as stored (`admin`, `readonly`, `domain:<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Admin,
    ReadOnly,
    Domain(String),
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "readonly" => Some(Role::ReadOnly),
            _ => s
                .strip_prefix("domain:")
                .filter(|d| !d.is_empty())
                .map(|d| Role::Domain(d.to_string())),
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Role::Admin => "admin".into(),
            Role::ReadOnly => "readonly".into(),
            Role::Domain(d) => format!("domain:{d}"),
        }
    }

    /// May change anything at all.
    pub fn writes(&self) -> bool {
        !matches!(self, Role::ReadOnly)
    }

    /// May change the cluster's own settings (routes, operators, domains themselves).
    pub fn is_admin(&self) -> bool {
        matches!(self, Role::Admin)
    }

    /// The one domain this operator is held to, if any.
    pub fn domain(&self) -> Option<&str> {
        match self {
            Role::Domain(d) => Some(d),
            _ => None,
        }
    }

    /// May see things of `domain`.
    pub fn sees_domain(&self, domain: &str) -> bool {
        self.domain().is_none_or(|d| d.eq_ignore_ascii_case(domain))
    }

    /// May see the address (its domain's part).
    pub fn sees_address(&self, address: &str) -> bool {
        match self.domain() {
            None => true,
            Some(_) => address
                .rsplit_once('@')
                .is_some_and(|(_, d)| self.sees_domain(d)),
        }
    }

    /// May change the address.
    pub fn changes_address(&self, address: &str) -> bool {
        self.writes() && self.sees_address(address)
    }

    /// The domain filter a listing must use: the operator's own, or what was asked for.
    pub fn filter<'a>(&'a self, asked: &'a str) -> &'a str {
        self.domain().unwrap_or(asked)
    }
}

/// A network (CIDR) of trusted reverse proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: std::net::IpAddr,
    bits: u8,
}

impl Network {
    /// `10.0.0.0/8`, `fd00::/8`, or a single address.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a.parse().ok()?, Some(b.parse::<u8>().ok()?)),
            None => (text.trim().parse().ok()?, None),
        };
        let max = if matches!(addr, std::net::IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Network { base: addr, bits })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let keep = |len: u32| -> u128 {
            match self.bits {
                0 => 0,
                b => u128::MAX << (len - u32::from(b)),
            }
        };
        match (self.base, ip) {
            (V4(b), V4(i)) => {
                let m = keep(32) as u32;
                u32::from(b) & m == u32::from(i) & m
            }
            (V6(b), V6(i)) => u128::from(b) & keep(128) == u128::from(i) & keep(128),
            _ => false,
        }
    }
}

/// The client a request stands for: the peer, or — when the peer is a trusted proxy — the
/// last address of its `X-Forwarded-For` (what that proxy saw).
pub fn client(
    peer: std::net::IpAddr,
    forwarded: Option<&str>,
    proxies: &[Network],
) -> std::net::IpAddr {
    if !proxies.iter().any(|n| n.contains(peer)) {
        return peer;
    }
    forwarded
        .and_then(|f| f.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::{client, Network, Role};

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let nets: Vec<Network> = ["10.0.0.0/8", "fd00::/8"]
            .iter()
            .map(|n| Network::parse(n).unwrap())
            .collect();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            client(ip("10.1.2.3"), Some("6.6.6.6, 192.0.2.9"), &nets),
            ip("192.0.2.9")
        );
        assert_eq!(
            client(ip("fd00::1"), Some("2001:db8::7"), &nets),
            ip("2001:db8::7")
        );
        assert_eq!(
            client(ip("192.0.2.1"), Some("10.9.9.9"), &nets),
            ip("192.0.2.1"),
            "untrusted peer"
        );
        assert_eq!(
            client(ip("10.1.2.3"), Some("garbage"), &nets),
            ip("10.1.2.3")
        );
        assert_eq!(client(ip("10.1.2.3"), None, &nets), ip("10.1.2.3"));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Network::parse("192.0.2.7")
            .unwrap()
            .contains(ip("192.0.2.7")));
        assert_eq!(Network::parse("10.0.0.0/33"), None);
        assert_eq!(Network::parse("nonsense"), None);
    }

    #[test]
    fn a_domain_administrator_is_held_to_the_domain() {
        let r = Role::parse("domain:a.test").unwrap();
        assert!(r.sees_address("x@a.test") && r.changes_address("X@A.TEST"));
        assert!(!r.sees_address("x@b.test") && !r.changes_address("x@b.test"));
        assert!(!r.sees_address("x@evil.test@a.test.evil"));
        assert!(!r.sees_address("no-at-sign"));
        assert_eq!(r.filter("b.test"), "a.test");
        assert!(!r.is_admin() && r.writes());
    }

    #[test]
    fn roles_read_and_write_as_named() {
        let ro = Role::parse("readonly").unwrap();
        assert!(ro.sees_address("x@b.test") && !ro.changes_address("x@b.test"));
        assert_eq!(ro.filter("b.test"), "b.test");
        assert!(Role::parse("admin").unwrap().is_admin());
        assert_eq!(Role::parse("domain:"), None);
        assert_eq!(Role::parse("root"), None);
        assert_eq!(
            Role::parse("domain:a.test").unwrap().as_string(),
            "domain:a.test"
        );
    }
}

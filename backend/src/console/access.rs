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

#[cfg(test)]
mod tests {
    use super::Role;

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

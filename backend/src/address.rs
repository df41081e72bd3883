//! Mail addresses as the store keys them: `local@domain`, lower-cased.
//!
//! One job: turn user input into a canonical address, or say clearly what is wrong.
//! Invariants: a parsed address has exactly one `@`, a non-empty local part of at most 64
//! octets (RFC 5321 §4.5.3.1.1) made of dot-atom characters only (no quoting, no `%`, `!`,
//! `@` or `:` — the forms used for relay tricks never name a local mailbox), and a domain of
//! at most 255 octets made of LDH labels (RFC 1035/5321).
//!
//! Internationalised addresses (RFC 6531/6532): a local part may also hold UTF-8 characters
//! other than controls and spaces; it is kept in Unicode NFC, lower-cased. A domain given in
//! U-labels is kept as its A-labels (IDNA/UTS 46, `xn--…`), so `jürgen@bücher.example` and
//! `JÜRGEN@xn--bcher-kva.example` are one address. Whether a session may use such an
//! address at all (SMTPUTF8) is the protocol's business, not this module's.
use std::fmt;

/// Why input is not an address we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {input:?}: {why}")]
pub struct AddressError {
    pub input: String,
    pub why: &'static str,
}

/// The longest SRS local part taken (a whole address inside, with its hash and day).
pub const MAX_SRS_LOCAL: usize = 320;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: String,
}

impl Address {
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let bad = |why| AddressError {
            input: input.to_string(),
            why,
        };
        let s = input.trim();
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("missing @"))?;
        if local.is_empty() {
            return Err(bad("empty local part"));
        }
        let local = canonical_local(local);
        // RFC 5321 §4.5.3.1.1 limits a local part to 64 octets; SRS addresses (bounces to
        // forwarded mail) carry a whole address inside and are allowed more, as every SRS
        // forwarder's own MTA does.
        let limit = match local.starts_with("srs0=") || local.starts_with("srs1=") {
            true => MAX_SRS_LOCAL,
            false => 64,
        };
        if local.len() > limit {
            return Err(bad("local part longer than 64 octets"));
        }
        if !local.chars().all(is_local_char) || local.starts_with('.') || local.ends_with('.') {
            return Err(bad("local part has characters that are not allowed"));
        }
        if local.contains("..") {
            return Err(bad("local part has two dots in a row"));
        }
        Ok(Address {
            local,
            domain: parse_domain(domain).map_err(bad)?,
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether the address needs SMTPUTF8 to be sent (a non-ASCII local part; the domain is
    /// always kept in A-labels).
    pub fn is_international(&self) -> bool {
        !self.local.is_ascii()
    }
}

/// A local part as the store keys it: lower-cased, in Unicode NFC when not ASCII.
fn canonical_local(local: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if local.is_ascii() {
        local.to_ascii_lowercase()
    } else {
        local
            .nfc()
            .collect::<String>()
            .to_lowercase()
            .nfc()
            .collect()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Canonical (lower-case, A-label) domain name, or why it is not one.
pub fn parse_domain(input: &str) -> Result<String, &'static str> {
    let d = input.trim();
    if !d.is_ascii() {
        let ascii = idna::domain_to_ascii_strict(d)
            .map_err(|_| "domain is not a valid internationalised domain name")?;
        return parse_ascii_domain(&ascii);
    }
    parse_ascii_domain(d)
}

fn parse_ascii_domain(d: &str) -> Result<String, &'static str> {
    if d.is_empty() {
        return Err("empty domain");
    }
    if d.len() > 255 {
        return Err("domain longer than 255 octets");
    }
    for label in d.split('.') {
        if label.is_empty() {
            return Err("domain has an empty label");
        }
        if label.len() > 63 {
            return Err("domain label longer than 63 octets");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err("domain has characters that are not allowed");
        }
    }
    Ok(d.to_ascii_lowercase())
}

/// RFC 5322 atext plus the dot, less `!` and `%` (bang paths and the percent hack); beyond
/// ASCII, RFC 6532's UTF8-non-ascii less controls, spaces and the replacement character.
fn is_local_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "#$&'*+-/=?^_`{|}~.".contains(c)
    } else {
        !c.is_control() && !c.is_whitespace() && c != '\u{fffd}'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        let a = Address::parse(" Alice.Smith@Example.COM ").unwrap();
        assert_eq!(a.to_string(), "alice.smith@example.com");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn refuses_tricky_forms() {
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "a@b@example.com",
            "\"a@b\"@example.com",
            "u%ext@example.com",
            "ext!u@example.com",
            "@relay:u@example.com",
            "u@[192.0.2.1]",
            "u@example.com.",
            ".u@example.com",
            "u..v@example.com",
            "u@-bad.com",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Address::parse(&long).is_err());
    }

    #[test]
    fn international_addresses_are_normalised() {
        let a = Address::parse("JÜRGEN@Bücher.Example").unwrap();
        assert_eq!(a.to_string(), "jürgen@xn--bcher-kva.example");
        assert!(a.is_international());
        // NFD input (u + combining diaeresis) and the A-label domain name the same address.
        let nfd = Address::parse("ju\u{308}rgen@xn--bcher-kva.example").unwrap();
        assert_eq!(nfd, a);
        assert!(!Address::parse("alice@bücher.example")
            .unwrap()
            .is_international());
        for bad in [
            "j\u{fffd}rgen@example.com",
            "a\u{0}b@example.com",
            "a\u{2003}b@example.com",
            "a@bü..example",
            "a@-bü.example",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "ü".repeat(33));
        assert!(Address::parse(&long).is_err(), "64 octets, not characters");
        let srs = format!("SRS0=abcd=AB=example.org={}@fwd.test", "a".repeat(100));
        assert!(Address::parse(&srs).is_ok(), "SRS addresses may be longer");
        let srs = format!("SRS0=abcd=AB=example.org={}@fwd.test", "a".repeat(400));
        assert!(Address::parse(&srs).is_err());
    }
}

//! The relay policy, in one place (pure): may a recipient be accepted in this session?
//!
//! Rules: an address must parse strictly (`address::Address`: no percent hack, bang path,
//! quoted `@`, IP literal, trailing dot, second `@`); then a local domain's address must
//! name a mailbox (else 550, never accept-then-bounce), which must have room; an outside
//! address is accepted only from an authenticated session. An unauthenticated session gets
//! "relay denied" for every address that is not a valid local one, whatever its form.
use crate::address::Address;
use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Local { account_id: i64, address: String },
    Relay { address: String },
    UnknownLocal,
    RelayDenied,
    OverQuota,
    BadSyntax(String),
}

/// What the store knows about a parsed recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub local_domain: bool,
    /// The mailbox it delivers to, and whether it is over quota with this message.
    pub mailbox: Option<(i64, String, bool)>,
}

pub fn decide(
    parsed: &Result<Address, StoreError>,
    facts: Option<&Facts>,
    authenticated: bool,
) -> Verdict {
    let (addr, facts) = match (parsed, facts) {
        (Ok(a), Some(f)) => (a, f),
        (Err(_), _) | (_, None) if !authenticated => return Verdict::RelayDenied,
        (Err(StoreError::InvalidAddress(_, why)), _) => return Verdict::BadSyntax(why.to_string()),
        (Err(e), _) => return Verdict::BadSyntax(e.to_string()),
        (Ok(_), None) => return Verdict::BadSyntax("no facts".into()),
    };
    match (&facts.mailbox, facts.local_domain) {
        (Some((_, _, true)), _) => Verdict::OverQuota,
        (Some((id, mailbox, false)), _) => Verdict::Local {
            account_id: *id,
            address: mailbox.clone(),
        },
        (None, true) => Verdict::UnknownLocal,
        (None, false) if authenticated => Verdict::Relay {
            address: addr.to_string(),
        },
        (None, false) => Verdict::RelayDenied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(local: bool, mailbox: Option<bool>) -> Facts {
        Facts {
            local_domain: local,
            mailbox: mailbox.map(|full| (7, "alice@local.test".to_string(), full)),
        }
    }

    #[test]
    fn unauthenticated_sessions_reach_local_mailboxes_only() {
        let ok = Address::parse("Alice@Local.Test");
        assert_eq!(
            decide(&ok, Some(&facts(true, Some(false))), false),
            Verdict::Local {
                account_id: 7,
                address: "alice@local.test".into()
            }
        );
        assert_eq!(
            decide(&ok, Some(&facts(true, None)), false),
            Verdict::UnknownLocal
        );
        assert_eq!(
            decide(&ok, Some(&facts(true, Some(true))), false),
            Verdict::OverQuota
        );
        let ext = Address::parse("bob@outside.example");
        assert_eq!(
            decide(&ext, Some(&facts(false, None)), false),
            Verdict::RelayDenied
        );
        assert_eq!(
            decide(&ext, Some(&facts(false, None)), true),
            Verdict::Relay {
                address: "bob@outside.example".into()
            }
        );
    }

    #[test]
    fn tricky_forms_never_relay_unauthenticated() {
        for form in [
            "u%outside.example@local.test",
            "outside.example!u@local.test",
            "a@b@local.test",
            "u@[192.0.2.1]",
            "u@local.test.",
            "\"u@outside.example\"@local.test",
        ] {
            let parsed = Address::parse(form);
            assert_eq!(decide(&parsed, None, false), Verdict::RelayDenied, "{form}");
            assert!(
                matches!(decide(&parsed, None, true), Verdict::BadSyntax(_)),
                "{form}"
            );
        }
    }
}

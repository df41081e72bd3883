//! The relay policy, in one place (pure): may a recipient be accepted in this session, and as
//! what?
//!
//! Rules: an address must parse strictly (`address::Address`: no percent hack, bang path,
//! quoted `@`, IP literal, trailing dot, second `@`). Outside domains: only from an
//! authenticated session. Relay domains: everything goes to the domain's next hop. Local
//! names: a mailbox (with room), a group (if its sender policy allows this sender), or a
//! contact (forwarded outside). Unknown names: the catch-all if there is one; in a shared
//! domain, forwarded to the other system — unless the mail comes from that system, which would
//! be a loop; otherwise refused at RCPT (550), never accepted and bounced later. An
//! unauthenticated session gets "relay denied" for every address that is not valid here.
use crate::address::{Address, AddressError};
use crate::mailauth::policy::DomainAuth;
use crate::names::Entry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Local {
        account_id: i64,
        address: String,
    },
    Group {
        id: i64,
        address: String,
    },
    /// To the next hop as it is: an outside address of an authenticated sender, or a relay or
    /// shared domain's address.
    Relay {
        address: String,
    },
    /// A contact: forward to its outside address.
    Forward {
        address: String,
        external: String,
    },
    UnknownLocal,
    RelayDenied,
    OverQuota,
    /// The group's sender policy refuses this sender.
    SenderRefused(String),
    BadSyntax(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainKind {
    Authoritative,
    Shared,
    Relay,
}

/// What the directory knows about a parsed recipient and the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `None`: not a domain of ours.
    pub domain: Option<DomainKind>,
    pub entry: Entry,
    /// The domain's catch-all mailbox (id, address), if it has one.
    pub catch_all: Option<(i64, String)>,
    /// The client is the domain's next hop (the other system of a shared domain).
    pub from_next_hop: bool,
    /// For a group with the "members" policy: the sender is a member.
    pub sender_is_member: bool,
    /// The name is none of ours but an SRS address we made (it verified): the address it
    /// stands for, where a bounce to it goes on to.
    pub srs_original: Option<String>,
    /// What the recipient's domain asks of the checks of unauthenticated mail.
    pub auth: DomainAuth,
}

impl Facts {
    pub fn outside() -> Facts {
        Facts {
            domain: None,
            entry: Entry::None,
            catch_all: None,
            from_next_hop: false,
            sender_is_member: false,
            srs_original: None,
            auth: DomainAuth::default(),
        }
    }
}

pub fn decide(
    parsed: &Result<Address, AddressError>,
    facts: Option<&Facts>,
    authenticated: bool,
) -> Verdict {
    let (addr, facts) = match (parsed, facts) {
        (Ok(a), Some(f)) => (a, f),
        (Err(_), _) | (_, None) if !authenticated => return Verdict::RelayDenied,
        (Err(e), _) => return Verdict::BadSyntax(e.why.to_string()),
        (Ok(_), None) => return Verdict::BadSyntax("no facts".into()),
    };
    let address = addr.to_string();
    let kind = match facts.domain {
        None if authenticated => return Verdict::Relay { address },
        None => return Verdict::RelayDenied,
        Some(DomainKind::Relay) => return Verdict::Relay { address },
        Some(kind) => kind,
    };
    match &facts.entry {
        Entry::Mailbox(_, _, true) => Verdict::OverQuota,
        Entry::Mailbox(id, mailbox, false) => Verdict::Local {
            account_id: *id,
            address: mailbox.clone(),
        },
        Entry::Group { id, policy } => match policy.as_str() {
            "authenticated" if !authenticated => Verdict::SenderRefused(address),
            "members" if !facts.sender_is_member => Verdict::SenderRefused(address),
            _ => Verdict::Group { id: *id, address },
        },
        Entry::Contact { external } => Verdict::Forward {
            address,
            external: external.clone(),
        },
        Entry::None if facts.srs_original.is_some() => Verdict::Forward {
            address,
            external: facts.srs_original.clone().unwrap_or_default(),
        },
        Entry::None => match (&facts.catch_all, kind) {
            (Some((id, mailbox)), DomainKind::Authoritative) => Verdict::Local {
                account_id: *id,
                address: mailbox.clone(),
            },
            (_, DomainKind::Shared) if !facts.from_next_hop => Verdict::Relay { address },
            _ => Verdict::UnknownLocal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(kind: DomainKind, entry: Entry) -> Facts {
        Facts {
            domain: Some(kind),
            entry,
            ..Facts::outside()
        }
    }

    fn mailbox(full: bool) -> Entry {
        Entry::Mailbox(7, "alice@local.test".into(), full)
    }

    #[test]
    fn unauthenticated_sessions_reach_local_names_only() {
        let ok = Address::parse("Alice@Local.Test");
        let auth = DomainKind::Authoritative;
        assert_eq!(
            decide(&ok, Some(&local(auth, mailbox(false))), false),
            Verdict::Local {
                account_id: 7,
                address: "alice@local.test".into()
            }
        );
        assert_eq!(
            decide(&ok, Some(&local(auth, Entry::None)), false),
            Verdict::UnknownLocal
        );
        assert_eq!(
            decide(&ok, Some(&local(auth, mailbox(true))), false),
            Verdict::OverQuota
        );
        let ext = Address::parse("bob@outside.example");
        assert_eq!(
            decide(&ext, Some(&Facts::outside()), false),
            Verdict::RelayDenied
        );
        assert_eq!(
            decide(&ext, Some(&Facts::outside()), true),
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

    #[test]
    fn domain_kinds_catch_all_groups_and_contacts() {
        let a = Address::parse("nobody@local.test");
        let mut shared = local(DomainKind::Shared, Entry::None);
        assert_eq!(
            decide(&a, Some(&shared), false),
            Verdict::Relay {
                address: "nobody@local.test".into()
            }
        );
        shared.from_next_hop = true;
        assert_eq!(
            decide(&a, Some(&shared), false),
            Verdict::UnknownLocal,
            "no loop back to the other system"
        );
        let relay = local(DomainKind::Relay, Entry::None);
        assert_eq!(
            decide(&a, Some(&relay), false),
            Verdict::Relay {
                address: "nobody@local.test".into()
            }
        );
        let mut catch = local(DomainKind::Authoritative, Entry::None);
        catch.catch_all = Some((9, "catch@local.test".into()));
        assert_eq!(
            decide(&a, Some(&catch), false),
            Verdict::Local {
                account_id: 9,
                address: "catch@local.test".into()
            }
        );

        let g = |policy: &str| {
            local(
                DomainKind::Authoritative,
                Entry::Group {
                    id: 3,
                    policy: policy.into(),
                },
            )
        };
        assert!(matches!(
            decide(&a, Some(&g("anyone")), false),
            Verdict::Group { id: 3, .. }
        ));
        assert!(matches!(
            decide(&a, Some(&g("authenticated")), false),
            Verdict::SenderRefused(_)
        ));
        assert!(matches!(
            decide(&a, Some(&g("authenticated")), true),
            Verdict::Group { .. }
        ));
        assert!(matches!(
            decide(&a, Some(&g("members")), true),
            Verdict::SenderRefused(_)
        ));
        let mut member = g("members");
        member.sender_is_member = true;
        assert!(matches!(
            decide(&a, Some(&member), false),
            Verdict::Group { .. }
        ));
        let contact = local(
            DomainKind::Authoritative,
            Entry::Contact {
                external: "x@outside.example".into(),
            },
        );
        assert!(matches!(
            decide(&a, Some(&contact), false),
            Verdict::Forward { .. }
        ));
    }
}

//! Address parsing and the relay decision: no panic, and no unauthenticated session ever
//! relays to a domain that is not ours, whatever the address looks like.
use bridgehead_backend::address::Address;
use bridgehead_backend::names::Entry;
use bridgehead_backend::relay::{decide, DomainKind, Facts, Verdict};

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let parsed = Address::parse(&text);
    if let Ok(a) = &parsed {
        let again = Address::parse(&a.to_string()).expect("a canonical address parses again");
        assert_eq!(&again, a);
        assert!(!a.local().contains(['@', '%', '!', '"', ':']));
    }
    let domain = match flags % 4 {
        0 => None,
        1 => Some(DomainKind::Authoritative),
        2 => Some(DomainKind::Shared),
        _ => Some(DomainKind::Relay),
    };
    let facts = Facts {
        domain,
        entry: Entry::None,
        catch_all: None,
        from_next_hop: flags & 16 != 0,
        sender_is_member: false,
        ..Facts::outside()
    };
    let verdict = decide(&parsed, Some(&facts), false);
    if domain.is_none() {
        assert_eq!(
            verdict,
            Verdict::RelayDenied,
            "unauthenticated relay to an outside domain"
        );
    }
}

//! Directory facts for the relay policy, and group expansion.
//!
//! Group expansion follows nested groups with cycle detection, yields one copy per final
//! recipient (mailboxes by account, outside addresses by address), and stops at a fixed size
//! so a hostile directory cannot make a message fan out without bound.
use crate::address::Address;
use crate::mailauth::srs::{self, Srs};
use crate::names::Entry;
use crate::relay::{DomainKind, Facts};
use crate::store::Result;
use crate::store::Store;
use std::collections::HashSet;

/// Most final recipients one group may expand to.
pub const MAX_EXPANSION: usize = 10_000;

/// What one recipient expands to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    pub mailboxes: Vec<(i64, String)>,
    pub outside: Vec<String>,
    /// Every address met on the way (members, nested groups, mailboxes).
    pub seen: HashSet<String>,
}

/// Who a recipient is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// MAIL FROM, for group sender policies.
    pub sender: &'a str,
    /// The SMTP client's address.
    pub client: &'a str,
    /// The session authenticated: a user of ours, never the other system of a shared domain
    /// (even when both reach us from one address, behind one NAT).
    pub authenticated: bool,
}

/// Gathers what `relay::decide` needs about `addr` for a message of `size` octets; `srs`
/// reverses our SRS addresses (bounces to forwarded mail).
pub async fn facts(
    store: &Store,
    addr: &Address,
    size: u64,
    asker: Asker<'_>,
    srs: &Srs,
) -> Result<Facts> {
    let Some((settings, entry)) = store.domain_and_entry(addr, size).await? else {
        return Ok(Facts::outside());
    };
    let kind = match settings.kind.as_str() {
        "shared" => DomainKind::Shared,
        "relay" => DomainKind::Relay,
        _ => DomainKind::Authoritative,
    };
    let mut facts = Facts {
        domain: Some(kind),
        entry,
        auth: settings.auth,
        ..Facts::outside()
    };
    match (&facts.entry, kind) {
        (Entry::None, _) if srs::looks_like_srs(addr.local()) => {
            facts.srs_original = srs_original(srs, addr);
        }
        (Entry::None, DomainKind::Authoritative) => {
            if let Some(c) = settings
                .catch_all
                .as_deref()
                .and_then(|c| Address::parse(c).ok())
            {
                if let Entry::Mailbox(id, mailbox, _) = store.lookup(&c, size).await? {
                    facts.catch_all = Some((id, mailbox));
                }
            }
        }
        (Entry::None, DomainKind::Shared) if !asker.authenticated => {
            facts.from_next_hop = from_next_hop(store, addr.domain(), asker.client).await?;
        }
        (Entry::Group { id, policy }, _) if policy == "members" => {
            let expansion = expand_group(store, *id).await?;
            let sender = asker.sender.to_ascii_lowercase();
            facts.sender_is_member = expansion.seen.contains(&sender);
        }
        _ => {}
    }
    Ok(facts)
}

/// The address an SRS address of ours stands for, when it verifies and is an address.
fn srs_original(srs: &Srs, addr: &Address) -> Option<String> {
    match srs.reverse(addr.local(), srs::today()) {
        Ok(original) => Address::parse(&original).ok().map(|a| a.to_string()),
        Err(e) => {
            tracing::info!(address = %addr, error = %e, "SRS address refused");
            None
        }
    }
}

/// True when `client` is (one of the addresses of) the domain's next hop — or when the domain
/// has no next hop at all, so that an unknown name is refused rather than sent nowhere.
async fn from_next_hop(store: &Store, domain: &str, client: &str) -> Result<bool> {
    let Some(route) = store.route_for(domain).await? else {
        return Ok(true);
    };
    let Ok(client) = client.parse::<std::net::IpAddr>() else {
        return Ok(false);
    };
    let addrs = tokio::net::lookup_host((route.host.as_str(), route.port)).await;
    Ok(addrs
        .map(|mut a| a.any(|s| s.ip() == client))
        .unwrap_or(false))
}

/// The postmaster's address: the configured one, or postmaster@ the first domain. Mail to
/// the bare `Postmaster` (RFC 5321 §4.5.1: it MUST be accepted) and reports nobody else can
/// take go there.
pub async fn postmaster(store: &Store, configured: Option<&str>) -> Result<Option<String>> {
    if let Some(p) = configured {
        return Ok(Some(p.to_string()));
    }
    let domain = store.primary_domain().await?;
    Ok(domain.map(|d| format!("postmaster@{d}")))
}

/// `RCPT TO:<Postmaster>` with no domain (case-insensitive, RFC 5321 §4.1.1.3).
pub fn is_bare_postmaster(address: &str) -> bool {
    address.trim().eq_ignore_ascii_case("postmaster")
}

/// Expands a group to its final recipients.
pub async fn expand_group(store: &Store, group_id: i64) -> Result<Expansion> {
    let mut out = Expansion::default();
    let mut groups = HashSet::from([group_id]);
    let mut accounts = HashSet::new();
    let mut pending = store.group_members(group_id).await?;
    while let Some(member) = pending.pop() {
        if out.mailboxes.len() + out.outside.len() >= MAX_EXPANSION {
            tracing::warn!(
                group_id,
                "group expansion stopped at {MAX_EXPANSION} recipients"
            );
            break;
        }
        if !out.seen.insert(member.clone()) {
            continue;
        }
        let Ok(addr) = Address::parse(&member) else {
            continue;
        };
        match store.lookup(&addr, 0).await? {
            Entry::Mailbox(id, mailbox, _) => {
                out.seen.insert(mailbox.clone());
                if accounts.insert(id) {
                    out.mailboxes.push((id, mailbox));
                }
            }
            Entry::Group { id, .. } => {
                if groups.insert(id) {
                    pending.extend(store.group_members(id).await?);
                }
            }
            Entry::Contact { external } => push_outside(&mut out, external),
            Entry::None => match store.domain_settings(addr.domain()).await? {
                Some(s) if s.kind == "authoritative" => {
                    tracing::warn!(group_id, member, "group member does not exist; skipped");
                }
                _ => push_outside(&mut out, member),
            },
        }
    }
    Ok(out)
}

fn push_outside(out: &mut Expansion, address: String) {
    if !out.outside.contains(&address) {
        out.outside.push(address);
    }
}

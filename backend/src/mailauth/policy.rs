//! What a receiving domain asks of the checks of unauthenticated mail (`bridgehead admin
//! domain auth`), pure: whether they run at all, and how a DMARC failure is treated.
//!
//! Invariants: a message is judged once for all its recipients, so a message for several
//! domains gets the most lenient of their settings (a refusal would refuse it to every one of
//! them; a domain that wants no refusals must never lose mail to another's policy): checks
//! run when any recipient's domain wants them, and a domain without checks counts as
//! `report`. A name that is not a local domain's (mail relayed for an authenticated user is
//! never checked) asks for the defaults: checks on, the sender's policy enforced.

/// How a DMARC failure is treated for a domain's recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum DmarcMode {
    /// Only recorded in Authentication-Results: nothing refused, deferred or marked.
    Report,
    /// `p=reject` is treated as `p=quarantine`: delivered, marked; nothing refused or deferred.
    Quarantine,
    /// As the sender's policy says: `p=reject` refused (550), `p=quarantine` marked, a DNS
    /// failure deferred (451).
    #[default]
    Enforce,
}

impl DmarcMode {
    pub fn parse(s: &str) -> Option<DmarcMode> {
        match s {
            "report" => Some(DmarcMode::Report),
            "quarantine" => Some(DmarcMode::Quarantine),
            "enforce" => Some(DmarcMode::Enforce),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DmarcMode::Report => "report",
            DmarcMode::Quarantine => "quarantine",
            DmarcMode::Enforce => "enforce",
        }
    }
}

/// One domain's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainAuth {
    pub checks: bool,
    pub dmarc: DmarcMode,
}

impl Default for DomainAuth {
    fn default() -> Self {
        DomainAuth {
            checks: true,
            dmarc: DmarcMode::Enforce,
        }
    }
}

impl DomainAuth {
    /// The settings for a message whose recipients' domains have these: `None` when none of
    /// them wants checks.
    pub fn combine(all: impl IntoIterator<Item = DomainAuth>) -> Option<DmarcMode> {
        let mut checks = false;
        let mut mode = DmarcMode::Enforce;
        for d in all {
            checks |= d.checks;
            mode = mode.min(match d.checks {
                true => d.dmarc,
                false => DmarcMode::Report,
            });
        }
        checks.then_some(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(checks: bool, dmarc: DmarcMode) -> DomainAuth {
        DomainAuth { checks, dmarc }
    }

    #[test]
    fn the_most_lenient_setting_wins() {
        use DmarcMode::*;
        assert_eq!(DomainAuth::combine([DomainAuth::default()]), Some(Enforce));
        assert_eq!(
            DomainAuth::combine([d(true, Enforce), d(true, Quarantine)]),
            Some(Quarantine)
        );
        assert_eq!(
            DomainAuth::combine([d(true, Enforce), d(false, Enforce)]),
            Some(Report)
        );
        assert_eq!(DomainAuth::combine([d(false, Enforce)]), None);
        assert_eq!(DomainAuth::combine([]), None);
        for m in [Report, Quarantine, Enforce] {
            assert_eq!(DmarcMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(DmarcMode::parse("strict"), None);
    }
}

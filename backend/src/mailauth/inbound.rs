//! Checking mail that arrives from other MTAs: iprev and SPF (RFC 7208, the MAIL FROM and the
//! HELO identity) for the client, DKIM (RFC 6376; rsa-sha1 never valid, RFC 8301), ARC (RFC 8617, when the message has an ARC
//! set) and DMARC (RFC 7489) for the message, written as one Authentication-Results header
//! (RFC 8601). mail-auth does the checks; this file asks them in order, bounds their time, and
//! turns the outcome into a header and a verdict.
//!
//! Invariants: only unauthenticated mail is checked (a logged-in client's mail is ours to
//! sign, not to judge); a message is refused for good only when its author domain publishes
//! `p=reject` and DMARC fails outright; when DNS cannot say whether DMARC passes (temperror,
//! or the checks time out) the sender is told to try later (451 4.7.0), never refused for
//! good; a `p=quarantine` failure is delivered marked `X-Bridgehead-Spam: dmarc-quarantine`;
//! only a valid ARC chain last sealed by an operator-listed sealer overrides a DMARC failure;
//! a receiving domain may turn this down (`policy::DmarcMode`): only `enforce` ever refuses
//! or defers. A message we forward is ARC-sealed here, over the message as it arrived.
use super::dkim::SigningKey;
use super::policy::DmarcMode;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcOutput, DmarcResult,
    MessageAuthenticator,
};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// All checks of one message together end within this; what is unanswered then is temperror.
const CHECK_TIME: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("DNS resolver for mail authentication: {0}")]
    Resolver(String),
}

/// The header that marks a delivered message failing a `p=quarantine` policy.
pub const QUARANTINE_MARK: &str = "X-Bridgehead-Spam: dmarc-quarantine\r\n";

/// What the checks decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver, with these headers (Authentication-Results, and the quarantine mark when it
    /// applies; CRLF-terminated) on top.
    Deliver(String),
    /// Refuse for good (550 5.7.1) with this text.
    Reject(String),
    /// DNS could not tell: the sender should try later (451 4.7.0), with this text.
    Defer(String),
}

/// What a message's recipients ask of the checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// How a DMARC failure is treated (the recipients' domains' setting).
    pub dmarc: DmarcMode,
    /// The message is forwarded: seal it (ARC) with this key of the forwarding domain.
    pub seal_with: Option<&'a SigningKey>,
}

/// The verdict, and our ARC set when the message is delivered and was to be sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub arc_set: Option<Vec<u8>>,
}

/// The checks, with their resolver and the name they are reported under.
pub struct Checker {
    auth: MessageAuthenticator,
    hostname: String,
    /// ARC sealers (forwarders, mailing lists; lower-case domains) whose valid seal overrides
    /// a DMARC failure.
    trusted_sealers: Vec<String>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// The client as the front-end saw it, and the envelope sender.
pub struct Client<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    pub mail_from: &'a str,
}

impl Checker {
    /// Checks that ask `dns_server` (the system's resolvers when `None`), reporting as
    /// `hostname` (the authserv-id).
    pub fn new(
        dns_server: Option<SocketAddr>,
        hostname: &str,
        trusted_sealers: &[String],
    ) -> Result<Checker, InboundError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(4);
        opts.attempts = 2;
        let auth = match dns_server {
            Some(server) => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for c in &mut ns.connections {
                    c.port = server.port();
                }
                MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts)
            }
            None => MessageAuthenticator::new_system_conf(),
        }
        .map_err(|e| InboundError::Resolver(e.to_string()))?;
        Ok(Checker {
            auth,
            hostname: hostname.to_string(),
            trusted_sealers: trusted_sealers
                .iter()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        })
    }

    /// Checks one message (its content as received).
    pub async fn check(&self, message: &[u8], client: &Client<'_>, asked: Asked<'_>) -> Outcome {
        match tokio::time::timeout(CHECK_TIME, self.run(message, client, asked)).await {
            Ok(outcome) => outcome,
            Err(_) if asked.dmarc == DmarcMode::Enforce => Outcome {
                verdict: Verdict::Defer(
                    "Mail authentication checks timed out (DNS); try again later".into(),
                ),
                arc_set: None,
            },
            Err(_) => Outcome {
                verdict: Verdict::Deliver(format!(
                    "Authentication-Results: {}; none (checks timed out)\r\n",
                    self.hostname
                )),
                arc_set: None,
            },
        }
    }

    /// The lookups that need nothing but the client and the message run at once (a message's
    /// latency is its slowest DNS answer, not their sum); ARC and DMARC follow on their results.
    async fn run(&self, message: &[u8], client: &Client<'_>, asked: Asked<'_>) -> Outcome {
        let (host, sender) = (self.hostname.as_str(), client.mail_from);
        let parsed = AuthenticatedMessage::parse(message);
        let spf = match sender.is_empty() {
            true => SpfParameters::verify_ehlo(client.ip, client.helo, host),
            false => SpfParameters::verify_mail_from(client.ip, client.helo, host, sender),
        };
        let helo = async {
            let p = SpfParameters::verify_ehlo(client.ip, client.helo, host);
            match sender.is_empty() {
                true => None,
                false => Some(self.auth.verify_spf(p).await),
            }
        };
        let dkim = async {
            match &parsed {
                Some(m) => self.auth.verify_dkim(m).await,
                None => Vec::new(),
            }
        };
        let (iprev, spf, helo, dkim) = tokio::join!(
            self.auth.verify_iprev(client.ip),
            self.auth.verify_spf(spf),
            helo,
            dkim
        );
        let mut results = AuthenticationResults::new(host)
            .with_iprev_result(&iprev, client.ip)
            .with_spf_mailfrom_result(&spf, client.ip, sender, client.helo);
        if let Some(helo) = &helo {
            results = results.with_spf_ehlo_result(helo, client.ip, client.helo);
        }
        let Some(parsed) = &parsed else {
            let verdict = Verdict::Deliver(header(&results));
            return Outcome {
                verdict,
                arc_set: None,
            };
        };
        let mut dkim = super::weak::refuse_weak(&self.auth, dkim).await;
        super::weak::surface_malformed(parsed, &mut dkim);
        let from_domain = parsed.from().rsplit_once('@').map_or("", |(_, d)| d);
        results = results.with_dkim_results(&dkim, from_domain);
        let (results, arc, trusted_sealer) = self.arc(parsed, results, client.ip).await;
        let mail_from_domain = sender.rsplit_once('@').map_or(client.helo, |(_, d)| d);
        let dmarc = self
            .auth
            .verify_dmarc(DmarcParameters::new(parsed, &dkim, mail_from_domain, &spf))
            .await;
        let verdict = verdict(
            header(&results),
            &dmarc,
            trusted_sealer.as_deref(),
            asked.dmarc,
        );
        let arc_set = match (&verdict, asked.seal_with) {
            (Verdict::Deliver(_), Some(key)) => {
                let results = results.with_dmarc_result(&dmarc);
                super::seal::seal(parsed, &results, &arc, key).unwrap_or_else(|e| {
                    tracing::warn!(domain = key.domain, error = %e, "ARC sealing failed; forwarded unsealed");
                    None
                })
            }
            _ => None,
        };
        Outcome { verdict, arc_set }
    }

    /// ARC (RFC 8617), when the message has ARC headers: recorded in `results`; a valid chain
    /// last sealed by a trusted sealer overrides a DMARC failure (mail through a list or
    /// forwarder that broke SPF and DKIM). The chain is what our own seal continues.
    async fn arc<'m>(
        &self,
        parsed: &'m AuthenticatedMessage<'m>,
        mut results: AuthenticationResults<'m>,
        ip: IpAddr,
    ) -> (AuthenticationResults<'m>, ArcOutput<'m>, Option<String>) {
        if parsed.ams_headers.is_empty() && parsed.as_headers.is_empty() {
            return (results, ArcOutput::default(), None);
        }
        let arc = self.auth.verify_arc(parsed).await;
        results = results.with_arc_result(&arc, ip);
        let sealer = arc
            .sets()
            .last()
            .map(|s| s.seal.header.d.to_ascii_lowercase());
        let trusted = sealer
            .filter(|d| *arc.result() == DkimResult::Pass && self.trusted_sealers.contains(d));
        (results, arc, trusted)
    }
}

/// The verdict on a message from its DMARC outcome: `header` (Authentication-Results so far)
/// completed with the dmarc= result, or the refusal. A trusted ARC sealer forgives a failure;
/// the recipients' `mode` may turn the policy down.
fn verdict(
    header: String,
    dmarc: &DmarcOutput,
    trusted_sealer: Option<&str>,
    mode: DmarcMode,
) -> Verdict {
    let outcome = Dmarc::of(dmarc);
    let domain = dmarc.domain();
    let overridden = outcome == Dmarc::Fail && trusted_sealer.is_some();
    let enforce = mode == DmarcMode::Enforce;
    let policy = match dmarc.policy() {
        Policy::Reject if mode == DmarcMode::Quarantine => Policy::Quarantine,
        _ if mode == DmarcMode::Report => Policy::None,
        p => p,
    };
    match (outcome, policy) {
        (Dmarc::Fail, Policy::Reject) if !overridden && enforce => {
            return Verdict::Reject(format!(
                "Message rejected: it fails the DMARC policy of {domain}"
            ))
        }
        (Dmarc::TempError, _) if enforce => {
            return Verdict::Defer(format!(
                "DNS error checking the DMARC policy of {domain}; try again later"
            ))
        }
        _ => {}
    }
    let mut text = header;
    text.truncate(text.len() - 2);
    text.push_str(&outcome.clause(dmarc));
    if let (true, Some(sealer)) = (overridden, trusted_sealer) {
        text.push_str(&format!(
            " (policy overridden: trusted ARC sealer {sealer})"
        ));
    }
    text.push_str("\r\n");
    if mode != DmarcMode::Enforce && outcome == Dmarc::Fail && dmarc.policy() != policy {
        text.truncate(text.len() - 2);
        text.push_str(&format!(
            " (local policy: {} for this recipient)\r\n",
            mode.as_str()
        ));
    }
    if outcome == Dmarc::Fail && policy == Policy::Quarantine && !overridden {
        text.push_str(QUARANTINE_MARK);
    }
    Verdict::Deliver(text)
}

/// The DMARC result (RFC 7489 §11.2): mail-auth reports which identifiers passed aligned;
/// "fail" is a published policy that neither passed, "none" is no policy at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dmarc {
    Pass,
    Fail,
    None,
    TempError,
    PermError,
}

impl Dmarc {
    fn of(output: &DmarcOutput) -> Dmarc {
        let results = [output.dkim_result(), output.spf_result()];
        if results.iter().any(|r| matches!(r, DmarcResult::Pass)) {
            Dmarc::Pass
        } else if results
            .iter()
            .any(|r| matches!(r, DmarcResult::TempError(_)))
        {
            Dmarc::TempError
        } else if results
            .iter()
            .any(|r| matches!(r, DmarcResult::PermError(_)))
        {
            Dmarc::PermError
        } else if output.dmarc_record().is_none() {
            Dmarc::None
        } else {
            Dmarc::Fail
        }
    }

    /// The `; dmarc=…` part of the Authentication-Results header.
    fn clause(self, output: &DmarcOutput) -> String {
        let result = match self {
            Dmarc::Pass => "pass",
            Dmarc::Fail => "fail",
            Dmarc::None => "none",
            Dmarc::TempError => "temperror",
            Dmarc::PermError => "permerror",
        };
        let mut text = format!(";\r\n\tdmarc={result}");
        let domain = output.domain();
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !domain.is_empty() && domain.chars().all(plain) {
            text.push_str(" header.from=");
            text.push_str(domain);
        }
        if output.dmarc_record().is_some() {
            text.push_str(match output.policy() {
                Policy::Reject => " policy.dmarc=reject",
                Policy::Quarantine => " policy.dmarc=quarantine",
                Policy::None | Policy::Unspecified => " policy.dmarc=none",
            });
        }
        text
    }
}

fn header(results: &AuthenticationResults<'_>) -> String {
    results.to_header()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_without_results_says_none() {
        let r = AuthenticationResults::new("mx.example.net");
        assert_eq!(
            header(&r),
            "Authentication-Results: mx.example.net; none\r\n"
        );
    }

    #[test]
    fn dmarc_results_from_what_passed() {
        let out = |spf, dkim| {
            DmarcOutput::new("example.org".into())
                .with_spf_result(spf)
                .with_dkim_result(dkim)
        };
        let none = || DmarcResult::None;
        let dns = || {
            DmarcResult::TempError(mail_auth::Error::Dns(mail_auth::DnsError::Resolver(
                "timeout".into(),
            )))
        };
        assert_eq!(Dmarc::of(&out(DmarcResult::Pass, none())), Dmarc::Pass);
        assert_eq!(Dmarc::of(&out(dns(), DmarcResult::Pass)), Dmarc::Pass);
        assert_eq!(Dmarc::of(&out(dns(), none())), Dmarc::TempError);
        // No record found: "none", whatever failed.
        assert_eq!(Dmarc::of(&out(none(), none())), Dmarc::None);
        let clause = Dmarc::None.clause(&out(none(), none()));
        assert_eq!(clause, ";\r\n\tdmarc=none header.from=example.org");
        let odd = DmarcOutput::new("a; b=c".into());
        assert_eq!(Dmarc::Fail.clause(&odd), ";\r\n\tdmarc=fail");
    }
}

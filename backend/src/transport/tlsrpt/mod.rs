//! TLS-RPT (RFC 8460): what outbound sessions met, counted per reporting period and policy
//! domain, and the aggregate report each domain asks for (`_smtp._tls`), sent through our
//! own queue once a period has ended.
//!
//! Parts: `report` (pure: result types, the record, the JSON and the mail), this recorder
//! (counts kept in memory and added to PostgreSQL in batches, so the delivery path never
//! waits on a write for it), `send` (the periodic flush and the due reports, each claimed
//! by one back-end).
//!
//! Invariants: a session is counted once, under the policy the transport applied (DANE's
//! TLSA records, the domain's MTA-STS policy, or none found); routes are not policy and are
//! not counted; counts not yet flushed when a back-end dies are lost (a report is
//! statistics), never counted twice.
pub mod report;
pub mod send;

use super::client::ClientError;
use super::TlsMode;
use crate::store::TlsCount;
use chrono::{DateTime, Utc};
use report::{ReportPolicy, ResultType, Row};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    period_start: i64,
    domain: String,
    policy_type: &'static str,
    /// "" for successful sessions.
    result_type: &'static str,
    receiving_mx: String,
    receiving_ip: String,
}

#[derive(Debug, Clone)]
struct Counted {
    strings: Vec<String>,
    mx_hosts: Vec<String>,
    detail: String,
    sessions: i64,
}

/// Session counts not yet added to the store.
pub struct Recorder {
    period: Duration,
    counts: Mutex<HashMap<Key, Counted>>,
}

impl Recorder {
    /// Counts in periods of `period` (a day, RFC 8460 §4.1), aligned to the epoch.
    pub fn new(period: Duration) -> Recorder {
        Recorder {
            period: period.max(Duration::from_secs(1)),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The start of the period `at` falls in.
    pub fn period_start(&self, at: DateTime<Utc>) -> i64 {
        let p = self.period.as_secs() as i64;
        at.timestamp().div_euclid(p) * p
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// A session that went through under `policy`.
    pub fn success(&self, policy: &ReportPolicy) {
        self.add(policy, "", "", None, String::new());
    }

    /// A session that failed under `policy` at `mx` (`ip`), for `result`.
    pub fn failure(
        &self,
        policy: &ReportPolicy,
        result: ResultType,
        mx: &str,
        ip: Option<IpAddr>,
        detail: String,
    ) {
        self.add(policy, result.as_str(), mx, ip, detail);
    }

    fn add(
        &self,
        policy: &ReportPolicy,
        result: &'static str,
        mx: &str,
        ip: Option<IpAddr>,
        detail: String,
    ) {
        let key = Key {
            period_start: self.period_start(Utc::now()),
            domain: policy.domain.clone(),
            policy_type: policy.kind.as_str(),
            result_type: result,
            receiving_mx: mx.to_string(),
            receiving_ip: ip.map(|i| i.to_string()).unwrap_or_default(),
        };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let c = counts.entry(key).or_insert_with(|| Counted {
            strings: policy.strings.clone(),
            mx_hosts: policy.mx_hosts.clone(),
            detail: String::new(),
            sessions: 0,
        });
        c.sessions += 1;
        c.detail = detail;
    }

    /// Takes what was counted since the last call.
    pub fn take(&self) -> Taken {
        Taken(std::mem::take(
            &mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }

    /// Puts back counts a flush could not store, for the next one.
    pub fn restore(&self, taken: Taken) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (key, c) in taken.0 {
            match counts.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    e.get_mut().sessions += c.sessions
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(c);
                }
            }
        }
    }
}

/// Counts taken from the recorder: added to the store, or given back if that fails.
pub struct Taken(HashMap<Key, Counted>);

impl Taken {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The counts as store rows.
    pub fn rows(&self) -> Vec<TlsCount> {
        self.0
            .iter()
            .map(|(k, c)| TlsCount {
                period_start: DateTime::from_timestamp(k.period_start, 0).unwrap_or_default(),
                domain: k.domain.clone(),
                row: Row {
                    policy_type: k.policy_type.to_string(),
                    policy_strings: c.strings.clone(),
                    mx_hosts: c.mx_hosts.clone(),
                    result_type: k.result_type.to_string(),
                    receiving_mx: k.receiving_mx.clone(),
                    receiving_ip: k.receiving_ip.clone(),
                    detail: c.detail.clone(),
                    sessions: c.sessions,
                },
            })
            .collect()
    }
}

/// A domain's MTA-STS policy as reported.
pub fn sts_policy(
    domain: &str,
    policy: &crate::transport::policy::mta_sts::Policy,
) -> ReportPolicy {
    ReportPolicy {
        domain: domain.to_string(),
        kind: report::PolicyType::Sts,
        strings: policy.render().lines().map(str::to_string).collect(),
        mx_hosts: policy.mx.clone(),
    }
}

/// A host's TLSA records as reported ("3 1 1 <hex>").
pub fn tlsa_policy(domain: &str, records: &[crate::transport::policy::dane::Tlsa]) -> ReportPolicy {
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    ReportPolicy {
        domain: domain.to_string(),
        kind: report::PolicyType::Tlsa,
        strings: records
            .iter()
            .map(|r| format!("{} {} {} {}", r.usage, r.selector, r.matching, hex(&r.data)))
            .collect(),
        mx_hosts: Vec::new(),
    }
}

/// No policy found for the domain.
pub fn no_policy(domain: &str) -> ReportPolicy {
    ReportPolicy {
        domain: domain.to_string(),
        kind: report::PolicyType::NoPolicyFound,
        strings: Vec::new(),
        mx_hosts: Vec::new(),
    }
}

/// The RFC 8460 result of a policy fetch that failed: the policy host's certificate did not
/// verify, what it served was no valid policy, or it could not be had at all.
pub fn fetch_result_of(e: &crate::transport::policy::fetch::FetchError) -> ResultType {
    use crate::transport::policy::fetch::FetchError;
    match e {
        FetchError::Connect(_, io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
        {
            ResultType::StsWebpkiInvalid
        }
        FetchError::Policy(_) | FetchError::ContentType(_) => ResultType::StsPolicyInvalid,
        _ => ResultType::StsPolicyFetchError,
    }
}

/// A domain's MTA-STS policy that could not be had, as reported (the cached one's text when
/// there is one).
pub fn sts_unknown(domain: &str) -> ReportPolicy {
    ReportPolicy {
        domain: domain.to_string(),
        kind: report::PolicyType::Sts,
        strings: Vec::new(),
        mx_hosts: Vec::new(),
    }
}

/// The RFC 8460 result of a connection that failed for TLS, if it did (`tls`: the mode it
/// was held to).
pub fn result_of(e: &ClientError, tls: TlsMode) -> Option<ResultType> {
    use rustls::CertificateError as C;
    if matches!(e, ClientError::NoStartTls) {
        return Some(ResultType::StarttlsNotSupported);
    }
    let ClientError::Io(io) = e else { return None };
    let tls_error = io.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match (tls_error, tls) {
        (_, TlsMode::Dane) => ResultType::TlsaInvalid,
        (rustls::Error::InvalidCertificate(C::NotValidForName), _)
        | (rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }), _) => {
            ResultType::CertificateHostMismatch
        }
        (rustls::Error::InvalidCertificate(C::Expired), _)
        | (rustls::Error::InvalidCertificate(C::ExpiredContext { .. }), _) => {
            ResultType::CertificateExpired
        }
        (rustls::Error::InvalidCertificate(C::UnknownIssuer), _) => {
            ResultType::CertificateNotTrusted
        }
        _ => ResultType::ValidationFailure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use report::PolicyType;

    fn sts() -> ReportPolicy {
        ReportPolicy {
            domain: "example.org".into(),
            kind: PolicyType::Sts,
            strings: vec!["version: STSv1".into()],
            mx_hosts: vec!["mx.example.org".into()],
        }
    }

    #[test]
    fn sessions_are_counted_once_and_given_back_when_not_stored() {
        let r = Recorder::new(Duration::from_secs(86400));
        r.success(&sts());
        r.success(&sts());
        let ip = Some("192.0.2.1".parse().unwrap());
        r.failure(
            &sts(),
            ResultType::CertificateExpired,
            "mx.example.org",
            ip,
            "x".into(),
        );
        let taken = r.take();
        let rows = taken.rows();
        assert_eq!(rows.len(), 2);
        assert!(r.take().is_empty(), "taken once");
        let ok = rows.iter().find(|c| c.row.result_type.is_empty()).unwrap();
        assert_eq!(ok.row.sessions, 2);
        assert_eq!(ok.period_start.timestamp() % 86400, 0, "aligned to the day");
        r.restore(taken);
        r.success(&sts());
        let again = r.take().rows();
        let ok = again.iter().find(|c| c.row.result_type.is_empty()).unwrap();
        assert_eq!(ok.row.sessions, 3, "restored counts add up");
        let failed = again
            .iter()
            .find(|c| !c.row.result_type.is_empty())
            .unwrap();
        assert_eq!(failed.row.result_type, "certificate-expired");
        assert_eq!(failed.row.receiving_ip, "192.0.2.1");
    }

    #[test]
    fn starttls_missing_is_its_own_result() {
        assert_eq!(
            result_of(&ClientError::NoStartTls, TlsMode::Verify),
            Some(ResultType::StarttlsNotSupported)
        );
        assert_eq!(result_of(&ClientError::Timeout, TlsMode::Verify), None);
    }
}

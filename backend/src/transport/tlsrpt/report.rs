//! TLS-RPT (RFC 8460), the pure part: the result types, the `_smtp._tls` record, the JSON
//! report (§4) and the mail that carries it (§5.3: `multipart/report; report-type=tlsrpt`,
//! the report gzipped as `application/tlsrpt+gzip`). No I/O.
use chrono::{DateTime, Utc};
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use serde_json::{json, Value};

/// The policy a session was held to (RFC 8460 §4.3 `policy-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    Sts,
    Tlsa,
    NoPolicyFound,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Sts => "sts",
            PolicyType::Tlsa => "tlsa",
            PolicyType::NoPolicyFound => "no-policy-found",
        }
    }
}

/// A recipient domain's policy as reported: its type, text and MX patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPolicy {
    pub domain: String,
    pub kind: PolicyType,
    /// The policy's lines (MTA-STS) or records (TLSA, "3 1 1 <hex>").
    pub strings: Vec<String>,
    /// The MX patterns of an MTA-STS policy.
    pub mx_hosts: Vec<String>,
}

/// Why a session failed (RFC 8460 §4.3 `result-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultType {
    StarttlsNotSupported,
    CertificateHostMismatch,
    CertificateExpired,
    CertificateNotTrusted,
    ValidationFailure,
    TlsaInvalid,
    DnssecInvalid,
    StsPolicyFetchError,
    StsPolicyInvalid,
    StsWebpkiInvalid,
}

impl ResultType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultType::StarttlsNotSupported => "starttls-not-supported",
            ResultType::CertificateHostMismatch => "certificate-host-mismatch",
            ResultType::CertificateExpired => "certificate-expired",
            ResultType::CertificateNotTrusted => "certificate-not-trusted",
            ResultType::ValidationFailure => "validation-failure",
            ResultType::TlsaInvalid => "tlsa-invalid",
            ResultType::DnssecInvalid => "dnssec-invalid",
            ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            ResultType::StsPolicyInvalid => "sts-policy-invalid",
            ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }
}

/// One counted line of a period: successes (`result_type` empty) or failures of one kind at
/// one receiving host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub policy_type: String,
    pub policy_strings: Vec<String>,
    pub mx_hosts: Vec<String>,
    pub result_type: String,
    pub receiving_mx: String,
    pub receiving_ip: String,
    pub detail: String,
    pub sessions: i64,
}

/// Where a domain wants its reports: the `mailto:` addresses of its `_smtp._tls` record
/// (RFC 8460 §3). `None` when there is no valid record (none, several, no `rua`).
pub fn rua<'a>(txts: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    let records: Vec<&str> = txts
        .into_iter()
        .filter(|t| {
            let t = t.trim_start();
            t.starts_with("v=TLSRPTv1;") || t == "v=TLSRPTv1"
        })
        .collect();
    let [record] = records[..] else {
        return None;
    };
    let uris = record.split(';').map(str::trim).find_map(|field| {
        let (key, value) = field.split_once('=')?;
        (key.trim() == "rua").then_some(value)
    })?;
    let mailto: Vec<String> = uris
        .split(',')
        .filter_map(|uri| uri.trim().strip_prefix("mailto:"))
        .map(percent_decode)
        .filter(|a| a.contains('@') && !a.contains(char::is_whitespace))
        .collect();
    (!mailto.is_empty()).then_some(mailto)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who reports on which period.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Our host name: organization-name and the submitter.
    pub submitter: String,
    pub contact: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Meta {
    pub fn report_id(&self, domain: &str) -> String {
        format!(
            "{}.{}@{}",
            self.start.format("%Y%m%dT%H%M%SZ"),
            domain,
            self.submitter
        )
    }
}

/// The JSON report (RFC 8460 §4.4) on `domain` for the period: one policy block per policy
/// seen, with its summary and failure details.
pub fn json(meta: &Meta, domain: &str, rows: &[Row]) -> Value {
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.policy_type.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let policies: Vec<Value> = kinds
        .into_iter()
        .map(|kind| policy_block(domain, rows.iter().filter(|r| r.policy_type == kind)))
        .collect();
    json!({
        "organization-name": meta.submitter,
        "date-range": {
            "start-datetime": meta.start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "end-datetime": meta.end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        },
        "contact-info": meta.contact,
        "report-id": meta.report_id(domain),
        "policies": policies,
    })
}

fn policy_block<'a>(domain: &str, rows: impl Iterator<Item = &'a Row> + Clone) -> Value {
    let first = rows.clone().next().expect("a policy type comes from a row");
    let mut policy = json!({
        "policy-type": first.policy_type,
        "policy-string": first.policy_strings,
        "policy-domain": domain,
    });
    if !first.mx_hosts.is_empty() {
        policy["mx-host"] = json!(first.mx_hosts);
    }
    let (ok, failed): (Vec<&Row>, Vec<&Row>) = rows.partition(|r| r.result_type.is_empty());
    let details: Vec<Value> = failed
        .iter()
        .map(|r| {
            let mut d = json!({
                "result-type": r.result_type,
                "receiving-mx-hostname": r.receiving_mx,
                "failed-session-count": r.sessions,
            });
            if !r.receiving_ip.is_empty() {
                d["receiving-ip"] = json!(r.receiving_ip);
            }
            if !r.detail.is_empty() {
                d["failure-reason-code"] = json!(r.detail);
            }
            d
        })
        .collect();
    json!({
        "policy": policy,
        "summary": {
            "total-successful-session-count": ok.iter().map(|r| r.sessions).sum::<i64>(),
            "total-failure-session-count": failed.iter().map(|r| r.sessions).sum::<i64>(),
        },
        "failure-details": details,
    })
}

/// The report mail (RFC 8460 §5.3) to `to`, the JSON gzipped and attached.
pub fn message(meta: &Meta, domain: &str, to: &[String], report: &Value) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(report.to_string().as_bytes());
    let zipped = gz.finish().unwrap_or_default();
    let name = format!(
        "{}!{}!{}!{}.json.gz",
        meta.submitter,
        domain,
        meta.start.timestamp(),
        meta.end.timestamp()
    );
    let human = format!(
        "This is an aggregate TLS report (RFC 8460) from {} on the mail it sent to {domain}\r\n\
         from {} to {}. The report is attached.\r\n",
        meta.submitter,
        meta.start.to_rfc3339(),
        meta.end.to_rfc3339()
    );
    let body = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "tlsrpt"),
        BodyPart::Multipart(vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "us-ascii"),
                human,
            ),
            MimePart::new(
                ContentType::new("application/tlsrpt+gzip"),
                BodyPart::Binary(zipped.into()),
            )
            .attachment(name),
        ]),
    );
    let id = meta.report_id(domain);
    let from = format!("noreply-smtp-tls-reporting@{}", meta.submitter);
    MessageBuilder::new()
        .from(("TLS Reporting", from.as_str()))
        .to(to.iter().map(String::as_str).collect::<Vec<_>>())
        // Plain text, as §5.3 writes it (an encoded-word would hide it from filters).
        .header(
            "Subject",
            Raw::new(format!(
                "Report Domain: {domain}\r\n Submitter: {}\r\n Report-ID: <{id}>",
                meta.submitter
            )),
        )
        .date(meta.end.timestamp())
        .message_id(id.clone())
        .header("TLS-Report-Domain", Raw::new(domain.to_string()))
        .header("TLS-Report-Submitter", Raw::new(meta.submitter.clone()))
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .body(body)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_names_mailto_addresses() {
        assert_eq!(
            rua(["v=TLSRPTv1; rua=mailto:tls@example.org,https://r.example/x"]),
            Some(vec!["tls@example.org".to_string()])
        );
        assert_eq!(
            rua(["v=spf1 -all", "v=TLSRPTv1;rua=mailto:a%40b@example.org"]),
            Some(vec!["a@b@example.org".to_string()]),
            "percent-decoded"
        );
        assert_eq!(rua(["v=TLSRPTv1; rua=https://r.example/x"]), None);
        assert_eq!(rua(["v=TLSRPTv1"]), None, "no rua");
        assert_eq!(
            rua([
                "v=TLSRPTv1; rua=mailto:a@x.org",
                "v=TLSRPTv1; rua=mailto:b@x.org"
            ]),
            None,
            "two records: none is valid"
        );
        assert_eq!(rua(["v=TLSRPTv10; rua=mailto:a@x.org"]), None);
        assert_eq!(rua(["v=TLSRPTv1; rua=mailto:"]), None);
    }

    fn row(kind: &str, result: &str, sessions: i64) -> Row {
        Row {
            policy_type: kind.into(),
            policy_strings: vec!["version: STSv1".into(), "mode: enforce".into()],
            mx_hosts: vec!["mx.example.org".into()],
            result_type: result.into(),
            receiving_mx: if result.is_empty() {
                ""
            } else {
                "mx.example.org"
            }
            .into(),
            receiving_ip: if result.is_empty() { "" } else { "192.0.2.1" }.into(),
            detail: String::new(),
            sessions,
        }
    }

    #[test]
    fn the_report_counts_per_policy() {
        let meta = Meta {
            submitter: "mx.us.example".into(),
            contact: "postmaster@us.example".into(),
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            end: DateTime::from_timestamp(1_700_086_400, 0).unwrap(),
        };
        let rows = [
            row("sts", "", 7),
            row("sts", "certificate-expired", 2),
            row("sts", "starttls-not-supported", 1),
            row("no-policy-found", "", 3),
        ];
        let r = json(&meta, "example.org", &rows);
        assert_eq!(r["date-range"]["start-datetime"], "2023-11-14T22:13:20Z");
        let policies = r["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 2);
        let sts = policies
            .iter()
            .find(|p| p["policy"]["policy-type"] == "sts")
            .unwrap();
        assert_eq!(sts["summary"]["total-successful-session-count"], 7);
        assert_eq!(sts["summary"]["total-failure-session-count"], 3);
        assert_eq!(sts["failure-details"].as_array().unwrap().len(), 2);
        assert_eq!(sts["policy"]["mx-host"][0], "mx.example.org");
        let mail = message(&meta, "example.org", &["tls@example.org".into()], &r);
        let text = String::from_utf8_lossy(&mail);
        assert!(text.contains("report-type=\"tlsrpt\"") || text.contains("report-type=tlsrpt"));
        assert!(text.contains("application/tlsrpt+gzip"), "{text}");
        assert!(text.contains("TLS-Report-Domain: example.org"), "{text}");
    }
}

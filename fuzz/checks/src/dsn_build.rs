//! The DSN builder on arbitrary originals and diagnostics: no panic, a multipart/report comes
//! out, and no control character from the input reaches a header line.
use bridgehead_backend::dsn::{build, DsnAction, Report, ReportRecipient};

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let cut = data.len() / 2;
    let diagnostic = String::from_utf8_lossy(&data[..cut]).to_string();
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let r = ReportRecipient {
        address: "x@fuzz.test".into(),
        orcpt: diagnostic.clone(),
        action: DsnAction::Failed,
        status: "5.0.0".into(),
        remote_mta: "mx.fuzz".into(),
        diagnostic,
        last_attempt: now,
    };
    let out = build(&Report {
        reporting_mta: "mx.fuzz",
        to: "sender@fuzz.test",
        envid: "",
        arrival: now,
        recipients: &[r],
        original: &data[cut..],
        headers_only: data.first().is_some_and(|b| b & 1 == 1),
        max_original: 4096,
        will_retry_until: None,
        now,
    });
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("multipart/report"));
    for line in text
        .lines()
        .filter(|l| l.starts_with("Diagnostic-Code:") || l.starts_with("Original-Recipient:"))
    {
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\r'),
            "{line:?}"
        );
    }
}

//! Admin: the TLS-RPT counts (`admin tls report`), what an operator reads to see which
//! domains our mail could not reach over the TLS their policies ask for, and why.
use super::Services;
use bridgehead_proto::v1 as pb;
use tonic::Status;

pub async fn counts(s: &Services, req: pb::TlsReportRequest) -> Result<pb::TlsReportList, Status> {
    let days = if req.days == 0 { 2 } else { req.days.min(30) };
    let since = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
    let domain = (!req.domain.is_empty()).then_some(req.domain.as_str());
    let rows = s.store.tls_counts(domain, since).await?;
    Ok(pb::TlsReportList {
        rows: rows
            .into_iter()
            .map(|c| pb::TlsReportRow {
                period_start_unix: c.period_start.timestamp(),
                domain: c.domain,
                policy_type: c.row.policy_type,
                result_type: c.row.result_type,
                receiving_mx: c.row.receiving_mx,
                receiving_ip: c.row.receiving_ip,
                sessions: c.row.sessions,
                detail: c.row.detail,
            })
            .collect(),
    })
}

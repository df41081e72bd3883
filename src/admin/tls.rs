//! `admin tls report [DOMAIN]`: the TLS-RPT counts of outbound sessions (RFC 8460) — per
//! reporting period, recipient domain and policy, the successful sessions, then each kind of
//! failure with the receiving host and the last reason. The same counts go to the domains
//! that publish a `_smtp._tls` record, once a period ends.
use super::client::Client;
use anyhow::Result;
use bridgehead_proto::v1 as pb;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum TlsCmd {
    /// Sessions to each domain's mail hosts and why some failed, newest period first.
    Report {
        /// Only this recipient domain.
        domain: Option<String>,
        /// How many days back (default 2, at most 30).
        #[arg(long, default_value_t = 2)]
        days: u32,
    },
}

pub async fn run(c: &mut Client, cmd: TlsCmd) -> Result<()> {
    let TlsCmd::Report { domain, days } = cmd;
    let req = pb::TlsReportRequest {
        domain: domain.unwrap_or_default(),
        days,
    };
    let list = c.tls_report(req).await?.into_inner();
    if list.rows.is_empty() {
        println!("no outbound sessions counted in the last {days} day(s)");
        return Ok(());
    }
    println!("period (UTC)\tdomain\tpolicy\tresult\tsessions\tmx\tip\treason");
    for r in list.rows {
        let period = chrono::DateTime::from_timestamp(r.period_start_unix, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let result = if r.result_type.is_empty() {
            "success"
        } else {
            &r.result_type
        };
        println!(
            "{period}\t{}\t{}\t{result}\t{}\t{}\t{}\t{}",
            r.domain, r.policy_type, r.sessions, r.receiving_mx, r.receiving_ip, r.detail
        );
    }
    Ok(())
}

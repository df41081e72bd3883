//! Overview: the nodes (their heartbeats, recorded in PostgreSQL), the queue, quarantine and
//! connector trouble, and the last 24 hours of traffic.
use super::{call, failed, req};
use crate::console::layout::{self, age, when};
use crate::console::session::Signed;
use crate::console::{chart, Console};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use bridgehead_proto::v1 as pb;
use maud::html;

pub async fn show(State(c): State<Console>, Extension(s): Extension<Signed>) -> Response {
    let o = match call(c.admin.overview(req(pb::Empty {}))).await {
        Ok(o) => o,
        Err(e) => return failed(&c, &s, "/", "Overview", &e),
    };
    let now = chrono::Utc::now().timestamp();
    let counts: Vec<(i64, [i64; 4])> = o
        .minutes
        .iter()
        .map(|m| {
            (
                m.minute_unix,
                [m.accepted, m.delivered, m.deferred, m.bounced],
            )
        })
        .collect();
    let body = html! {
        div.cards {
            div.card id="queue-depth" { b { (o.queue_depth) } "in the queue" }
            div.card id="queue-oldest" { b { (age(o.queue_oldest_secs)) } "oldest queued" }
            div.card id="quarantined" { b { (o.quarantined) } a href=(c.url("/quarantine")) { "quarantined" } }
            div.card id="connector-errors" { b { (o.connector_errors) } a href=(c.url("/connectors?tab=troubleshooting")) { "connectors failing" } }
        }
        h2 { "Messages per minute, last 24 hours" }
        (chart::traffic(&counts, now / 60 * 60))
        h2 { "Nodes" }
        p { "Each back-end records a heartbeat in PostgreSQL every few seconds; each front-end reports through a back-end. A node not heard from for 30 s is shown as down." }
        table #nodes {
            tr { th { "Node" } th { "Role" } th { "Version" } th { "Up since" } th { "Last heard" } th { "Health" } th { "Detail" } }
            @for n in &o.nodes {
                tr {
                    td { (n.name) } td { (n.role) } td { (n.version) }
                    td { (when(n.started_unix)) " (" (age(now - n.started_unix)) ")" }
                    td { (age(now - n.seen_unix)) " ago" }
                    td { @if n.healthy { span.up { "up" } } @else { span.down { "down" } } }
                    td { (n.detail) }
                }
            }
        }
    };
    layout::page(&c, &s, "/", "Overview", body)
}

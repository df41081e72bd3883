//! Message tracking: messages found by queue id, Message-ID, sender or recipient in a time
//! range, each with its path (accepted by which front-end from which client, stored or
//! queued on which back-end, each attempt and its answer, the report sent).
use super::{call, Shown};
use crate::console::layout::{self, field, FormError};
use crate::console::session::Signed;
use crate::console::Console;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bridgehead_proto::v1 as pb;
use maud::html;
use serde::Deserialize;

pub fn routes() -> Router<Console> {
    Router::new().route("/tracking", get(search))
}

#[derive(Deserialize, Default)]
struct Search {
    #[serde(default)]
    q: String,
    /// How far back, in hours ("" a day).
    #[serde(default)]
    hours: String,
}

async fn search(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<Search>,
) -> Response {
    let mut shown = Shown::default();
    let hours = match q.hours.trim() {
        "" => Ok(24),
        h => h
            .parse::<i64>()
            .ok()
            .filter(|h| (1..=24 * 366).contains(h))
            .ok_or("hours back is a whole number from 1 to 8784"),
    };
    let mut found = Vec::new();
    match hours {
        Err(m) => shown.err = Some(FormError::new("track", "hours", m)),
        Ok(h) => {
            let now = chrono::Utc::now().timestamp();
            let r = pb::TrackRequest {
                text: q.q.clone(),
                domain: s.role.domain().unwrap_or("").to_string(),
                since_unix: now - h * 3600,
                until_unix: now,
                limit: 50,
            };
            match call(c.admin.track_messages(super::req(r))).await {
                Ok(l) => found = l.messages,
                Err(e) => {
                    shown.err = Some(FormError::from_status(
                        "track",
                        &[("q", &[]), ("hours", &["time", "since"])],
                        &e,
                    ))
                }
            }
        }
    }
    let err = shown.err.as_ref();
    let body = html! {
        form method="get" action=(c.url("/tracking")) id="track" {
            fieldset {
                (field(err, "track", "q", "Queue id, Message-ID, sender or recipient", &q.q, "text"))
                (field(err, "track", "hours", "Hours back", if q.hours.is_empty() { "24" } else { &q.hours }, "text"))
                button type="submit" { "Search" }
            }
        }
        @if found.is_empty() && err.is_none() { p #nothing-found { "No message matches." } }
        @for m in &found {
            section.tracked data-queue-id=(m.queue_id) {
                h2 { (m.queue_id) " — from " (if m.mail_from.is_empty() { "<>" } else { &m.mail_from }) }
                @if !m.message_id.is_empty() { p { "Message-ID: " code { (m.message_id) } } }
                table.events {
                    tr { th { "Time" } th { "Event" } th { "Node" } th { "Recipients" } th { "Detail" } }
                    @for e in &m.events {
                        tr data-kind=(e.kind) {
                            td { (chrono::DateTime::from_timestamp_millis(e.at_unix_ms).map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()).unwrap_or_default()) }
                            td { (e.kind) } td { (e.node) } td { (e.recipients.join(", ")) } td { (e.detail) }
                        }
                    }
                }
            }
        }
    };
    layout::page(&c, &s, "/tracking", "Message tracking", body)
}

//! The outbound queue: filtered by domain, sender, recipient, status and age, a page at a
//! time; one message shown (recipients, attempts, diagnostics, headers); retry, hold,
//! release, delete and delete with a bounce, for one message or every one a filter matches.
use super::{call, done, failed, req, req_as, Shown};
use crate::console::layout::{self, age, bytes, csrf, notice, FormError};
use crate::console::session::{forbid, Signed};
use crate::console::Console;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use bridgehead_proto::v1 as pb;
use maud::{html, Markup};
use serde::Deserialize;

const ACTIONS: [(&str, &str); 5] = [
    ("retry", "Retry now"),
    ("hold", "Hold"),
    ("release", "Release"),
    ("delete", "Delete"),
    ("bounce", "Delete and bounce"),
];

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/queue", get(list))
        .route("/queue/message/{id}", get(one))
        .route("/queue/act", post(act))
}

#[derive(Deserialize, Default, Clone)]
struct Filter {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    status: String,
    /// Minimum age in minutes ("" any).
    #[serde(default)]
    age: String,
    #[serde(default)]
    after: i64,
    ok: Option<String>,
}

impl Filter {
    fn to_pb(&self, s: &Signed) -> Result<pb::QueueFilter, String> {
        let min_age = match self.age.trim() {
            "" => 0,
            a => {
                a.parse::<u64>()
                    .map_err(|_| "the age is a whole number of minutes".to_string())?
                    * 60
            }
        };
        Ok(pb::QueueFilter {
            domain: s.role.filter(self.domain.trim()).to_string(),
            sender: self.sender.clone(),
            recipient: self.recipient.clone(),
            status: self.status.clone(),
            min_age_secs: min_age,
        })
    }
}

async fn list(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(f): Query<Filter>,
) -> Response {
    let shown = Shown {
        ok: f.ok.clone(),
        err: None,
    };
    render(&c, &s, &f, shown).await
}

fn action_buttons(c: &Console, s: &Signed, id: &str) -> Markup {
    html! {
        @for (action, label) in ACTIONS {
            (layout::button(c, s, "/queue/act", &[("queue_id", id), ("action", action)], label)) " "
        }
    }
}

async fn render(c: &Console, s: &Signed, f: &Filter, shown: Shown) -> Response {
    let filter = match f.to_pb(s) {
        Ok(p) => p,
        Err(m) => {
            return page(
                c,
                s,
                f,
                Shown {
                    ok: None,
                    err: Some(FormError::new("filter", "age", m)),
                },
                html! {},
            )
        }
    };
    let asked = pb::QueueListRequest {
        limit: 100,
        after: f.after,
        filter: Some(filter),
    };
    let list = match call(c.admin.list_queue(req(asked))).await {
        Ok(l) => l,
        Err(e) => {
            let err = FormError::from_status(
                "filter",
                &[("domain", &["domain"]), ("status", &["status"])],
                &e,
            );
            return page(
                c,
                s,
                f,
                Shown {
                    ok: None,
                    err: Some(err),
                },
                html! {},
            );
        }
    };
    let now = chrono::Utc::now();
    let next = (list.next != 0).then(|| {
        let mut g = f.clone();
        g.after = list.next;
        g.ok = None;
        query(&g)
    });
    let rows = html! {
        table #queue {
            tr { th { "Queue id" } th { "From" } th { "To" } th { "Age" } th { "Attempts" } th { "Status" } th { "Last error" } th {} }
            @for m in &list.entries {
                @let created = chrono::DateTime::parse_from_rfc3339(&m.created_at).map(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds()).unwrap_or(0);
                tr {
                    td { a href=(c.url(&format!("/queue/message/{}", m.queue_id))) { (m.queue_id) } }
                    td { (m.mail_from) }
                    td { @for r in &m.recipients { (r.address) " (" (r.status) ")" br; } }
                    td { (age(created)) } td { (m.attempts) }
                    td { @if m.held { "held" } @else if m.attempts > 0 { "deferred" } @else { "waiting" } }
                    td { (m.last_error) }
                    td { (action_buttons(c, s, &m.queue_id)) }
                }
            }
        }
        @if list.entries.is_empty() { p #queue-empty { "No queued message matches." } }
        @if let Some(n) = next { p { a #next-page href=(c.url(&format!("/queue?{n}"))) { "Next 100 →" } } }
    };
    page(c, s, f, shown, rows)
}

fn query(f: &Filter) -> String {
    serde_urlencoded::to_string([
        ("domain", f.domain.as_str()),
        ("sender", &f.sender),
        ("recipient", &f.recipient),
        ("status", &f.status),
        ("age", &f.age),
        ("after", &f.after.to_string()),
    ])
    .unwrap_or_default()
}

fn page(c: &Console, s: &Signed, f: &Filter, shown: Shown, rows: Markup) -> Response {
    let err = shown.err.as_ref();
    let e = |name: &str| err.filter(|e| e.field == name).map(|e| e.message.clone());
    let filter_fields = html! {
        label { "Domain " input name="domain" value=(s.role.filter(&f.domain)) readonly[s.role.domain().is_some()];
            @if let Some(m) = e("domain") { span.err { (m) } } }
        label { "Sender contains " input name="sender" value=(f.sender); }
        label { "Recipient contains " input name="recipient" value=(f.recipient); }
        label { "Status " select name="status" {
            @for st in ["", "held", "deferred", "waiting"] { option value=(st) selected[st == f.status] { @if st.is_empty() { "any" } @else { (st) } } } }
            @if let Some(m) = e("status") { span.err { (m) } } }
        label { "At least " input name="age" value=(f.age) size="5"; " minutes old" @if let Some(m) = e("age") { span.err { (m) } } }
    };
    let body = html! {
        (notice(shown.ok.as_deref()))
        @if let Some(e) = err.filter(|e| e.form == "act") { p.bad id="action-error" { (e.message) } }
        form method="get" action=(c.url("/queue")) id="queue-filter" {
            fieldset { (filter_fields) button type="submit" { "Filter" } }
        }
        form method="post" action=(c.url("/queue/act")) id="queue-bulk" {
            (csrf(s))
            input type="hidden" name="domain" value=(s.role.filter(&f.domain));
            input type="hidden" name="sender" value=(f.sender);
            input type="hidden" name="recipient" value=(f.recipient);
            input type="hidden" name="status" value=(f.status);
            input type="hidden" name="age" value=(f.age);
            fieldset { "Every message this filter matches: "
                select name="action" { @for (a, label) in ACTIONS { option value=(a) { (label) } } }
                button type="submit" { "Apply to all matching" } }
        }
        (rows)
    };
    layout::page(c, s, "/queue", "Queue", body)
}

async fn one(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Path(id): Path<String>,
    Query(q): Query<super::Notice>,
) -> Response {
    let m = match call(c.admin.show_queued(req(pb::QueueRequest {
        queue_id: id.clone(),
    })))
    .await
    {
        Ok(m) => m,
        Err(e) => return failed(&c, &s, "/queue", "Queued message", &e),
    };
    if !visible(&s, &m) {
        return forbid(&c, "a message of another domain");
    }
    let body = html! {
        (notice(q.ok.as_deref()))
        table #message {
            tr { th { "Queue id" } td { (m.queue_id) } }
            tr { th { "From" } td { (m.mail_from) } }
            tr { th { "Size" } td { (bytes(m.size)) } }
            tr { th { "Queued" } td { (m.created_at) } }
            tr { th { "Next attempt" } td { (m.next_attempt_at) } }
            tr { th { "Attempts" } td { (m.attempts) } }
            tr { th { "Held" } td #held { (if m.held { "yes" } else { "no" }) } }
            tr { th { "Last error" } td { (m.last_error) } }
        }
        h2 { "Recipients" }
        table #recipients { tr { th { "Address" } th { "Status" } th { "DSN status" } th { "Diagnostic" } }
            @for r in &m.recipients { tr { td { (r.address) } td { (r.status) } td { (r.dsn_status) } td { (r.diagnostic) } } } }
        div #actions { (action_buttons(&c, &s, &m.queue_id)) }
        h2 { "Headers" }
        pre #headers { (m.headers) }
        p { a href=(c.url(&format!("/tracking?q={}", m.queue_id))) { "Track this message" } }
    };
    layout::page(
        &c,
        &s,
        "/queue",
        &format!("Queued message {}", m.queue_id),
        body,
    )
}

/// A domain administrator sees a queued message from or to their domain.
fn visible(s: &Signed, m: &pb::QueueEntry) -> bool {
    s.role.domain().is_none()
        || s.role.sees_address(&m.mail_from)
        || m.recipients.iter().any(|r| s.role.sees_address(&r.address))
}

#[derive(Deserialize, Default)]
struct Act {
    #[serde(default)]
    queue_id: String,
    action: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    age: String,
}

impl Act {
    fn filter(&self) -> Filter {
        Filter {
            domain: self.domain.clone(),
            sender: self.sender.clone(),
            recipient: self.recipient.clone(),
            status: self.status.clone(),
            age: self.age.clone(),
            ..Filter::default()
        }
    }
}

async fn act(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(a): Form<Act>,
) -> Response {
    let id = a.queue_id.trim().to_string();
    if id.is_empty() {
        return act_on_all(&c, &s, a).await;
    }
    match call(c.admin.show_queued(req(pb::QueueRequest {
        queue_id: id.clone(),
    })))
    .await
    {
        Ok(m) if !visible(&s, &m) => return forbid(&c, "a message of another domain"),
        Ok(_) => {}
        Err(e) => {
            let err = FormError::new("act", "", layout::say(&e));
            return render(
                &c,
                &s,
                &Filter::default(),
                Shown {
                    ok: None,
                    err: Some(err),
                },
            )
            .await;
        }
    }
    let q = || {
        req_as(
            &s,
            pb::QueueRequest {
                queue_id: id.clone(),
            },
        )
    };
    let r = match a.action.as_str() {
        "retry" => call(c.admin.retry_queued(q())).await.map(|_| ()),
        "hold" => call(c.admin.hold_queued(q())).await.map(|_| ()),
        "release" => call(c.admin.release_queued(q())).await.map(|_| ()),
        "delete" | "bounce" => {
            let d = pb::DeleteQueuedRequest {
                queue_id: id.clone(),
                bounce: a.action == "bounce",
            };
            call(c.admin.delete_queued(req_as(&s, d))).await.map(|_| ())
        }
        _ => Err(tonic::Status::invalid_argument(
            "the action is retry, hold, release, delete or bounce",
        )),
    };
    match r {
        Ok(()) if matches!(a.action.as_str(), "delete" | "bounce") => {
            done(&c, "/queue", &format!("{id}: {} done.", a.action))
        }
        Ok(()) => done(
            &c,
            &format!("/queue/message/{id}"),
            &format!("{id}: {} done.", a.action),
        ),
        Err(e) => {
            let err = FormError::new("act", "", format!("{id}: {}", layout::say(&e)));
            render(
                &c,
                &s,
                &Filter::default(),
                Shown {
                    ok: None,
                    err: Some(err),
                },
            )
            .await
        }
    }
}

async fn act_on_all(c: &Console, s: &Signed, a: Act) -> Response {
    let asked = a.filter();
    let filter = match asked.to_pb(s) {
        Ok(f) => f,
        Err(m) => {
            return render(
                c,
                s,
                &asked,
                Shown {
                    ok: None,
                    err: Some(FormError::new("filter", "age", m)),
                },
            )
            .await
        }
    };
    let r = pb::QueueActionRequest {
        filter: Some(filter),
        action: a.action.clone(),
    };
    match call(c.admin.act_on_queue(req_as(s, r))).await {
        Ok(n) => done(
            c,
            &format!("/queue?{}", query(&asked)),
            &format!("{}: {} message(s).", a.action, n.count),
        ),
        Err(e) => {
            let err = FormError::new("act", "", layout::say(&e));
            render(
                c,
                s,
                &asked,
                Shown {
                    ok: None,
                    err: Some(err),
                },
            )
            .await
        }
    }
}

//! The POP3 connectors, in the seed's three tabs: Mailboxes (add, edit, enable/disable,
//! remove, change password), Scheduling (interval, retrieve now, for one or all), Troubleshooting (last
//! polls, errors, log level, the undeliverable mailbox). A domain administrator sees the
//! connectors that deliver into their domain.
use super::{call, done, failed, req, Shown};
use crate::console::layout::{self, button, csrf, field, notice, when, FormError};
use crate::console::session::{forbid, Signed};
use crate::console::Console;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use bridgehead_proto::v1 as pb;
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/connectors", get(show))
        .route("/connectors/change", post(change))
}

#[derive(Deserialize, Default)]
struct Tab {
    #[serde(default)]
    tab: String,
    ok: Option<String>,
}

async fn show(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(t): Query<Tab>,
) -> Response {
    render(
        &c,
        &s,
        &t.tab,
        Shown {
            ok: t.ok,
            err: None,
        },
        &Change::default(),
    )
    .await
}

/// The connector's delivery domain (its target's, or the target itself in global mode).
fn domain_of(k: &pb::ConnectorInfo) -> &str {
    k.target
        .rsplit_once('@')
        .map_or(k.target.as_str(), |(_, d)| d)
}

async fn render(c: &Console, s: &Signed, tab: &str, shown: Shown, form: &Change) -> Response {
    let list = match call(c.admin.list_connectors(req(pb::Empty {}))).await {
        Ok(l) => l,
        Err(e) => return failed(c, s, "/connectors", "Connectors", &e),
    };
    let mine: Vec<&pb::ConnectorInfo> = list
        .connectors
        .iter()
        .filter(|k| s.role.sees_domain(domain_of(k)))
        .collect();
    let tab = match tab {
        "scheduling" | "troubleshooting" => tab,
        _ => "mailboxes",
    };
    let err = shown.err.as_ref();
    let content = match tab {
        "scheduling" => scheduling(c, s, &mine),
        "troubleshooting" => troubleshooting(c, s, &mine, err),
        _ => mailboxes(c, s, &mine, err, form),
    };
    let body = html! {
        (notice(shown.ok.as_deref()))
        p.tabs {
            @for (t, name) in [("mailboxes", "Mailboxes"), ("scheduling", "Scheduling"), ("troubleshooting", "Troubleshooting")] {
                a.on[t == tab] id={"tab-" (t)} href=(c.url(&format!("/connectors?tab={t}"))) { (name) }
            }
        }
        @if let Some(e) = err.filter(|e| e.form == "row") { p.bad id="connector-error" { (e.message) } }
        (content)
    };
    layout::page(c, s, "/connectors", "POP3 connectors", body)
}

fn mailboxes(
    c: &Console,
    s: &Signed,
    list: &[&pb::ConnectorInfo],
    err: Option<&FormError>,
    f: &Change,
) -> Markup {
    html! {
        form method="post" action=(c.url("/connectors/change")) id="add-connector" {
            (csrf(s)) input type="hidden" name="op" value="add"; input type="hidden" name="tab" value="mailboxes";
            fieldset {
                (field(err, "add", "name", "Name", &f.name, "text"))
                label { "Mode " select name="mode" { option value="user" { "user (one mailbox)" } option value="global" { "global (a domain)" } } }
                (field(err, "add", "server", "Server", &f.server, "text"))
                (field(err, "add", "port", "Port", if f.port.is_empty() { "995" } else { &f.port }, "text"))
                label { "TLS " select name="tls" { option { "implicit" } option { "stls" } option { "none" } } }
                (field(err, "add", "username", "User name", &f.username, "text"))
                (field(err, "add", "secret", "Password", "", "password"))
                (field(err, "add", "target", "Deliver to (address, or domain in global mode)", &f.target, "text"))
                label { input type="checkbox" name="verify" value="1" checked; " verify the server's certificate" }
                button type="submit" { "Add connector" }
            }
        }
        table #connectors {
            tr { th { "Name" } th { "Mode" } th { "Server" } th { "User" } th { "Delivers to" } th { "Enabled" } th {} }
            @for k in list {
                tr data-connector=(k.name) {
                    td { (k.name) } td { (k.mode) } td { (k.server) ":" (k.port) " (" (k.tls) ")" } td { (k.username) } td { (k.target) }
                    td { (if k.enabled { "yes" } else { "no" }) }
                    td {
                        form.inline method="post" action=(c.url("/connectors/change")) {
                            (csrf(s)) input type="hidden" name="op" value="password"; input type="hidden" name="name" value=(k.name);
                            input name="secret" type="password" placeholder="new password" size="12"; button type="submit" { "Change password" }
                        }
                        " " (button(c, s, "/connectors/change", &[("op", if k.enabled { "disable" } else { "enable" }), ("name", &k.name)], if k.enabled { "Disable" } else { "Enable" }))
                        " " (button(c, s, "/connectors/change", &[("op", "remove"), ("name", &k.name)], "Remove"))
                        (edit_form(c, s, k))
                    }
                }
            }
        }
    }
}

/// A connector's settings to change, folded away until opened (a `details` element: no script).
fn edit_form(c: &Console, s: &Signed, k: &pb::ConnectorInfo) -> Markup {
    html! {
        details {
            summary { "Edit" }
            form method="post" action=(c.url("/connectors/change")) {
                (csrf(s)) input type="hidden" name="op" value="edit"; input type="hidden" name="name" value=(k.name);
                label { "Server " input name="server" value=(k.server); }
                label { "Port " input name="port" value=(k.port) size="5"; }
                label { "TLS " select name="tls" { @for t in ["implicit", "stls", "none"] { option selected[t == k.tls] { (t) } } } }
                label { "User name " input name="username" value=(k.username); }
                label { "Deliver to " input name="target" value=(k.target); }
                label { input type="checkbox" name="verify" value="1" checked[k.verify_cert]; " verify the certificate" }
                label { input type="checkbox" name="leave" value="1" checked[k.leave_on_server]; " leave mail on the server" }
                button type="submit" { "Save" }
            }
        }
    }
}

fn scheduling(c: &Console, s: &Signed, list: &[&pb::ConnectorInfo]) -> Markup {
    html! {
        @if s.role.domain().is_none() { div { (button(c, s, "/connectors/change", &[("op", "retrieve"), ("name", ""), ("tab", "scheduling")], "Retrieve all now")) } }
        table #schedule {
            tr { th { "Name" } th { "Interval" } th { "Last poll" } th { "Next poll" } th { "Fetched last / total" } th {} }
            @for k in list {
                tr data-connector=(k.name) {
                    td { (k.name) }
                    td { form.inline method="post" action=(c.url("/connectors/change")) {
                        (csrf(s)) input type="hidden" name="op" value="interval"; input type="hidden" name="name" value=(k.name);
                        input name="interval" value=(k.interval_secs) size="6"; " s " button type="submit" { "Set" } } }
                    td.last-poll { (k.last_poll_at) } td { (k.next_poll_at) }
                    td.fetched { (k.last_fetched) " / " (k.fetched_total) }
                    td { (button(c, s, "/connectors/change", &[("op", "retrieve"), ("name", &k.name), ("tab", "scheduling")], "Retrieve now")) }
                }
            }
        }
        p { "Results appear here after the poll (reload the page). Now: " (when(chrono::Utc::now().timestamp())) }
    }
}

fn troubleshooting(
    c: &Console,
    s: &Signed,
    list: &[&pb::ConnectorInfo],
    err: Option<&FormError>,
) -> Markup {
    html! {
        table #troubles {
            tr { th { "Name" } th { "Last poll" } th { "Last error" } th { "Log level" } th { "Undeliverable mail goes to" } }
            @for k in list {
                tr {
                    td { (k.name) } td { (k.last_poll_at) } td.last-error { (k.last_error) }
                    td { form.inline method="post" action=(c.url("/connectors/change")) {
                        (csrf(s)) input type="hidden" name="op" value="log_level"; input type="hidden" name="name" value=(k.name);
                        select name="log_level" { @for l in ["info", "debug"] { option selected[l == k.log_level] { (l) } } }
                        button type="submit" { "Set" } } }
                    td { form.inline method="post" action=(c.url("/connectors/change")) {
                        (csrf(s)) input type="hidden" name="op" value="undeliverable"; input type="hidden" name="name" value=(k.name);
                        input name="undeliverable" value=(k.undeliverable) placeholder="the back-end's default";
                        button type="submit" { "Set" }
                        @if let Some(e) = err.filter(|e| e.form == "undeliverable") { span.err { (e.message) } } } }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
struct Change {
    op: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    verify: String,
    #[serde(default)]
    leave: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    log_level: String,
    #[serde(default)]
    undeliverable: String,
}

async fn change(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Change>,
) -> Response {
    let tab = match f.op.as_str() {
        "interval" | "retrieve" => "scheduling",
        "log_level" | "undeliverable" => "troubleshooting",
        _ => "mailboxes",
    };
    let existing = match f.op.as_str() {
        "add" => None,
        "retrieve" if f.name.is_empty() => None,
        _ => match call(c.admin.show_connector(req(pb::ConnectorRequest {
            name: f.name.clone(),
        })))
        .await
        {
            Ok(k) => Some(k),
            Err(e) => {
                return render(
                    &c,
                    &s,
                    tab,
                    Shown {
                        ok: None,
                        err: Some(FormError::new("row", "", layout::say(&e))),
                    },
                    &f,
                )
                .await
            }
        },
    };
    let allowed = match (&existing, f.op.as_str()) {
        (Some(k), _) => s.role.sees_domain(domain_of(k)),
        (None, "add") => s.role.sees_domain(
            f.target
                .rsplit_once('@')
                .map_or(f.target.as_str(), |(_, d)| d),
        ),
        (None, _) => s.role.domain().is_none(),
    };
    if !allowed {
        return forbid(&c, "a connector of another domain");
    }
    let r = apply(&c, &f, existing).await;
    match r {
        Ok(what) => done(&c, &format!("/connectors?tab={tab}"), &what),
        Err(e) => {
            let form = match f.op.as_str() {
                "add" => "add",
                "undeliverable" => "undeliverable",
                _ => "row",
            };
            let fields: &[(&'static str, &[&str])] = &[
                ("name", &["name", "connector"]),
                ("server", &["server", "host"]),
                ("port", &["port"]),
                ("secret", &["password", "secret"]),
                ("target", &["target", "address", "domain", "mailbox"]),
                ("username", &["user"]),
            ];
            render(
                &c,
                &s,
                tab,
                Shown {
                    ok: None,
                    err: Some(FormError::from_status(form, fields, &e)),
                },
                &f,
            )
            .await
        }
    }
}

async fn apply(
    c: &Console,
    f: &Change,
    existing: Option<pb::ConnectorInfo>,
) -> Result<String, tonic::Status> {
    let admin = &c.admin;
    let edit = |k: pb::ConnectorInfo| async move {
        call(admin.edit_connector(req(pb::ConnectorInfo {
            secret: String::new(),
            ..k
        })))
        .await
    };
    match (f.op.as_str(), existing) {
        ("add", _) => {
            let port = f.port.trim().parse::<u32>().map_err(|_| {
                tonic::Status::invalid_argument("the port is a number from 1 to 65535")
            })?;
            let k = pb::ConnectorInfo {
                name: f.name.clone(),
                mode: f.mode.clone(),
                server: f.server.clone(),
                port,
                tls: f.tls.clone(),
                verify_cert: f.verify == "1",
                auth: "user".into(),
                username: f.username.clone(),
                secret: f.secret.clone(),
                target: f.target.clone(),
                leave_on_server: false,
                interval_secs: 300,
                enabled: true,
                log_level: "info".into(),
                ..Default::default()
            };
            call(admin.add_connector(req(k))).await?;
            Ok(format!("Connector {} added.", f.name))
        }
        ("retrieve", k) => {
            let name = k.map(|k| k.name).unwrap_or_default();
            let n =
                call(admin.retrieve_now(req(pb::ConnectorRequest { name: name.clone() }))).await?;
            Ok(format!(
                "Retrieval asked of {} connector(s){}.",
                n.count,
                if name.is_empty() {
                    String::new()
                } else {
                    format!(" ({name})")
                }
            ))
        }
        ("remove", Some(k)) => {
            call(admin.remove_connector(req(pb::ConnectorRequest {
                name: k.name.clone(),
            })))
            .await?;
            Ok(format!("Connector {} removed.", k.name))
        }
        ("password", Some(k)) => {
            if f.secret.is_empty() {
                return Err(tonic::Status::invalid_argument("give the new password"));
            }
            call(admin.edit_connector(req(pb::ConnectorInfo {
                secret: f.secret.clone(),
                ..k
            })))
            .await?;
            Ok(format!("Password of {} changed.", f.name))
        }
        ("edit", Some(k)) => {
            let port = f.port.trim().parse::<u32>().map_err(|_| {
                tonic::Status::invalid_argument("the port is a number from 1 to 65535")
            })?;
            edit(pb::ConnectorInfo {
                server: f.server.trim().to_string(),
                port,
                tls: f.tls.clone(),
                username: f.username.clone(),
                target: f.target.trim().to_string(),
                verify_cert: f.verify == "1",
                leave_on_server: f.leave == "1",
                ..k
            })
            .await?;
            Ok(format!("Connector {} changed.", f.name))
        }
        ("enable" | "disable", Some(k)) => {
            edit(pb::ConnectorInfo {
                enabled: f.op == "enable",
                ..k
            })
            .await?;
            Ok(format!("Connector {} {}d.", f.name, f.op))
        }
        ("interval", Some(k)) => {
            let secs = f.interval.trim().parse::<i32>().map_err(|_| {
                tonic::Status::invalid_argument("the interval is a whole number of seconds")
            })?;
            edit(pb::ConnectorInfo {
                interval_secs: secs,
                ..k
            })
            .await?;
            Ok(format!("Interval of {} set.", f.name))
        }
        ("log_level", Some(k)) => {
            edit(pb::ConnectorInfo {
                log_level: f.log_level.clone(),
                ..k
            })
            .await?;
            Ok(format!("Log level of {} set.", f.name))
        }
        ("undeliverable", Some(k)) => {
            edit(pb::ConnectorInfo {
                undeliverable: f.undeliverable.trim().to_string(),
                ..k
            })
            .await?;
            Ok(format!("Undeliverable mailbox of {} set.", f.name))
        }
        _ => Err(tonic::Status::invalid_argument("unknown change")),
    }
}

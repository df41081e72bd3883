//! Aliases, distribution groups (with members), contacts, and routes (administrators only):
//! listed per domain, added and removed.
use super::{call, done, failed, page_of, pager, req, Shown};
use crate::console::layout::{self, button, csrf, field, notice, FormError};
use crate::console::session::{forbid, Signed};
use crate::console::Console;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use bridgehead_proto::v1 as pb;
use maud::html;
use serde::Deserialize;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/aliases", get(aliases))
        .route("/groups", get(groups))
        .route("/contacts", get(contacts))
        .route("/routes", get(routes_page))
        .route("/names/change", post(change))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    domain: String,
    /// Text in the names listed.
    #[serde(default)]
    q: String,
    #[serde(default)]
    from: usize,
    ok: Option<String>,
}

async fn aliases(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<ListQuery>,
) -> Response {
    render(
        &c,
        &s,
        "/aliases",
        &q,
        Shown {
            ok: q.ok.clone(),
            err: None,
        },
    )
    .await
}
async fn groups(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<ListQuery>,
) -> Response {
    render(
        &c,
        &s,
        "/groups",
        &q,
        Shown {
            ok: q.ok.clone(),
            err: None,
        },
    )
    .await
}
async fn contacts(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<ListQuery>,
) -> Response {
    render(
        &c,
        &s,
        "/contacts",
        &q,
        Shown {
            ok: q.ok.clone(),
            err: None,
        },
    )
    .await
}
async fn routes_page(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<ListQuery>,
) -> Response {
    if !s.role.is_admin() {
        return forbid(&c, "the cluster's routes");
    }
    let q = ListQuery {
        domain: String::new(),
        ..q
    };
    render(
        &c,
        &s,
        "/routes",
        &q,
        Shown {
            ok: q.ok.clone(),
            err: None,
        },
    )
    .await
}

/// One change on this page: `op` names it; the other fields are its arguments.
#[derive(Deserialize, Default)]
struct Change {
    op: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
}

async fn render(
    c: &Console,
    s: &Signed,
    page: &'static str,
    asked: &ListQuery,
    shown: Shown,
) -> Response {
    let domain = s.role.filter(asked.domain.trim()).to_string();
    let (q, from) = (asked.q.as_str(), asked.from);
    let query =
        serde_urlencoded::to_string([("domain", domain.as_str()), ("q", q)]).unwrap_or_default();
    let more = |total, next| pager(c, page, &query, total, from, next);
    let err = shown.err.as_ref();
    let listed = match page {
        "/aliases" => call(c.admin.list_aliases(req(pb::ListAliasesRequest { domain: domain.clone() }))).await.map(|l| {
            let (list, total, next) = page_of(l.aliases, q, |a| format!("{} {}", a.alias, a.target), from);
            html! { (more(total, next)) table #aliases { tr { th { "Alias" } th { "Delivers to" } th {} }
                @for a in &list { tr { td { (a.alias) } td { (a.target) }
                    td { (button(c, s, "/names/change", &[("op", "remove-alias"), ("a", &a.alias)], "Remove")) } } } } }
        }),
        "/groups" => call(c.admin.list_groups(req(pb::ListGroupsRequest { domain: domain.clone() }))).await.map(|l| {
            let (list, total, next) = page_of(l.groups, q, |g| format!("{} {}", g.address, g.members.join(" ")), from);
            html! { (more(total, next)) table #groups { tr { th { "Group" } th { "Who may send" } th { "Members" } th {} }
                @for g in &list { tr { td { (g.address) } td { (g.policy) }
                    td { @for m in &g.members { (m) " " (button(c, s, "/names/change", &[("op", "remove-member"), ("a", &g.address), ("b", m)], "×")) br; } }
                    td { (button(c, s, "/names/change", &[("op", "remove-group"), ("a", &g.address)], "Remove")) } } } } }
        }),
        "/contacts" => call(c.admin.list_contacts(req(pb::ListGroupsRequest { domain: domain.clone() }))).await.map(|l| {
            let (list, total, next) = page_of(l.contacts, q, |k| format!("{} {}", k.address, k.external), from);
            html! { (more(total, next)) table #contacts { tr { th { "Contact" } th { "Forwards to" } th {} }
                @for k in &list { tr { td { (k.address) } td { (k.external) }
                    td { (button(c, s, "/names/change", &[("op", "remove-contact"), ("a", &k.address)], "Remove")) } } } } }
        }),
        _ => call(c.admin.list_routes(req(pb::Empty {}))).await.map(|l| {
            let (list, total, next) = page_of(l.routes, q, |r| format!("{} {}", r.domain, r.host), from);
            html! { (more(total, next)) table #routes { tr { th { "Domain" } th { "Next hop" } th { "TLS" } th { "AUTH user" } th {} }
                @for r in &list { tr { td { (r.domain) } td { (r.host) ":" (r.port) } td { (r.tls) } td { (r.auth_user) }
                    td { (button(c, s, "/names/change", &[("op", "remove-route"), ("a", &r.domain)], "Remove")) } } } } }
        }),
    };
    let (title, form) = match page {
        "/aliases" => (
            "Aliases",
            html! {
            input type="hidden" name="op" value="add-alias";
            (field(err, "add", "a", "Alias", "", "text")) (field(err, "add", "b", "Delivers to (a user)", "", "text"))
            button type="submit" { "Add alias" } },
        ),
        "/groups" => (
            "Groups",
            html! {
            select name="op" { option value="add-group" { "Add group (who may send:)" } option value="add-member" { "Add member to group" } option value="set-policy" { "Set who may send" } }
            (field(err, "add", "a", "Group", "", "text"))
            (field(err, "add", "b", "Policy (anyone, authenticated, members) or member", "", "text"))
            button type="submit" { "Apply" } },
        ),
        "/contacts" => (
            "Contacts",
            html! {
            input type="hidden" name="op" value="add-contact";
            (field(err, "add", "a", "Address here", "", "text")) (field(err, "add", "b", "Forwards to", "", "text"))
            button type="submit" { "Add contact" } },
        ),
        _ => (
            "Routes",
            html! {
            input type="hidden" name="op" value="set-route";
            (field(err, "add", "a", "Domain (* for the smart host)", "", "text")) (field(err, "add", "b", "Host", "", "text"))
            (field(err, "add", "port", "Port", "25", "text"))
            label { "TLS " select name="tls" { @for t in ["opportunistic", "required", "verify", "dane", "implicit", "none"] { option { (t) } } } }
            button type="submit" { "Set route" } },
        ),
    };
    let listed = match listed {
        Ok(l) => l,
        Err(e) => return failed(c, s, page, title, &e),
    };
    let body = html! {
        (notice(shown.ok.as_deref()))
        form method="get" action=(c.url(page)) id="search" { fieldset {
            @if page != "/routes" {
                label { "Domain " input name="domain" value=(domain) readonly[s.role.domain().is_some()]; }
            }
            label { "Containing " input name="q" value=(q); }
            button type="submit" { "Show" } } }
        form method="post" action=(c.url("/names/change")) id="add" { (csrf(s)) fieldset { (form) } }
        @if let Some(e) = err.filter(|e| e.form == "row") { p.bad { (e.message) } }
        (listed)
    };
    layout::page(c, s, page, title, body)
}

async fn change(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Change>,
) -> Response {
    let page = match f.op.as_str() {
        "add-alias" | "remove-alias" => "/aliases",
        "add-group" | "add-member" | "set-policy" | "remove-group" | "remove-member" => "/groups",
        "add-contact" | "remove-contact" => "/contacts",
        "set-route" | "remove-route" => "/routes",
        _ => return forbid(&c, "an unknown change"),
    };
    let routes = page == "/routes";
    if (routes && !s.role.is_admin()) || (!routes && !s.role.changes_address(f.a.trim())) {
        return forbid(&c, "changing names outside your domain");
    }
    let admin = &c.admin;
    let (a, b) = (f.a.clone(), f.b.clone());
    let r = match f.op.as_str() {
        "add-alias" => {
            call(admin.add_alias(req(pb::AliasRequest {
                alias: a,
                target: b,
            })))
            .await
        }
        "remove-alias" => {
            call(admin.remove_alias(req(pb::AliasRequest {
                alias: a,
                target: b,
            })))
            .await
        }
        "add-group" => {
            call(admin.add_group(req(pb::GroupRequest {
                address: a,
                policy: b,
            })))
            .await
        }
        "remove-group" => {
            call(admin.remove_group(req(pb::GroupRequest {
                address: a,
                policy: b,
            })))
            .await
        }
        "set-policy" => {
            call(admin.set_group_policy(req(pb::GroupRequest {
                address: a,
                policy: b,
            })))
            .await
        }
        "add-member" => {
            call(admin.add_group_member(req(pb::GroupMemberRequest {
                group: a,
                member: b,
            })))
            .await
        }
        "remove-member" => {
            call(admin.remove_group_member(req(pb::GroupMemberRequest {
                group: a,
                member: b,
            })))
            .await
        }
        "add-contact" => {
            call(admin.add_contact(req(pb::ContactInfo {
                address: a,
                external: b,
            })))
            .await
        }
        "remove-contact" => {
            call(admin.remove_contact(req(pb::ContactInfo {
                address: a,
                external: b,
            })))
            .await
        }
        "set-route" => match f.port.trim().parse::<u32>() {
            Ok(port) => {
                let r = pb::RouteInfo {
                    domain: a,
                    host: b,
                    port,
                    tls: f.tls,
                    ..Default::default()
                };
                call(admin.set_route(req(r))).await
            }
            Err(_) => {
                let err = FormError::new("add", "port", "the port is a number from 1 to 65535");
                return render(
                    &c,
                    &s,
                    page,
                    &ListQuery::default(),
                    Shown {
                        ok: None,
                        err: Some(err),
                    },
                )
                .await;
            }
        },
        _ => call(admin.remove_route(req(pb::DomainRequest { name: a }))).await,
    };
    match r {
        Ok(_) => done(
            &c,
            page,
            &format!("Done: {} {}.", f.op.replace('-', " "), f.a.trim()),
        ),
        Err(e) => {
            let form = if f.op.starts_with("remove") {
                "row"
            } else {
                "add"
            };
            let fields: &[(&'static str, &[&str])] = &[
                ("a", &[]),
                ("b", &["target", "member", "policy", "external", "host"]),
                ("port", &["port"]),
            ];
            let mut err = FormError::from_status(form, fields, &e);
            if form == "add"
                && err.field == "a"
                && e.message().to_lowercase().contains(&f.b.to_lowercase())
                && !f.b.is_empty()
            {
                err.field = "b";
            }
            render(
                &c,
                &s,
                page,
                &ListQuery::default(),
                Shown {
                    ok: None,
                    err: Some(err),
                },
            )
            .await
        }
    }
}

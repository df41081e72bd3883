//! Domains: listed with their kind and users; added, removed and their kind set by
//! administrators; a domain administrator sees their own.
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
        .route("/domains", get(list))
        .route("/domains/add", post(add))
        .route("/domains/remove", post(remove))
        .route("/domains/kind", post(kind))
}

/// Which domains to list: those containing `q`, a page from `from`.
#[derive(Deserialize, Default)]
struct Find {
    #[serde(default)]
    q: String,
    #[serde(default)]
    from: usize,
    ok: Option<String>,
}

async fn list(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(f): Query<Find>,
) -> Response {
    let shown = Shown {
        ok: f.ok.clone(),
        err: None,
    };
    render(&c, &s, shown, "", &f).await
}

async fn render(c: &Console, s: &Signed, shown: Shown, name: &str, find: &Find) -> Response {
    let list = match call(c.admin.list_domains(req(pb::Empty {}))).await {
        Ok(l) => l,
        Err(e) => return failed(c, s, "/domains", "Domains", &e),
    };
    let mine: Vec<pb::DomainInfo> = list
        .domains
        .into_iter()
        .filter(|d| s.role.sees_domain(&d.name))
        .collect();
    let (domains, total, next) = page_of(mine, &find.q, |d| d.name.clone(), find.from);
    let query = serde_urlencoded::to_string([("q", find.q.as_str())]).unwrap_or_default();
    let err = shown.err.as_ref();
    let admin = s.role.is_admin();
    let body = html! {
        (notice(shown.ok.as_deref()))
        @if admin {
            form method="post" action=(c.url("/domains/add")) id="add-domain" {
                (csrf(s))
                fieldset { (field(err, "add-domain", "name", "Domain", name, "text")) button type="submit" { "Add domain" } }
            }
        }
        form method="get" action=(c.url("/domains")) id="search" {
            fieldset { label { "Containing " input name="q" value=(find.q); } button type="submit" { "Show" } }
        }
        (pager(c, "/domains", &query, total, find.from, next))
        table #domains {
            tr { th { "Domain" } th { "Kind" } th { "Catch-all" } th { "Users" } th {} }
            @for d in &domains {
                tr {
                    td { a href=(c.url(&format!("/users?domain={}", d.name))) { (d.name) } }
                    td { (d.kind) } td { (d.catch_all) } td { (d.users) }
                    td {
                        @if admin {
                            form.inline method="post" action=(c.url("/domains/kind")) {
                                (csrf(s))
                                input type="hidden" name="name" value=(d.name);
                                select name="kind" {
                                    @for k in ["authoritative", "shared", "relay"] { option selected[k == d.kind] { (k) } }
                                }
                                " catch-all " input name="catch_all" value=(d.catch_all) size="18";
                                button type="submit" { "Set" }
                            }
                            " "
                            (button(c, s, "/domains/remove", &[("name", &d.name)], "Remove"))
                            @if let Some(e) = err.filter(|e| e.field == "row" && e.form == "domain-row") {
                                span.err { (e.message) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(c, s, "/domains", "Domains", body)
}

#[derive(Deserialize)]
struct Name {
    name: String,
}

async fn add(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Name>,
) -> Response {
    if !s.role.is_admin() {
        return forbid(&c, "adding a domain");
    }
    let r = call(c.admin.add_domain(req(pb::DomainRequest {
        name: f.name.clone(),
    })))
    .await;
    match r {
        Ok(_) => done(&c, "/domains", &format!("Domain {} added.", f.name.trim())),
        Err(e) => {
            let err = FormError::from_status("add-domain", &[("name", &[])], &e);
            render(
                &c,
                &s,
                Shown {
                    ok: None,
                    err: Some(err),
                },
                &f.name,
                &Find::default(),
            )
            .await
        }
    }
}

async fn remove(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Name>,
) -> Response {
    if !s.role.is_admin() {
        return forbid(&c, "removing a domain");
    }
    match call(c.admin.remove_domain(req(pb::DomainRequest {
        name: f.name.clone(),
    })))
    .await
    {
        Ok(_) => done(&c, "/domains", &format!("Domain {} removed.", f.name)),
        Err(e) => {
            let err = FormError::new("domain-row", "row", layout::say(&e));
            render(
                &c,
                &s,
                Shown {
                    ok: None,
                    err: Some(err),
                },
                "",
                &Find::default(),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct Kind {
    name: String,
    kind: String,
    #[serde(default)]
    catch_all: String,
}

async fn kind(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Kind>,
) -> Response {
    if !s.role.is_admin() {
        return forbid(&c, "changing a domain's kind");
    }
    let r = pb::DomainKindRequest {
        name: f.name.clone(),
        kind: f.kind,
        catch_all: f.catch_all,
    };
    match call(c.admin.set_domain_kind(req(r))).await {
        Ok(_) => done(&c, "/domains", &format!("Domain {} changed.", f.name)),
        Err(e) => {
            let err = FormError::new("domain-row", "row", layout::say(&e));
            render(
                &c,
                &s,
                Shown {
                    ok: None,
                    err: Some(err),
                },
                "",
                &Find::default(),
            )
            .await
        }
    }
}

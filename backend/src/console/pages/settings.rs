//! Quarantine (release, delete), DKIM keys (add, rotate, activate, remove; the TXT records
//! to publish) and operators (administrators only).
use super::{call, done, failed, req, Notice, Shown};
use crate::console::layout::{self, button, bytes, csrf, field, notice, when, FormError};
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
        .route("/quarantine", get(quarantine))
        .route("/dkim", get(dkim))
        .route("/operators", get(operators))
        .route("/settings/change", post(change))
}

async fn quarantine(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<Notice>,
) -> Response {
    quarantine_page(
        &c,
        &s,
        Shown {
            ok: q.ok,
            err: None,
        },
    )
    .await
}

fn held_visible(s: &Signed, e: &pb::QuarantineEntry) -> bool {
    s.role.domain().is_none() || e.recipients.iter().any(|r| s.role.sees_address(r))
}

async fn quarantine_page(c: &Console, s: &Signed, shown: Shown) -> Response {
    let list = match call(c.admin.list_quarantine(req(pb::Empty {}))).await {
        Ok(l) => l,
        Err(e) => return failed(c, s, "/quarantine", "Quarantine", &e),
    };
    let body = html! {
        (notice(shown.ok.as_deref()))
        @if let Some(e) = &shown.err { p.bad { (e.message) } }
        table #quarantine {
            tr { th { "Id" } th { "Held since" } th { "From" } th { "To" } th { "Client" } th { "Size" } th { "Reason" } th {} }
            @for e in list.entries.iter().filter(|e| held_visible(s, e)) {
                tr { td { (e.id) } td { (when(e.created_unix)) } td { (e.mail_from) } td { (e.recipients.join(", ")) }
                    td { (e.client_address) } td { (bytes(e.size)) } td { (e.reason) }
                    td { (button(c, s, "/settings/change", &[("op", "release"), ("a", &e.id.to_string())], "Release"))
                         " " (button(c, s, "/settings/change", &[("op", "delete"), ("a", &e.id.to_string())], "Delete")) } }
            }
        }
    };
    layout::page(c, s, "/quarantine", "Quarantine", body)
}

#[derive(Deserialize, Default)]
struct DomainQuery {
    #[serde(default)]
    domain: String,
    ok: Option<String>,
}

async fn dkim(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<DomainQuery>,
) -> Response {
    dkim_page(
        &c,
        &s,
        &q.domain,
        Shown {
            ok: q.ok,
            err: None,
        },
    )
    .await
}

async fn dkim_page(c: &Console, s: &Signed, domain: &str, shown: Shown) -> Response {
    let domain = s.role.filter(domain.trim()).to_string();
    let keys = match call(c.admin.list_dkim_keys(req(pb::DomainRequest {
        name: domain.clone(),
    })))
    .await
    {
        Ok(k) => k.keys,
        Err(e) => return failed(c, s, "/dkim", "DKIM keys", &e),
    };
    let err = shown.err.as_ref();
    let body = html! {
        (notice(shown.ok.as_deref()))
        form method="post" action=(c.url("/settings/change")) id="add-key" {
            (csrf(s)) input type="hidden" name="op" value="add-key";
            fieldset {
                (field(err, "dkim", "a", "Domain", &domain, "text"))
                label { "Algorithm " select name="b" { option value="rsa" { "rsa (2048)" } option value="ed25519" { "ed25519" } } }
                button type="submit" { "Add key" } " "
                button type="submit" name="op" value="rotate" { "Rotate (new keys as next)" } " "
                button type="submit" name="op" value="activate" { "Activate next keys" }
            }
        }
        table #dkim {
            tr { th { "Domain" } th { "Selector" } th { "Algorithm" } th { "State" } th { "Publish as TXT" } th {} }
            @for k in &keys {
                tr { td { (k.domain) } td { (k.selector) } td { (k.algorithm) } td { (k.state) }
                    td { code { (k.record_name) } br; code.record { (k.record) } }
                    td { (button(c, s, "/settings/change", &[("op", "remove-key"), ("a", &k.domain), ("b", &k.selector)], "Remove")) } }
            }
        }
    };
    layout::page(c, s, "/dkim", "DKIM keys", body)
}

async fn operators(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<Notice>,
) -> Response {
    if !s.role.is_admin() {
        return forbid(&c, "managing operators");
    }
    operators_page(
        &c,
        &s,
        Shown {
            ok: q.ok,
            err: None,
        },
    )
    .await
}

async fn operators_page(c: &Console, s: &Signed, shown: Shown) -> Response {
    let list = match call(c.admin.list_operators(req(pb::Empty {}))).await {
        Ok(l) => l,
        Err(e) => return failed(c, s, "/operators", "Operators", &e),
    };
    let err = shown.err.as_ref();
    let body = html! {
        (notice(shown.ok.as_deref()))
        form method="post" action=(c.url("/settings/change")) id="add-operator" {
            (csrf(s)) input type="hidden" name="op" value="add-operator";
            fieldset {
                (field(err, "operator", "a", "Name", "", "text"))
                (field(err, "operator", "b", "Password", "", "password"))
                (field(err, "operator", "role", "Role (admin, readonly, domain:NAME)", "readonly", "text"))
                button type="submit" { "Add operator" }
            }
        }
        table #operators {
            tr { th { "Name" } th { "Role" } th { "Since" } th {} }
            @for o in &list.operators {
                tr { td { (o.name) } td { (o.role) } td { (when(o.created_unix)) }
                    td { (button(c, s, "/settings/change", &[("op", "remove-operator"), ("a", &o.name)], "Remove")) } }
            }
        }
    };
    layout::page(c, s, "/operators", "Operators", body)
}

#[derive(Deserialize, Default)]
struct Change {
    op: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
    #[serde(default)]
    role: String,
}

async fn change(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Change>,
) -> Response {
    match f.op.as_str() {
        "release" | "delete" => held(&c, &s, &f).await,
        "add-key" | "rotate" | "activate" | "remove-key" => keys(&c, &s, &f).await,
        "add-operator" | "remove-operator" if s.role.is_admin() => ops(&c, &s, &f).await,
        _ => forbid(&c, "this change"),
    }
}

async fn held(c: &Console, s: &Signed, f: &Change) -> Response {
    if s.role.domain().is_some() {
        let list = call(c.admin.list_quarantine(req(pb::Empty {})))
            .await
            .map(|l| l.entries)
            .unwrap_or_default();
        if !list
            .iter()
            .any(|e| e.id.to_string() == f.a && held_visible(s, e))
        {
            return forbid(c, "a quarantined message of another domain");
        }
    }
    let q = || req(pb::QuarantineRequest { id: f.a.clone() });
    let r = match f.op.as_str() {
        "release" => call(c.admin.release_quarantine(q()))
            .await
            .map(|r| format!("Released as {}.", r.queue_id)),
        _ => call(c.admin.delete_quarantine(q()))
            .await
            .map(|_| format!("Quarantined message {} deleted.", f.a)),
    };
    match r {
        Ok(what) => done(c, "/quarantine", &what),
        Err(e) => {
            quarantine_page(
                c,
                s,
                Shown {
                    ok: None,
                    err: Some(FormError::new("row", "", layout::say(&e))),
                },
            )
            .await
        }
    }
}

async fn keys(c: &Console, s: &Signed, f: &Change) -> Response {
    if !s.role.sees_domain(f.a.trim()) {
        return forbid(c, "keys of another domain");
    }
    let k = || {
        req(pb::DkimKeyRequest {
            domain: f.a.clone(),
            selector: if f.op == "remove-key" {
                f.b.clone()
            } else {
                String::new()
            },
            algorithm: f.b.clone(),
        })
    };
    let r = match f.op.as_str() {
        "add-key" => call(c.admin.add_dkim_key(k()))
            .await
            .map(|k| format!("Key {} added: publish its record.", k.selector)),
        "rotate" => call(c.admin.rotate_dkim_keys(k())).await.map(|l| {
            format!(
                "{} new key(s): publish their records, then activate.",
                l.keys.len()
            )
        }),
        "activate" => call(
            c.admin
                .activate_dkim_keys(req(pb::DomainRequest { name: f.a.clone() })),
        )
        .await
        .map(|_| "Next keys active.".to_string()),
        _ => call(c.admin.remove_dkim_key(k()))
            .await
            .map(|_| format!("Key {} removed.", f.b)),
    };
    let back = format!("/dkim?domain={}", f.a.trim());
    match r {
        Ok(what) => done(c, &back, &what),
        Err(e) => {
            dkim_page(
                c,
                s,
                &f.a,
                Shown {
                    ok: None,
                    err: Some(FormError::from_status("dkim", &[("a", &[])], &e)),
                },
            )
            .await
        }
    }
}

async fn ops(c: &Console, s: &Signed, f: &Change) -> Response {
    let r = match f.op.as_str() {
        "add-operator" => {
            let o = pb::OperatorRequest {
                name: f.a.clone(),
                password: f.b.clone(),
                role: f.role.clone(),
            };
            call(c.admin.add_operator(req(o)))
                .await
                .map(|_| format!("Operator {} added.", f.a.trim()))
        }
        _ => {
            let o = pb::OperatorRequest {
                name: f.a.clone(),
                ..Default::default()
            };
            call(c.admin.remove_operator(req(o)))
                .await
                .map(|_| format!("Operator {} removed.", f.a))
        }
    };
    match r {
        Ok(what) => done(c, "/operators", &what),
        Err(e) => {
            let fields: &[(&'static str, &[&str])] = &[
                ("a", &["name"]),
                ("b", &["password"]),
                ("role", &["role", "domain"]),
            ];
            operators_page(
                c,
                s,
                Shown {
                    ok: None,
                    err: Some(FormError::from_status("operator", fields, &e)),
                },
            )
            .await
        }
    }
}

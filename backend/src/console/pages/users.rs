//! Users: a page of 100 at a time (searched, walked by address: as fast at 100,000 users as
//! at 100), added; one user's page with quota usage, password reset, quota and removal.
use super::{call, done, failed, req, Shown};
use crate::console::layout::{self, bytes, csrf, field, notice, FormError};
use crate::console::session::{forbid, Signed};
use crate::console::Console;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use bridgehead_proto::v1 as pb;
use maud::{html, Markup};
use serde::Deserialize;

const PAGE: u32 = 100;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/users", get(list))
        .route("/users/add", post(add))
        .route("/user/{address}", get(one))
        .route("/users/password", post(password))
        .route("/users/quota", post(quota))
        .route("/users/remove", post(remove))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
    ok: Option<String>,
}

async fn list(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Query(q): Query<ListQuery>,
) -> Response {
    let shown = Shown {
        ok: q.ok.clone(),
        err: None,
    };
    render(&c, &s, &q, shown, &AddUser::default()).await
}

fn quota_bar(u: &pb::UserInfo) -> Markup {
    match u.quota_bytes {
        Some(q) if q > 0 => {
            let pct = (u.used_bytes as f64 * 100.0 / q as f64).min(100.0);
            html! {
                span.bar title={(format!("{pct:.0}%"))} { span style={"width:" (format!("{pct:.0}")) "%"} {} }
                " " (bytes(u.used_bytes)) " of " (bytes(q))
            }
        }
        _ => html! { (bytes(u.used_bytes)) " (no quota)" },
    }
}

async fn render(c: &Console, s: &Signed, q: &ListQuery, shown: Shown, form: &AddUser) -> Response {
    let domain = s.role.filter(q.domain.trim()).to_string();
    let asked = pb::ListUsersRequest {
        domain: domain.clone(),
        search: q.q.clone(),
        after: q.after.clone(),
        limit: PAGE,
    };
    let page = match call(c.admin.list_users(req(asked))).await {
        Ok(p) => p,
        Err(e) => return failed(c, s, "/users", "Users", &e),
    };
    let err = shown.err.as_ref();
    let next = (!page.next.is_empty()).then(|| {
        serde_urlencoded::to_string([
            ("domain", domain.as_str()),
            ("q", q.q.as_str()),
            ("after", page.next.as_str()),
        ])
        .unwrap_or_default()
    });
    let body = html! {
        (notice(shown.ok.as_deref()))
        form method="get" action=(c.url("/users")) id="search-users" {
            fieldset {
                label { "Domain " input name="domain" value=(domain) readonly[s.role.domain().is_some()]; }
                label { "Address contains " input name="q" value=(q.q); }
                button type="submit" { "Search" }
            }
        }
        form method="post" action=(c.url("/users/add")) id="add-user" {
            (csrf(s))
            fieldset {
                (field(err, "add-user", "address", "Address", &form.address, "text"))
                (field(err, "add-user", "password", "Password", "", "password"))
                (field(err, "add-user", "quota", "Quota (MiB, empty: none)", &form.quota, "text"))
                button type="submit" { "Add user" }
            }
        }
        table #users {
            tr { th { "Address" } th { "Messages" } th { "Quota usage" } }
            @for u in &page.users {
                tr {
                    td { a href=(c.url(&format!("/user/{}", u.address))) { (u.address) } }
                    td { (u.messages) } td { (quota_bar(u)) }
                }
            }
        }
        @if page.users.is_empty() { p { "No users match." } }
        @if let Some(n) = next { p { a #next-page href=(c.url(&format!("/users?{n}"))) { "Next " (PAGE) " →" } } }
    };
    layout::page(c, s, "/users", "Users", body)
}

#[derive(Deserialize, Default)]
struct AddUser {
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    quota: String,
}

/// A quota in MiB as typed ("" none) in bytes, or the error to show beside the field.
fn quota_bytes(typed: &str) -> Result<Option<u64>, String> {
    match typed.trim() {
        "" => Ok(None),
        t => t
            .parse::<u64>()
            .ok()
            .and_then(|m| m.checked_mul(1024 * 1024))
            .map(Some)
            .ok_or_else(|| "the quota is a whole number of MiB (or empty for none)".to_string()),
    }
}

const USER_FIELDS: &[(&str, &[&str])] = &[
    ("address", &["address", "domain", "taken", "user"]),
    ("password", &["password"]),
    ("quota", &["quota"]),
];

async fn add(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<AddUser>,
) -> Response {
    let q = ListQuery::default();
    if !s.role.changes_address(f.address.trim()) {
        let err = FormError::new(
            "add-user",
            "address",
            "you may only add users of your own domain",
        );
        return render(
            &c,
            &s,
            &q,
            Shown {
                ok: None,
                err: Some(err),
            },
            &f,
        )
        .await;
    }
    let quota = match quota_bytes(&f.quota) {
        Ok(q) => q,
        Err(m) => {
            return render(
                &c,
                &s,
                &q,
                Shown {
                    ok: None,
                    err: Some(FormError::new("add-user", "quota", m)),
                },
                &f,
            )
            .await
        }
    };
    let r = pb::AddUserRequest {
        address: f.address.clone(),
        password: f.password.clone(),
        quota_bytes: quota,
    };
    match call(c.admin.add_user(req(r))).await {
        Ok(u) => done(&c, "/users", &format!("User {} added.", u.address)),
        Err(e) => {
            let err = FormError::from_status("add-user", USER_FIELDS, &e);
            render(
                &c,
                &s,
                &q,
                Shown {
                    ok: None,
                    err: Some(err),
                },
                &f,
            )
            .await
        }
    }
}

async fn one(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Path(address): Path<String>,
    Query(q): Query<super::Notice>,
) -> Response {
    show(
        &c,
        &s,
        &address,
        Shown {
            ok: q.ok,
            err: None,
        },
    )
    .await
}

async fn show(c: &Console, s: &Signed, address: &str, shown: Shown) -> Response {
    if !s.role.sees_address(address) {
        return forbid(c, "opening a user of another domain");
    }
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d).to_string();
    let asked = pb::ListUsersRequest {
        domain,
        search: address.to_string(),
        after: String::new(),
        limit: 10,
    };
    let found = match call(c.admin.list_users(req(asked))).await {
        Ok(l) => l
            .users
            .into_iter()
            .find(|u| u.address.eq_ignore_ascii_case(address)),
        Err(e) => return failed(c, s, "/users", "User", &e),
    };
    let Some(u) = found else {
        let body = html! { p.bad { "No such user: " (address) } };
        return layout::page(c, s, "/users", "User", body);
    };
    let err = shown.err.as_ref();
    let quota_mib = u
        .quota_bytes
        .map(|q| (q / (1024 * 1024)).to_string())
        .unwrap_or_default();
    let body = html! {
        (notice(shown.ok.as_deref()))
        table #user {
            tr { th { "Address" } td #user-address { (u.address) } }
            tr { th { "Messages" } td { (u.messages) } }
            tr { th { "Quota usage" } td { (quota_bar(&u)) } }
        }
        form method="post" action=(c.url("/users/password")) id="reset-password" {
            (csrf(s)) input type="hidden" name="address" value=(u.address);
            fieldset { (field(err, "reset-password", "password", "New password", "", "password")) button type="submit" { "Reset password" } }
        }
        form method="post" action=(c.url("/users/quota")) id="set-quota" {
            (csrf(s)) input type="hidden" name="address" value=(u.address);
            fieldset { (field(err, "set-quota", "quota", "Quota (MiB, empty: none)", &quota_mib, "text")) button type="submit" { "Set quota" } }
        }
        form method="post" action=(c.url("/users/remove")) id="remove-user" {
            (csrf(s)) input type="hidden" name="address" value=(u.address);
            fieldset { "Removes the user, their mailbox and aliases. " button type="submit" { "Remove user" }
                @if let Some(e) = err.filter(|e| e.form == "remove-user") { span.err { (e.message) } } }
        }
    };
    layout::page(c, s, "/users", &format!("User {}", u.address), body)
}

#[derive(Deserialize)]
struct Change {
    address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    quota: String,
}

async fn password(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Change>,
) -> Response {
    if !s.role.changes_address(&f.address) {
        return forbid(&c, "changing a user of another domain");
    }
    let r = pb::SetPasswordRequest {
        address: f.address.clone(),
        password: f.password,
    };
    match call(c.admin.set_password(req(r))).await {
        Ok(_) => done(&c, &format!("/user/{}", f.address), "Password reset."),
        Err(e) => {
            let err = FormError::from_status("reset-password", &[("password", &[])], &e);
            show(
                &c,
                &s,
                &f.address,
                Shown {
                    ok: None,
                    err: Some(err),
                },
            )
            .await
        }
    }
}

async fn quota(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Change>,
) -> Response {
    if !s.role.changes_address(&f.address) {
        return forbid(&c, "changing a user of another domain");
    }
    let quota = match quota_bytes(&f.quota) {
        Ok(q) => q,
        Err(m) => {
            return show(
                &c,
                &s,
                &f.address,
                Shown {
                    ok: None,
                    err: Some(FormError::new("set-quota", "quota", m)),
                },
            )
            .await
        }
    };
    let r = pb::SetQuotaRequest {
        address: f.address.clone(),
        quota_bytes: quota,
    };
    match call(c.admin.set_quota(req(r))).await {
        Ok(_) => done(&c, &format!("/user/{}", f.address), "Quota set."),
        Err(e) => {
            let err = FormError::from_status("set-quota", &[("quota", &[])], &e);
            show(
                &c,
                &s,
                &f.address,
                Shown {
                    ok: None,
                    err: Some(err),
                },
            )
            .await
        }
    }
}

async fn remove(
    State(c): State<Console>,
    Extension(s): Extension<Signed>,
    Form(f): Form<Change>,
) -> Response {
    if !s.role.changes_address(&f.address) {
        return forbid(&c, "removing a user of another domain");
    }
    match call(c.admin.remove_user(req(pb::UserRequest {
        address: f.address.clone(),
    })))
    .await
    {
        Ok(_) => done(&c, "/users", &format!("User {} removed.", f.address)),
        Err(e) => {
            let err = FormError::new("remove-user", "", layout::say(&e));
            show(
                &c,
                &s,
                &f.address,
                Shown {
                    ok: None,
                    err: Some(err),
                },
            )
            .await
        }
    }
}

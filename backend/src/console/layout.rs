//! The page shell (navigation, sign-out, styles) and the pieces every page uses: fields with
//! their errors beside them, hidden CSRF fields, the one map from an Admin error to what the
//! operator reads. maud escapes every value interpolated into a page.
use super::session::Signed;
use super::Console;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
header{background:#1f3a5f;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
header a{color:#dfe8f5;text-decoration:none}header a.on{color:#fff;font-weight:600;border-bottom:2px solid #7fb2ff}
header .who{margin-left:auto}main{padding:1em 1.5em;max-width:1200px}
h1{font-size:1.4em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff;width:100%;margin:.5em 0}
th,td{border:1px solid #d5dbe5;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#e9eef5}
form.inline{display:inline}fieldset{border:1px solid #d5dbe5;background:#fff;margin:.6em 0;padding:.6em}
label{display:inline-block;margin:.2em .8em .2em 0}input,select{padding:.2em}
.err{color:#a40000;font-weight:600;margin-left:.4em}.ok{background:#e3f6e3;border:1px solid #9c9;padding:.4em .6em}
.bad{background:#fde8e8;border:1px solid #d99;padding:.4em .6em}.bar{background:#e3e8ef;width:10em;height:.8em;display:inline-block}
.bar span{background:#3b7ddd;height:100%;display:block}.up{color:#176317}.down{color:#a40000}
.tabs a{margin-right:1em}.tabs a.on{font-weight:600}pre{white-space:pre-wrap;background:#fff;border:1px solid #d5dbe5;padding:.5em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;border:1px solid #d5dbe5;padding:.6em 1em;min-width:10em}
.card b{font-size:1.5em;display:block}";

/// The sections of the navigation: (path, title, administrators only).
const NAV: [(&str, &str, bool); 13] = [
    ("/", "Overview", false),
    ("/domains", "Domains", false),
    ("/users", "Users", false),
    ("/aliases", "Aliases", false),
    ("/groups", "Groups", false),
    ("/contacts", "Contacts", false),
    ("/routes", "Routes", true),
    ("/queue", "Queue", false),
    ("/tracking", "Tracking", false),
    ("/connectors", "Connectors", false),
    ("/quarantine", "Quarantine", false),
    ("/dkim", "DKIM keys", false),
    ("/operators", "Operators", true),
];

/// A whole page for a signed-in operator.
pub fn page(c: &Console, s: &Signed, active: &str, title: &str, body: Markup) -> Response {
    let shown = NAV
        .iter()
        .filter(|(_, _, admin)| !admin || s.role.is_admin());
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { (title) " — Bridgehead console" }
                    link rel="icon" href="data:,";
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header {
                        strong { "Bridgehead" }
                        @for (path, name, _) in shown {
                            a.on[*path == active] href=(c.url(path)) { (name) }
                        }
                        span.who {
                            (s.operator) " (" (s.role.as_string()) ") "
                            form.inline method="post" action=(c.url("/logout")) {
                                (csrf(s))
                                button type="submit" id="sign-out" { "Sign out" }
                            }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

/// The sign-in page.
pub fn login(c: &Console, token: &str, name: &str, error: Option<&str>) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "Sign in — Bridgehead console" }
                    link rel="icon" href="data:,";
                    style { (PreEscaped(STYLE)) }
                }
                body { main {
                    h1 { "Bridgehead console" }
                    form method="post" action=(c.url("/login")) id="login" {
                        input type="hidden" name="csrf" value=(token);
                        fieldset {
                            label { "Operator " input name="operator" value=(name) autocomplete="username"; }
                            label { "Password " input name="password" type="password" autocomplete="current-password"; }
                            @if let Some(e) = error { span.err id="login-error" { (e) } }
                            br;
                            button type="submit" { "Sign in" }
                        }
                        p { "First sign-in: leave Operator empty and give the admin token as the password; then add operators (" code { "bridgehead admin operator add" } " or the Operators page)." }
                    }
                } }
            }
        }
        .into_string(),
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf(s: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// An error of a form, shown beside the field it is about.
#[derive(Debug, Clone, Default)]
pub struct FormError {
    pub form: &'static str,
    pub field: &'static str,
    pub message: String,
}

impl FormError {
    /// The error for `form` from an Admin call's status: the field is the one the message
    /// names among `fields` (`(name, words that point at it)`), else the first.
    pub fn from_status(
        form: &'static str,
        fields: &[(&'static str, &[&str])],
        e: &tonic::Status,
    ) -> FormError {
        let text = say(e);
        let lower = text.to_lowercase();
        let field = fields
            .iter()
            .find(|(_, words)| words.iter().any(|w| lower.contains(w)))
            .or(fields.first())
            .map_or("", |(f, _)| *f);
        FormError {
            form,
            field,
            message: text,
        }
    }

    pub fn new(form: &'static str, field: &'static str, message: impl Into<String>) -> FormError {
        FormError {
            form,
            field,
            message: message.into(),
        }
    }
}

/// What the operator reads for an Admin error: its message, which says what to fix.
pub fn say(e: &tonic::Status) -> String {
    match e.code() {
        tonic::Code::Unavailable | tonic::Code::Internal => {
            format!("The store could not do it now: {}", e.message())
        }
        _ => e.message().to_string(),
    }
}

/// A labelled input with its error beside it when `err` is about it.
pub fn field(
    err: Option<&FormError>,
    form: &str,
    name: &'static str,
    label: &str,
    value: &str,
    kind: &str,
) -> Markup {
    let e = err.filter(|e| e.form == form && e.field == name);
    html! {
        label {
            (label) " "
            input name=(name) type=(kind) value=(value) aria-invalid=[e.map(|_| "true")];
            @if let Some(e) = e { span.err data-field=(name) { (e.message) } }
        }
    }
}

/// A one-button form posting `fields` (hidden) to `action`.
pub fn button(
    c: &Console,
    s: &Signed,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
) -> Markup {
    html! {
        form.inline method="post" action=(c.url(action)) {
            (csrf(s))
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button type="submit" { (label) }
        }
    }
}

/// A notice above a page's content: what was just done (`ok`).
pub fn notice(ok: Option<&str>) -> Markup {
    html! { @if let Some(ok) = ok { p.ok id="notice" { (ok) } } }
}

/// 403 with a page that says why.
pub fn refused(c: &Console, why: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" { head { meta charset="utf-8"; title { "Refused" } link rel="icon" href="data:,"; style { (PreEscaped(STYLE)) } }
        body { main { h1 { "Refused" } p.bad id="refused" { (why) } p { a href=(c.url("/")) { "Back to the console" } } } } }
    };
    (StatusCode::FORBIDDEN, Html(body.into_string())).into_response()
}

/// 503: the store did not answer.
pub fn unavailable(why: &str) -> Response {
    tracing::warn!(error = why, "console request failed");
    let body = html! { p { "The store is not available right now; try again in a moment." } };
    (StatusCode::SERVICE_UNAVAILABLE, Html(body.into_string())).into_response()
}

/// A byte count for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut i) = (n as f64, 0);
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A duration in seconds for people.
pub fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A time for people (UTC).
pub fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

//! Signing in and out, the session cookie, and the CSRF check every POST passes.
//!
//! Invariants: the cookie holds 32 random bytes (base64url); PostgreSQL holds only their
//! SHA-256, so a copy of the table signs nobody in. Cookies are `HttpOnly`,
//! `SameSite=Strict`, scoped to the console's path, and `Secure` when the console is
//! reached over TLS (its own, or a proxy's that says `X-Forwarded-Proto: https`). A session
//! ends 30 minutes after its last use and 12 hours after sign-in at the latest. Sign-in
//! failures count against the client address and the operator name in the same counters as
//! POP3 and SMTP logins (`auth_failures`): the same growing delay before the answer, and
//! an address locked out for mail logins is locked out here too. The sign-in form is
//! protected by a double-submitted token (cookie and form field must match).
use super::layout;
use super::{Console, Peer, Role};
use crate::store::{AuthKeys, SessionLife, SessionRow};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use base64::Engine;

const COOKIE: &str = "bh_session";
const LOGIN_COOKIE: &str = "bh_login";
pub const LIFE: SessionLife = SessionLife {
    idle_secs: 30 * 60,
    absolute_secs: 12 * 3600,
};
/// Form bodies read at most (a form is small; an upload is not a form here).
const MAX_FORM: usize = 256 * 1024;

/// The signed-in operator of a request.
#[derive(Debug, Clone)]
pub struct Signed {
    pub operator: String,
    pub role: Role,
    pub csrf: String,
}

fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    // The system's random source failing is not survivable for a session token.
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the browser reached us over TLS (ours or a proxy's).
fn secure(c: &Console, headers: &HeaderMap) -> bool {
    c.tls
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn set_cookie(c: &Console, headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> String {
    let path = if c.prefix.is_empty() { "/" } else { &c.prefix };
    let secure = if secure(c, headers) { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Middleware on every page but the sign-in: finds the session (else sends the browser to
/// sign in) and, for a POST, checks the form's CSRF token before anything else happens.
pub async fn require(State(c): State<Console>, req: Request, next: Next) -> Response {
    let found = match cookie(req.headers(), COOKIE) {
        Some(t) => c.store.session(&token_hash(&t), LIFE).await,
        None => Ok(None),
    };
    let row = match found {
        Ok(Some(row)) => row,
        Ok(None) => return Redirect::to(&c.url("/login")).into_response(),
        Err(e) => return layout::unavailable(&e.to_string()),
    };
    let Some(role) = Role::parse(&row.role) else {
        return layout::refused(&c, "this operator's role is not one the console knows");
    };
    let signed = Signed {
        operator: row.operator,
        role,
        csrf: row.csrf,
    };
    let (parts, body) = req.into_parts();
    let mut req = match parts.method {
        Method::POST => match checked_form(&c, &signed, parts, body).await {
            Ok(req) => req,
            Err(refused) => return refused,
        },
        _ => Request::from_parts(parts, body),
    };
    req.extensions_mut().insert(signed);
    next.run(req).await
}

/// A POST's body, read whole (it is a small form) and given back once its CSRF token is the
/// session's and the operator may change things at all; the refusal otherwise.
async fn checked_form(
    c: &Console,
    signed: &Signed,
    parts: axum::http::request::Parts,
    body: Body,
) -> Result<Request, Response> {
    let sign_out = parts.uri.path().ends_with("/logout");
    if !signed.role.writes() && !sign_out {
        return Err(layout::refused(
            c,
            "Your role (readonly) does not allow changes.",
        ));
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response());
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let given = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if !given.is_some_and(|g| crate::password::constant_eq(g.as_bytes(), signed.csrf.as_bytes())) {
        return Err(layout::refused(
            c,
            "This form was not sent from this console session (its CSRF token is missing or wrong). Reload the page and try again.",
        ));
    }
    if !sign_out {
        // The audit trail: who changed what (the Admin call logs what went wrong, if anything).
        tracing::info!(operator = %signed.operator, path = %parts.uri.path(), "console change");
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The sign-in page, with a fresh double-submit token.
pub async fn login_page(State(c): State<Console>, headers: HeaderMap) -> Response {
    login_form(&c, &headers, None, "")
}

fn login_form(c: &Console, headers: &HeaderMap, error: Option<&str>, name: &str) -> Response {
    let token = random_token();
    let page = layout::login(c, &token, name, error);
    let code = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let cookie = set_cookie(c, headers, LOGIN_COOKIE, &token, 3600);
    (code, [(header::SET_COOKIE, cookie)], page).into_response()
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    #[serde(default)]
    operator: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn sign_in(
    State(c): State<Console>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !crate::password::constant_eq(expected.as_bytes(), f.csrf.as_bytes())
    {
        return login_form(
            &c,
            &headers,
            Some("The sign-in form had expired. Try again."),
            &f.operator,
        );
    }
    let name = f.operator.trim().to_ascii_lowercase();
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = super::access::client(peer.ip(), forwarded, &c.proxies);
    match check(&c, &name, &f.password, &client.to_string()).await {
        Ok(Some(role)) => start(&c, &headers, &name, role).await,
        Ok(None) => login_form(
            &c,
            &headers,
            Some("Wrong operator name or password."),
            &name,
        ),
        Err(e) => layout::unavailable(&e),
    }
}

/// The operator's role when the password is right and the client is not locked out;
/// the failure counted (and its delay waited) otherwise.
async fn check(
    c: &Console,
    name: &str,
    password: &str,
    client: &str,
) -> Result<Option<Role>, String> {
    let who = if name.is_empty() { "admin-token" } else { name };
    let keys = AuthKeys {
        address: format!("ip:{client}"),
        user: format!("operator:{who}"),
        pair: format!("pair:{client}|operator:{who}"),
    };
    let policy = &c.auth;
    let window = policy.window_secs();
    let store = &c.store;
    let failures = store
        .recent_auth_failures(&keys.address, window)
        .await
        .map_err(|e| e.to_string())?;
    let locked = policy.lockout_after > 0 && failures >= policy.lockout_after;
    let role = match name {
        // The admin token signs in as an administrator (for the first sign-in).
        "" => (!c.admin_token.is_empty()
            && crate::password::constant_eq(password.as_bytes(), c.admin_token.as_bytes()))
        .then_some(Role::Admin),
        _ => {
            let found = store
                .operator_login(name)
                .await
                .map_err(|e| e.to_string())?;
            let (hash, role) = found.unzip();
            let ok = crate::auth::verify_bounded(password, hash).await;
            role.filter(|_| ok).and_then(|r| Role::parse(&r))
        }
    };
    if role.is_some() && !locked {
        store
            .forgive_auth_failures(&keys, window, None)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(role);
    }
    let all = [keys.address.as_str(), &keys.user, &keys.pair];
    let n = store
        .record_auth_failures(&all, policy.curve())
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(policy.delay_after(n)).await;
    Ok(None)
}

async fn start(c: &Console, headers: &HeaderMap, name: &str, role: Role) -> Response {
    let token = random_token();
    let operator = if name.is_empty() { "admin-token" } else { name };
    let row = SessionRow {
        operator: operator.to_string(),
        role: role.as_string(),
        csrf: random_token(),
    };
    if let Err(e) = c
        .store
        .create_session(&token_hash(&token), &row, LIFE)
        .await
    {
        return layout::unavailable(&e.to_string());
    }
    tracing::info!(operator, role = %row.role, "console sign-in");
    let session = set_cookie(c, headers, COOKIE, &token, LIFE.absolute_secs);
    let clear = set_cookie(c, headers, LOGIN_COOKIE, "", 0);
    let mut r = Redirect::to(&c.url("/")).into_response();
    for v in [session, clear] {
        if let Ok(v) = v.parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

pub async fn sign_out(State(c): State<Console>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie(&headers, COOKIE) {
        if let Err(e) = c.store.end_session(&token_hash(&t)).await {
            return layout::unavailable(&e.to_string());
        }
    }
    let clear = set_cookie(&c, &headers, COOKIE, "", 0);
    let mut r = Redirect::to(&c.url("/login")).into_response();
    if let Ok(v) = clear.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Refuses a change the operator's role does not allow.
pub fn forbid(c: &Console, what: &str) -> Response {
    layout::refused(c, &format!("Your role does not allow this: {what}."))
}

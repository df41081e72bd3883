//! The console's pages, one file per group, and the routes that reach them.
mod connectors;
mod directory;
mod names;
mod overview;
mod queue;
mod settings;
mod tracking;
mod users;

use super::layout::{self, FormError};
use super::session::{self, Signed};
use super::Console;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// Every route, the session middleware on all but the sign-in page.
pub fn routes(c: Console) -> Router {
    let signed = Router::new()
        .route("/", get(overview::show))
        .route("/logout", post(session::sign_out))
        .merge(directory::routes())
        .merge(users::routes())
        .merge(names::routes())
        .merge(queue::routes())
        .merge(tracking::routes())
        .merge(connectors::routes())
        .merge(settings::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            c.clone(),
            session::require,
        ));
    Router::new()
        .route("/login", get(session::login_page).post(session::sign_in))
        .merge(signed)
        .with_state(c)
}

/// After a change: back to `path` with a notice of what was done (POST, redirect, GET).
pub(super) fn done(c: &Console, path: &str, what: &str) -> Response {
    let ok = serde_urlencoded::to_string([("ok", what)]).unwrap_or_default();
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{}{sep}{ok}", c.url(path))).into_response()
}

/// The result of an Admin call, its reply unwrapped.
pub(super) async fn call<T>(
    f: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    f.await.map(tonic::Response::into_inner)
}

pub(super) fn req<T>(t: T) -> tonic::Request<T> {
    tonic::Request::new(t)
}

/// A request that names its operator (for the tracking record of queue actions).
pub(super) fn req_as<T>(s: &Signed, t: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(t);
    if let Ok(name) = s.operator.parse() {
        r.metadata_mut()
            .insert(crate::grpc::OPERATOR_METADATA, name);
    }
    r
}

/// A page could not be read: say so in its place.
pub(super) fn failed(
    c: &Console,
    s: &Signed,
    active: &str,
    title: &str,
    e: &tonic::Status,
) -> Response {
    let body = maud::html! { p.bad { (layout::say(e)) } };
    layout::page(c, s, active, title, body)
}

/// The notice and error a page shows.
#[derive(Debug, Default)]
pub(super) struct Shown {
    pub ok: Option<String>,
    pub err: Option<FormError>,
}

/// A page's query when it only shows what was just done.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Notice {
    pub ok: Option<String>,
}

/// Rows a listing page shows at most.
pub(super) const PAGE: usize = 100;

/// The `PAGE` items from `from` among those whose `text` contains `q` (any case): the page,
/// how many match in all, and where the next page starts (if one does). For lists a back-end
/// returns whole (a domain's aliases, groups, contacts; the domains): users, the list that
/// grows to 100,000s, are paged by the store instead.
pub(super) fn page_of<T>(
    items: Vec<T>,
    q: &str,
    text: impl Fn(&T) -> String,
    from: usize,
) -> (Vec<T>, usize, Option<usize>) {
    let q = q.trim().to_lowercase();
    let matching: Vec<T> = items
        .into_iter()
        .filter(|i| q.is_empty() || text(i).to_lowercase().contains(&q))
        .collect();
    let total = matching.len();
    let next = (from + PAGE < total).then_some(from + PAGE);
    let page = matching.into_iter().skip(from).take(PAGE).collect();
    (page, total, next)
}

/// The line under a paged list: how many match, which are shown, the link to the next page
/// (`query`: the page's other parameters, url-encoded).
pub(super) fn pager(
    c: &Console,
    path: &str,
    query: &str,
    total: usize,
    from: usize,
    next: Option<usize>,
) -> maud::Markup {
    let last = (from + PAGE).min(total);
    maud::html! {
        p.pager {
            (total) " matching" @if total > 0 { "; showing " (from + 1) "–" (last) }
            @if let Some(n) = next { " " a #next-page href=(c.url(&format!("{path}?{query}&from={n}"))) { "Next " (PAGE) " →" } }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_of_what_matches() {
        let items: Vec<String> = (0..250).map(|n| format!("a{n}@x.test")).collect();
        let (page, total, next) = super::page_of(items.clone(), "", |s| s.clone(), 0);
        assert_eq!((page.len(), total, next), (100, 250, Some(100)));
        let (page, _, next) = super::page_of(items.clone(), "", |s| s.clone(), 200);
        assert_eq!((page.len(), next), (50, None));
        let (page, total, next) = super::page_of(items, "A24", |s| s.clone(), 0);
        assert_eq!((total, next), (11, None), "a24, a240..a249: {page:?}");
    }
}

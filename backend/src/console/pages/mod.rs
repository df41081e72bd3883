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
    let _ = c;
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

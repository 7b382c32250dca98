//! The web interface under `/ui/` (routes, forms and element ids: `docs/ui.md`).
//!
//! Pages are rendered on the server with maud, which escapes every interpolated value.
//! Handlers parse, identify the viewer (a session cookie, else anonymous), and call the same
//! domain functions as `/api/v1` (`crate::manage`, `crate::registry`), so the interface has
//! exactly the API's rights and hides exactly what it hides. Every POST carries the
//! session's CSRF secret. Pages go out with a strict CSP (no inline script or style),
//! `X-Frame-Options: DENY` and `Referrer-Policy`.

mod account;
mod admin;
mod browse;
mod error;
mod flash;
mod fmt;
mod layout;
mod login;
mod manifest;
mod members;
mod oidc;
mod repo;
mod request;
pub mod session;
mod teams;

use axum::{
    Router,
    http::{HeaderMap, StatusCode, header},
    middleware,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

pub use error::UiError;
pub use request::{Fields, Posted, Viewer};

use crate::state::AppState;

pub type UiResult = Result<Response, UiError>;

/// Page size of every list.
pub const PAGE_SIZE: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(browse::collections))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/oidc/{name}/start", get(oidc::start))
        .route("/ui/oidc/{name}/callback", get(oidc::callback))
        .route("/ui/collections", post(browse::create_collection))
        .route("/ui/c/{collection}", get(browse::collection))
        .route("/ui/c/{collection}/visibility", post(browse::visibility))
        .route("/ui/c/{collection}/delete", post(browse::delete))
        .route("/ui/c/{collection}/members", get(members::page).post(members::add))
        .route("/ui/c/{collection}/members/remove", post(members::remove))
        .route("/ui/r/{*path}", get(repo::get).post(repo::post))
        .route("/ui/teams", get(teams::list).post(teams::create))
        .route("/ui/teams/{team}", get(teams::show))
        .route("/ui/teams/{team}/members", post(teams::add_member))
        .route("/ui/teams/{team}/members/remove", post(teams::remove_member))
        .route("/ui/teams/{team}/delete", post(teams::delete))
        .route("/ui/tokens", get(account::tokens).post(account::create_token))
        .route("/ui/tokens/revoke", post(account::revoke_token))
        .route("/ui/account", get(account::page))
        .route("/ui/account/password", post(account::password))
        .route("/ui/users", get(admin::users).post(admin::create_user))
        .route("/ui/users/{username}", post(admin::update_user))
        .route("/ui/static/app.css", get(css))
        .route("/ui/static/app.js", get(js))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn(error::render))
        .route("/", get(root))
}

/// `/` sends browsers to the interface; other clients get the 404 they always got.
async fn root(headers: HeaderMap) -> Response {
    let html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if html { Redirect::to("/ui/").into_response() } else { StatusCode::NOT_FOUND.into_response() }
}

async fn not_found(_v: Viewer) -> UiResult {
    Err(UiError::NotFound)
}

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

async fn css() -> Response {
    static_asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    static_asset("text/javascript; charset=utf-8", JS)
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("public, max-age=3600"));
    r
}

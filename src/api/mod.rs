//! The management API under `/api/v1` (DESIGN §8): JSON in and out, authenticated by an
//! API token (Bearer) or Basic (password or API token). Handlers parse, authenticate and
//! call `crate::manage`; errors leave as `{"error","message"}` with the §8 status codes.

mod collections;
pub mod openapi;
mod people;

use axum::{
    Json, Router,
    body::Bytes,
    extract::FromRequestParts,
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use self::openapi::ErrorBody;

use crate::{
    auth::{
        credentials::CredentialError,
        http::{basic, client_ip},
        throttle::LoginError,
    },
    manage::{Actor, ManageError, Manager},
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new().merge(people::routes()).merge(collections::routes()).merge(openapi::routes())
}

#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    Throttled(u64),
    /// The directory holding the caller's account does not answer.
    Unavailable,
    Manage(ManageError),
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        ApiError::Manage(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, message) = match self {
            ApiError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid credentials".to_owned())
            }
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the directory is unavailable; try again later".to_owned(),
            ),
            ApiError::Throttled(secs) => {
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(ErrorBody { error: "too_many_requests".into(), message: "too many failed logins".into() }),
                )
                    .into_response();
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return r;
            }
            ApiError::Manage(e) => match e {
                ManageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
                ManageError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "not allowed".to_owned()),
                ManageError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", format!("{m} not found")),
                ManageError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
                ManageError::Internal(e) => {
                    crate::ops::metrics::internal_error(&e);
                    tracing::error!(error = format!("{e:#}"), "management API error");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error".to_owned())
                }
            },
        };
        (status, Json(ErrorBody { error: error.to_owned(), message })).into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// The authenticated caller of one request (an extractor).
pub struct Ctx {
    pub app: AppState,
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    /// Authenticates the request; a read-only token may only GET.
    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Ctx, ApiError> {
        let headers = &parts.headers;
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let who = if let Some(token) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) {
            app.tokens.api_token(token.trim()).await.map_err(|e| match e {
                CredentialError::Invalid => ApiError::Unauthorized,
                CredentialError::Unavailable => ApiError::Unavailable,
                CredentialError::Busy(_) => ApiError::Throttled(crate::auth::password::BUSY_RETRY_SECS),
                CredentialError::Internal(e) => ApiError::Manage(ManageError::Internal(e)),
            })?
        } else if let Some((u, p)) = basic(headers) {
            app.tokens.login(&u, &p, client_ip(&parts.extensions)).await.map_err(|e| match e {
                LoginError::Invalid => ApiError::Unauthorized,
                LoginError::Unavailable => ApiError::Unavailable,
                LoginError::Throttled(s) => ApiError::Throttled(s),
                LoginError::Internal(e) => ApiError::Manage(ManageError::Internal(e)),
            })?
        } else {
            return Err(ApiError::Unauthorized);
        };
        crate::ops::context::set_principal(&who.user.username);
        if who.read_only && parts.method != Method::GET && parts.method != Method::HEAD {
            return Err(ApiError::Manage(ManageError::Forbidden));
        }
        Ok(Ctx { app: app.clone(), actor: Actor::from_authenticated(&who) })
    }
}

impl Ctx {
    pub fn manager(&self) -> Manager<'_> {
        Manager { db: &self.app.db, auth: &self.app.config.auth }
    }
}

/// Parses a JSON body into `T`; anything malformed is 400.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Manage(ManageError::BadRequest(format!("invalid JSON body: {e}"))))
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(value)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `n` (default 100, at most 1000) and `last` from a query string.
pub fn page_params(query: Option<&str>) -> Result<(u32, String), ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let n = match get("n") {
        None => 100,
        Some(s) => {
            s.parse::<u32>().map_err(|_| ApiError::Manage(ManageError::BadRequest("invalid n".into())))?.min(1000)
        }
    };
    Ok((n, get("last").unwrap_or_default()))
}

/// A JSON array page with `Link` to the next one when there is more.
pub fn paged<T: Serialize>(path: &str, n: u32, items: Vec<T>, more: bool, last_name: Option<String>) -> Response {
    let mut r = json(StatusCode::OK, &items);
    if more && let Some(last) = last_name {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("n", &n.to_string())
            .append_pair("last", &last)
            .finish();
        if let Ok(v) = HeaderValue::from_str(&format!("<{path}?{q}>; rel=\"next\"")) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    r
}

//! The OCI Distribution API under `/v2/`. Each request's path is parsed once into an
//! [`endpoint::Endpoint`]; one `match` dispatches to thin handlers that authorize from the
//! token, call the registry, and map the result to the wire.

pub mod access;
mod blobs;
mod catalog;
pub mod endpoint;
pub mod error;
pub mod manifest;
mod manifests;
pub mod range;
mod uploads;

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};

use self::{endpoint::Endpoint, error::OciError};
use crate::{
    registry::BoxError,
    server::{App, AppState},
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v2", any(dispatch)).route("/v2/", any(dispatch)).route("/v2/{*path}", any(dispatch))
}

/// Decoded query parameters, keeping repeats.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(uri: &Uri) -> Query {
        Query(form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect())
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Everything a handler may look at.
pub struct Req<'a> {
    pub app: &'a App,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
}

impl Req<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The request body as a stream of chunks, for the registry to consume.
pub fn body_stream(body: Body) -> impl Stream<Item = Result<Bytes, BoxError>> + Unpin {
    body.into_data_stream().map_err(|e| Box::new(e) as BoxError)
}

/// Builds a response from a status, headers and body.
pub fn respond(status: StatusCode, headers: &[(&str, String)], body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(*name), HeaderValue::from_str(value)) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

async fn dispatch(State(app): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let path = uri.path().strip_prefix("/v2").unwrap_or("").trim_start_matches('/').to_owned();
    let req = Req { app: &app, method, headers, query: Query::parse(&uri) };
    match handle(&req, &path, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(req: &Req<'_>, path: &str, body: Body) -> Result<Response, OciError> {
    let endpoint = endpoint::parse(path)?;
    let m = &req.method;
    let (get, head, put, post, patch, delete) = (
        m == Method::GET,
        m == Method::HEAD,
        m == Method::PUT,
        m == Method::POST,
        m == Method::PATCH,
        m == Method::DELETE,
    );
    match endpoint {
        Endpoint::Base if get || head => base(req),
        Endpoint::Catalog if get => catalog::catalog(req).await,
        Endpoint::Tags(repo) if get => catalog::tags(req, &repo).await,
        Endpoint::Referrers(repo, d) if get => catalog::referrers(req, &repo, &d).await,
        Endpoint::Manifest(repo, r) if get || head => manifests::get(req, &repo, &r).await,
        Endpoint::Manifest(repo, r) if put => manifests::put(req, &repo, &r, body).await,
        Endpoint::Manifest(repo, r) if delete => manifests::delete(req, &repo, &r).await,
        Endpoint::Blob(repo, d) if get || head => blobs::get(req, &repo, &d).await,
        Endpoint::Blob(repo, d) if delete => blobs::delete(req, &repo, &d).await,
        Endpoint::UploadStart(repo) if post => uploads::start(req, &repo, body).await,
        Endpoint::Upload(repo, id) if get => uploads::status(req, &repo, &id).await,
        Endpoint::Upload(repo, id) if patch => uploads::patch(req, &repo, &id, body).await,
        Endpoint::Upload(repo, id) if put => uploads::put(req, &repo, &id, body).await,
        Endpoint::Upload(repo, id) if delete => uploads::cancel(req, &repo, &id).await,
        _ => Err(OciError::unsupported("method not allowed on this endpoint")),
    }
}

/// `GET /v2/`: 200 for any valid token, else the challenge without a scope.
fn base(req: &Req<'_>) -> Result<Response, OciError> {
    req.app.claims(&req.headers, &[])?;
    Ok(respond(StatusCode::OK, &[("content-type", "application/json".into())], Body::from("{}")))
}

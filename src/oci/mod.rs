//! The OCI Distribution API under `/v2/`. Each request is parsed once into an
//! [`endpoint::Endpoint`], which says what access it needs; [`handle`] checks that access
//! once, and one `match` dispatches to thin handlers that take the resulting
//! [`access::Access`], call the registry, and map the result to the wire.

pub mod access;
mod blobs;
mod catalog;
pub mod endpoint;
pub mod error;
mod manifests;
pub mod range;
mod uploads;

use axum::body::BodyDataStream;
use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};
use futures_util::{StreamExt, TryStreamExt, stream::MapErr};

use self::{access::Access, endpoint::Endpoint, error::OciError};
use crate::{
    registry::BoxError,
    state::{App, AppState},
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v2", any(dispatch)).route("/v2/", any(dispatch)).route("/v2/{*path}", any(dispatch))
}

/// Decoded query parameters, keeping repeats.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes a query string (`None`: no query).
    pub fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
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

/// The request body as a stream of chunks, for the registry to consume. Handlers take it
/// by `&mut`, so that what they leave unread can be drained when they fail.
pub type RequestBody = MapErr<BodyDataStream, fn(axum::Error) -> BoxError>;

fn box_error(e: axum::Error) -> BoxError {
    Box::new(e)
}

/// Most of a refused request's body that is read and dropped (see [`drain`]).
const DRAIN_MAX: u64 = 32 << 20;

/// Reads and drops what is left of a refused request's body, up to [`DRAIN_MAX`]. A server
/// that answers (a 401, or a 416 for a misplaced chunk) and closes the connection with the
/// body unread makes the kernel reset it: a client still writing a multi-megabyte chunk
/// gets "broken pipe" and never sees the answer. Larger bodies are not worth the reading.
async fn drain(body: &mut RequestBody, declared: Option<u64>) {
    if declared.is_some_and(|n| n > DRAIN_MAX) {
        return;
    }
    let mut read = 0u64;
    while read <= DRAIN_MAX {
        match body.next().await {
            Some(Ok(chunk)) => read += chunk.len() as u64,
            Some(Err(_)) | None => return,
        }
    }
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
    let req = Req { app: &app, method, headers, query: Query::parse(uri.query()) };
    let mut body: RequestBody = body.into_data_stream().map_err(box_error as fn(axum::Error) -> BoxError);
    match handle(&req, uri.path(), &mut body).await {
        Ok(r) => r,
        Err(e) => {
            drain(&mut body, req.header("content-length").and_then(|n| n.parse().ok())).await;
            e.into_response()
        }
    }
}

/// Parses the request, checks its access (the only authorization in the API), dispatches.
async fn handle(req: &Req<'_>, path: &str, body: &mut RequestBody) -> Result<Response, OciError> {
    let endpoint = Endpoint::parse(&req.method, path, &req.query)?;
    let access = Access::authorize(req.app, &req.headers, &endpoint.needs()).await?;
    let a = &access;
    match endpoint {
        Endpoint::Base => Ok(respond(StatusCode::OK, &[("content-type", "application/json".into())], Body::from("{}"))),
        Endpoint::Catalog => catalog::catalog(req, a).await,
        Endpoint::Tags(repo) => catalog::tags(req, a, &repo).await,
        Endpoint::Referrers(repo, d) => catalog::referrers(req, a, &repo, &d).await,
        Endpoint::GetManifest(repo, r) => manifests::get(req, a, &repo, r.as_ref()).await,
        Endpoint::PutManifest(repo, r) => manifests::put(req, a, &repo, &r, body).await,
        Endpoint::DeleteManifest(repo, r) => manifests::delete(req, a, &repo, &r).await,
        Endpoint::GetBlob(repo, d) => blobs::get(req, a, &repo, &d).await,
        Endpoint::DeleteBlob(repo, d) => blobs::delete(req, a, &repo, &d).await,
        Endpoint::StartUpload(repo, mount) => uploads::start(req, a, &repo, mount, body).await,
        Endpoint::UploadStatus(repo, id) => uploads::status(req, a, &repo, &id).await,
        Endpoint::UploadChunk(repo, id) => uploads::patch(req, a, &repo, &id, body).await,
        Endpoint::UploadFinish(repo, id) => uploads::put(req, a, &repo, &id, body).await,
        Endpoint::UploadCancel(repo, id) => uploads::cancel(req, a, &repo, &id).await,
    }
}

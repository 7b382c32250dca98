//! Request limits, in one middleware inside the access log: the total size of a request's
//! headers (431), a deadline on requests that do not stream a body (503), and the number
//! of upload requests one principal may have in flight (429). The idle timeout on request
//! bodies is tower-http's `RequestBodyTimeoutLayer` (see `server.rs`).

use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{Ops, metrics};
use crate::{oci::error::OciError, state::AppState};

/// Seconds a refused upload is told to wait.
const UPLOAD_RETRY_SECS: u64 = 5;

/// Requests whose body may stream for long: blob uploads and manifest PUTs. They are not
/// bound by the request deadline (the body idle timeout guards them instead).
fn streams_body(method: &Method, path: &str) -> bool {
    matches!(*method, Method::POST | Method::PATCH | Method::PUT) && path.starts_with("/v2/")
}

fn is_upload(method: &Method, path: &str) -> bool {
    streams_body(method, path) && metrics::family(path) == "uploads"
}

/// Size of the headers as they came on the wire (name, `: `, value, CRLF).
fn header_bytes(req: &Request) -> usize {
    req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum()
}

pub async fn middleware(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &app.ops.limits;
    let size = header_bytes(&req) + req.uri().to_string().len();
    if size > limits.max_header_bytes {
        let msg = format!("request headers exceed {} bytes", limits.max_header_bytes);
        return OciError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "SIZE_INVALID", msg).into_response();
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    if streams_body(&method, &path) {
        let _slot = if is_upload(&method, &path) {
            match upload_slot(&app, req.headers()).await {
                Ok(slot) => slot,
                Err(refused) => return refused.into_response(),
            }
        } else {
            None
        };
        return next.run(req).await;
    }
    if limits.request_timeout_secs == 0 {
        return next.run(req).await;
    }
    match tokio::time::timeout(Duration::from_secs(limits.request_timeout_secs), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(%method, %path, "request timed out");
            OciError::new(StatusCode::SERVICE_UNAVAILABLE, "UNKNOWN", "request timed out").into_response()
        }
    }
}

/// An upload request's place in its principal's quota, released on drop.
pub struct UploadSlot<'a> {
    ops: &'a Ops,
    principal: String,
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        metrics::upload_ended();
        if let Ok(mut map) = self.ops.uploads.lock()
            && let Some(n) = map.get_mut(&self.principal)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.principal);
            }
        }
    }
}

impl Ops {
    /// Takes a slot for `principal`; `None` if it already has `limit` uploads in flight.
    pub fn take_upload_slot(&self, principal: &str, limit: usize) -> Option<UploadSlot<'_>> {
        let mut map = self.uploads.lock().ok()?;
        let n = map.entry(principal.to_owned()).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        metrics::upload_started();
        Some(UploadSlot { ops: self, principal: principal.to_owned() })
    }
}

/// The slot for an upload request. The token is verified here to learn the principal; a
/// request without a valid token passes on (the handler answers it with a challenge).
async fn upload_slot<'a>(app: &'a AppState, headers: &HeaderMap) -> Result<Option<UploadSlot<'a>>, OciError> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    });
    let Some(token) = bearer else { return Ok(None) };
    let Some(claims) = app.tokens.verify(token).await else {
        return Ok(None);
    };
    match app.ops.take_upload_slot(&claims.sub, app.ops.limits.uploads_per_principal) {
        Some(slot) => Ok(Some(slot)),
        None => {
            metrics::upload_refused();
            tracing::info!(principal = %claims.sub, "upload refused: too many in flight");
            Err(OciError::too_many_requests(UPLOAD_RETRY_SECS))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_requests_stream() {
        assert!(streams_body(&Method::PATCH, "/v2/a/blobs/uploads/x"));
        assert!(streams_body(&Method::PUT, "/v2/a/manifests/1"));
        assert!(!streams_body(&Method::GET, "/v2/a/blobs/sha256:00"));
        assert!(!streams_body(&Method::POST, "/token"));
        assert!(is_upload(&Method::POST, "/v2/a/blobs/uploads/"));
        assert!(!is_upload(&Method::PUT, "/v2/a/manifests/1"));
    }

    #[test]
    fn upload_slots_per_principal() {
        let ops = Ops::new(&crate::config::Config::default());
        let a1 = ops.take_upload_slot("alice", 2);
        let a2 = ops.take_upload_slot("alice", 2);
        assert!(a1.is_some() && a2.is_some());
        assert!(ops.take_upload_slot("alice", 2).is_none());
        assert!(ops.take_upload_slot("bob", 2).is_some());
        drop(a1);
        assert!(ops.take_upload_slot("alice", 2).is_some());
        assert!(ops.take_upload_slot("carol", 0).is_some(), "0 means no limit");
    }
}

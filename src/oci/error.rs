//! The Distribution API's error type: every failure leaves through here as the spec's
//! JSON body (`{"errors":[{"code","message","detail"}]}`), status and extra headers.

use axum::{
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::registry::RegistryError;

/// Boxed so that `Result<_, OciError>` stays small on the happy path.
#[derive(Debug)]
pub struct OciError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: &'static str,
    message: String,
    headers: HeaderMap,
}

impl OciError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError(Box::new(Inner { status, code, message: message.into(), headers: HeaderMap::new() }))
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> OciError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.0.headers.insert(name, v);
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> &'static str {
        self.0.code
    }

    pub fn name_invalid() -> OciError {
        OciError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", "invalid repository name")
    }
    pub fn tag_invalid() -> OciError {
        OciError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", "invalid tag")
    }
    pub fn digest_invalid(msg: &str) -> OciError {
        OciError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", msg)
    }
    pub fn unsupported(msg: &str) -> OciError {
        OciError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg)
    }
    /// A path that is no endpoint: as unknown as a repository that does not exist.
    pub fn not_found() -> OciError {
        OciError::name_unknown()
    }
    pub fn name_unknown() -> OciError {
        OciError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry")
    }
    pub fn manifest_unknown() -> OciError {
        OciError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown")
    }
    pub fn upload_unknown() -> OciError {
        OciError::new(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
    }
    pub fn unauthorized(challenge: &str) -> OciError {
        OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required")
            .with_header(header::WWW_AUTHENTICATE, challenge)
    }
    /// 403 `DENIED`. The message must not be the code's stock text: docker 20.10 then
    /// reads the error as a bare code, fails to see it as final, and retries for ~50 s.
    pub fn denied(message: impl Into<String>) -> OciError {
        OciError::new(StatusCode::FORBIDDEN, "DENIED", message)
    }
    pub fn too_many_requests(retry_after: u64) -> OciError {
        OciError::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", "too many requests")
            .with_header(header::RETRY_AFTER, &retry_after.to_string())
    }
    pub fn internal() -> OciError {
        OciError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal error")
    }
}

impl From<RegistryError> for OciError {
    fn from(e: RegistryError) -> OciError {
        use RegistryError as E;
        match e {
            E::Denied => OciError::denied("access denied: the token predates this collection"),
            E::TagImmutable(tag) => OciError::denied(format!(
                "tag {tag} is immutable in this collection: it cannot be moved to another manifest or deleted"
            )),
            E::NameUnknown => OciError::name_unknown(),
            E::ManifestUnknown => OciError::manifest_unknown(),
            E::BlobUnknown => OciError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry"),
            E::UploadUnknown => OciError::upload_unknown(),
            E::DigestInvalid(m) => OciError::digest_invalid(&m),
            E::ManifestInvalid(m) => OciError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", m),
            E::ManifestBlobUnknown(d) => OciError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("blob unknown to registry: {d}"),
            ),
            E::ManifestTooLarge(limit) => OciError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("manifest exceeds the {limit} byte limit"),
            ),
            E::RangeInvalid { .. } => OciError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                "chunk does not start at the upload's current offset",
            ),
            E::SizeInvalid(m) => OciError::new(StatusCode::BAD_REQUEST, "SIZE_INVALID", m),
            E::BodyRead(e) => {
                tracing::debug!(error = %e, "request body ended early");
                OciError::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", "request body could not be read")
            }
            E::Busy(secs) => OciError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "service unavailable")
                .with_header(header::RETRY_AFTER, &secs.to_string()),
            E::Internal(e) => {
                crate::ops::metrics::internal_error(&e);
                tracing::error!(error = format!("{e:#}"), "internal error");
                OciError::internal()
            }
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let Inner { status, code, message, headers } = *self.0;
        let body = serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": null }] });
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().extend(headers);
        resp
    }
}

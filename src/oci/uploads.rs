//! Blob uploads: POST (session, monolithic, mount), PATCH, PUT, GET status, DELETE.

use axum::{body::Body, http::StatusCode, response::Response};

use super::{Req, RequestBody, access::Access, endpoint::Mount, error::OciError, range::parse_content_range, respond};
use crate::{
    digest::{Algorithm, Digest},
    names::{RepoName, UploadId},
    registry::{Caller, RegistryError, UploadState},
};

fn location(repo: &RepoName, id: &UploadId) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

/// `Range: 0-<offset-1>`, `0-0` when empty (the registry convention clients expect).
fn range_header(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn session_response(status: StatusCode, repo: &RepoName, s: &UploadState) -> Response {
    let headers = [
        ("location", location(repo, &s.id)),
        ("range", range_header(s.offset)),
        ("docker-upload-uuid", s.id.to_string()),
        ("content-length", "0".to_owned()),
    ];
    respond(status, &headers, Body::empty())
}

fn blob_created(repo: &RepoName, digest: &Digest) -> Response {
    let headers = [
        ("location", format!("/v2/{repo}/blobs/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_owned()),
    ];
    respond(StatusCode::CREATED, &headers, Body::empty())
}

/// Maps an upload error, adding `Location` and `Range` to a 416.
fn upload_error(e: RegistryError, repo: &RepoName, id: &UploadId) -> OciError {
    match e {
        RegistryError::RangeInvalid { offset } => OciError::from(e)
            .with_header(axum::http::header::LOCATION, &location(repo, id))
            .with_header(axum::http::header::RANGE, &range_header(offset))
            .with_header(axum::http::HeaderName::from_static("docker-upload-uuid"), id.as_str()),
        other => other.into(),
    }
}

fn digest_param(req: &Req<'_>) -> Result<Option<Digest>, OciError> {
    req.query
        .get("digest")
        .map(|d| d.parse().map_err(|_| OciError::digest_invalid("invalid or unsupported digest")))
        .transpose()
}

pub async fn start(
    req: &Req<'_>,
    access: &Access,
    repo: &RepoName,
    mount: Mount,
    body: &mut RequestBody,
) -> Result<Response, OciError> {
    let registry = &req.app.registry;
    let caller = access.caller();
    let mounted = match &mount {
        // From a named repository: only with pull there (DESIGN §5); else a session.
        Mount::From(digest, from) => {
            (access.entries_granted() && registry.mount_blob(caller, repo, digest, from).await?).then_some(digest)
        }
        // Without `from`: any repository the caller may pull will do.
        Mount::Anywhere(digest) => {
            let public = !req.app.config.auth.private_registry;
            registry.mount_visible_blob(caller, repo, digest, public).await?.then_some(digest)
        }
        Mount::Invalid => None,
        Mount::No => {
            if let Some(digest) = digest_param(req)? {
                registry.upload_monolithic(caller, repo, &digest, body).await?;
                return Ok(blob_created(repo, &digest));
            }
            None
        }
    };
    if let Some(digest) = mounted {
        return Ok(blob_created(repo, digest));
    }
    let algorithm = match req.query.get("digest-algorithm") {
        None => Algorithm::Sha256,
        Some(a) => a.parse().map_err(|_| OciError::digest_invalid("unsupported digest algorithm"))?,
    };
    let s = registry.start_upload(caller, repo, algorithm).await?;
    let mut resp = session_response(StatusCode::ACCEPTED, repo, &s);
    if let Some(min) = registry.chunk_min_length() {
        // Chunks below an S3 part's minimum would have to be buffered server-side.
        resp.headers_mut().insert("oci-chunk-min-length", min.into());
    }
    Ok(resp)
}

/// Needs only `pull` (what clients ask for a GET); the session is bound to its `sub`.
pub async fn status(req: &Req<'_>, access: &Access, repo: &RepoName, id: &UploadId) -> Result<Response, OciError> {
    let s = req.app.registry.upload_status(access.caller(), repo, id).await?;
    Ok(session_response(StatusCode::NO_CONTENT, repo, &s))
}

pub async fn patch(
    req: &Req<'_>,
    access: &Access,
    repo: &RepoName,
    id: &UploadId,
    body: &mut RequestBody,
) -> Result<Response, OciError> {
    let caller = access.caller();
    let registry = &req.app.registry;
    let start = content_range_start(req, caller, repo, id).await?;
    let s = registry.append_upload(caller, repo, id, start, body).await.map_err(|e| upload_error(e, repo, id))?;
    Ok(session_response(StatusCode::ACCEPTED, repo, &s))
}

/// The `Content-Range`, if sent; a malformed one is a 416 like a misplaced one.
async fn content_range_start(
    req: &Req<'_>,
    caller: &Caller,
    repo: &RepoName,
    id: &UploadId,
) -> Result<Option<(u64, u64)>, OciError> {
    let Some(h) = req.header("content-range") else {
        return Ok(None);
    };
    match parse_content_range(h) {
        Some(r) => Ok(Some(r)),
        None => {
            let offset = req.app.registry.upload_status(caller, repo, id).await?.offset;
            Err(upload_error(RegistryError::RangeInvalid { offset }, repo, id))
        }
    }
}

pub async fn put(
    req: &Req<'_>,
    access: &Access,
    repo: &RepoName,
    id: &UploadId,
    body: &mut RequestBody,
) -> Result<Response, OciError> {
    let caller = access.caller();
    let digest = digest_param(req)?.ok_or_else(|| OciError::digest_invalid("the digest parameter is required"))?;
    let start = content_range_start(req, caller, repo, id).await?;
    req.app
        .registry
        .finish_upload(caller, repo, id, &digest, start, body)
        .await
        .map_err(|e| upload_error(e, repo, id))?;
    Ok(blob_created(repo, &digest))
}

/// Needs `delete` (what clients ask for a DELETE) or `push`; the session is bound to its
/// `sub`, so nobody cancels another principal's upload.
pub async fn cancel(req: &Req<'_>, access: &Access, repo: &RepoName, id: &UploadId) -> Result<Response, OciError> {
    req.app.registry.cancel_upload(access.caller(), repo, id).await?;
    Ok(respond(StatusCode::NO_CONTENT, &[("content-length", "0".into())], Body::empty()))
}

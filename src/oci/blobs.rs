//! Blob GET/HEAD (with `Range`) and DELETE.

use axum::{body::Body, http::StatusCode, response::Response};

use super::{
    Req,
    access::Access,
    error::OciError,
    range::{RangeOutcome, parse_range},
    respond,
};
use crate::{digest::Digest, names::RepoName, registry::BlobData};

pub async fn get(req: &Req<'_>, access: &Access, repo: &RepoName, digest: &Digest) -> Result<Response, OciError> {
    let caller = access.caller();
    let registry = &req.app.registry;
    let mut headers = vec![
        ("docker-content-digest", digest.to_string()),
        ("content-type", "application/octet-stream".to_owned()),
        ("accept-ranges", "bytes".to_owned()),
    ];
    if req.method == axum::http::Method::HEAD {
        let size = registry.blob_size(caller, repo, digest).await?;
        headers.push(("content-length", size.to_string()));
        return Ok(respond(StatusCode::OK, &headers, Body::empty()));
    }
    let data = registry.open_blob(caller, repo, digest).await?;
    if let BlobData::Stored { location, .. } = &data
        && let Some(url) = registry.blob_redirect(location).await?
    {
        // After the same authorization and lookup as a streamed GET. A `Range` goes along:
        // the client sends it again to the new location.
        let headers = [("docker-content-digest", digest.to_string()), ("location", url)];
        return Ok(respond(StatusCode::TEMPORARY_REDIRECT, &headers, Body::empty()));
    }
    let size = data.size();
    let (status, start, len) = match parse_range(req.header("range"), size) {
        RangeOutcome::Full => (StatusCode::OK, 0, size),
        RangeOutcome::Partial(a, b) => {
            headers.push(("content-range", format!("bytes {a}-{b}/{size}")));
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        RangeOutcome::Unsatisfiable => {
            return Err(OciError::new(StatusCode::RANGE_NOT_SATISFIABLE, "SIZE_INVALID", "range not satisfiable")
                .with_header(axum::http::header::CONTENT_RANGE, &format!("bytes */{size}")));
        }
    };
    headers.push(("content-length", len.to_string()));
    let body = match data {
        BlobData::Bytes(b) => Body::from(b.get(start as usize..(start + len) as usize).unwrap_or_default().to_vec()),
        BlobData::Stored { location, .. } => Body::from_stream(registry.read_blob(&location, start, len).await?),
    };
    Ok(respond(status, &headers, body))
}

pub async fn delete(req: &Req<'_>, access: &Access, repo: &RepoName, digest: &Digest) -> Result<Response, OciError> {
    req.app.registry.delete_blob(access.caller(), repo, digest).await?;
    Ok(respond(StatusCode::ACCEPTED, &[("docker-content-digest", digest.to_string())], Body::empty()))
}

//! Manifest GET/HEAD, PUT and DELETE.

use axum::{body::Body, http::StatusCode, response::Response};

use futures_util::StreamExt;

use super::{Req, RequestBody, access::Access, error::OciError, respond};
use crate::{
    names::{Reference, RepoName, Tag},
    registry::RegistryError,
};

/// `reference` is `None` for a tag that cannot exist: unknown, like any absent tag.
pub async fn get(
    req: &Req<'_>,
    access: &Access,
    repo: &RepoName,
    reference: Option<&Reference>,
) -> Result<Response, OciError> {
    let reference = reference.ok_or_else(OciError::manifest_unknown)?;
    let m = req.app.registry.get_manifest(access.caller(), repo, reference).await?;
    let headers = [
        ("content-type", m.media_type),
        ("docker-content-digest", m.digest.to_string()),
        ("etag", format!("\"{}\"", m.digest)),
        ("content-length", m.content.len().to_string()),
    ];
    let body = if req.method == axum::http::Method::HEAD { Body::empty() } else { Body::from(m.content) };
    Ok(respond(StatusCode::OK, &headers, body))
}

pub async fn put(
    req: &Req<'_>,
    access: &Access,
    repo: &RepoName,
    reference: &Reference,
    body: &mut RequestBody,
) -> Result<Response, OciError> {
    let registry = &req.app.registry;
    let limit = registry.max_manifest_bytes;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.map_err(RegistryError::BodyRead)?);
        if bytes.len() > limit {
            return Err(RegistryError::ManifestTooLarge(limit).into());
        }
    }
    let content_type = req.header("content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_owned());
    let tags = req
        .query
        .all("tag")
        .map(|t| t.parse::<Tag>().map_err(|_| OciError::tag_invalid()))
        .collect::<Result<Vec<_>, _>>()?;
    let out = registry.put_manifest(access.caller(), repo, reference, content_type.as_deref(), &bytes, &tags).await?;
    let mut headers = vec![
        ("location", format!("/v2/{repo}/manifests/{}", out.digest)),
        ("docker-content-digest", out.digest.to_string()),
        ("content-length", "0".to_owned()),
    ];
    if let Some(s) = out.subject {
        headers.push(("oci-subject", s.to_string()));
    }
    for t in &tags {
        headers.push(("oci-tag", t.to_string()));
    }
    Ok(respond(StatusCode::CREATED, &headers, Body::empty()))
}

pub async fn delete(
    req: &Req<'_>,
    access: &Access,
    repo: &RepoName,
    reference: &Reference,
) -> Result<Response, OciError> {
    req.app.registry.delete_manifest(access.caller(), repo, reference).await?;
    Ok(respond(StatusCode::ACCEPTED, &[("content-length", "0".into())], Body::empty()))
}

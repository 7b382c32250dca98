//! Manifest GET/HEAD, PUT and DELETE.

use axum::{body::Body, http::StatusCode, response::Response};

use super::{Req, access::Need, endpoint::actions_for, error::OciError, respond};
use crate::{
    names::{Reference, RepoName, Tag},
    registry::RegistryError,
};

pub async fn get(req: &Req<'_>, repo: &RepoName, reference: &Reference) -> Result<Response, OciError> {
    let caller = req.app.authorize(&req.headers, &[Need { repo, actions: actions_for(&req.method) }])?;
    let m = req.app.registry.get_manifest(&caller, repo, reference).await?;
    let headers = [
        ("content-type", m.media_type),
        ("docker-content-digest", m.digest.to_string()),
        ("etag", format!("\"{}\"", m.digest)),
        ("content-length", m.content.len().to_string()),
    ];
    let body = if req.method == axum::http::Method::HEAD { Body::empty() } else { Body::from(m.content) };
    Ok(respond(StatusCode::OK, &headers, body))
}

pub async fn put(req: &Req<'_>, repo: &RepoName, reference: &Reference, body: Body) -> Result<Response, OciError> {
    let caller = req.app.authorize(&req.headers, &[Need { repo, actions: actions_for(&req.method) }])?;
    let registry = &req.app.registry;
    let limit = registry.max_manifest_bytes;
    let bytes = axum::body::to_bytes(body, limit + 1).await.map_err(|_| RegistryError::ManifestTooLarge(limit))?;
    let content_type = req.header("content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_owned());
    let tags = req
        .query
        .all("tag")
        .map(|t| t.parse::<Tag>().map_err(|_| OciError::tag_invalid()))
        .collect::<Result<Vec<_>, _>>()?;
    let out = registry.put_manifest(&caller, repo, reference, content_type.as_deref(), &bytes, &tags).await?;
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

pub async fn delete(req: &Req<'_>, repo: &RepoName, reference: &Reference) -> Result<Response, OciError> {
    let caller = req.app.authorize(&req.headers, &[Need { repo, actions: actions_for(&req.method) }])?;
    req.app.registry.delete_manifest(&caller, repo, reference).await?;
    Ok(respond(StatusCode::ACCEPTED, &[("content-length", "0".into())], Body::empty()))
}

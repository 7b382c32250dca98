//! Listings: tags, the catalog and referrers, with `n`/`last` pagination and `Link`.

use axum::{body::Body, http::StatusCode, response::Response};

use super::{Req, access::Access, error::OciError, respond};
use crate::{digest::Digest, manifest::OCI_INDEX, names::RepoName};

/// Most entries one page returns.
const PAGE_MAX: u32 = 1000;

/// `(n, last)` from the query; a missing or over-large `n` is [`PAGE_MAX`].
fn page(req: &Req<'_>) -> Result<(u32, String), OciError> {
    let n = match req.query.get("n") {
        None => PAGE_MAX,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| OciError::new(StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", "invalid n"))?
            .min(u64::from(PAGE_MAX)) as u32,
    };
    Ok((n, req.query.get("last").unwrap_or("").to_owned()))
}

/// A JSON listing with a `Link` to the next page when there may be more.
fn listing(path: &str, n: u32, items: Vec<String>, key: &str, extra: Option<(&str, &str)>) -> Response {
    let more = n > 0 && items.len() > n as usize;
    let items: Vec<String> = items.into_iter().take(n as usize).collect();
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if more && let Some(last) = items.last() {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("n", &n.to_string())
            .append_pair("last", last)
            .finish();
        headers.push(("link", format!("<{path}?{q}>; rel=\"next\"")));
    }
    let mut body = serde_json::Map::new();
    if let Some((k, v)) = extra {
        body.insert(k.into(), v.into());
    }
    body.insert(key.into(), items.into());
    respond(StatusCode::OK, &headers, Body::from(serde_json::Value::Object(body).to_string()))
}

pub async fn tags(req: &Req<'_>, access: &Access, repo: &RepoName) -> Result<Response, OciError> {
    let (n, last) = page(req)?;
    // One extra row tells whether there is a next page.
    let tags = req.app.registry.list_tags(access.caller(), repo, &last, n + 1).await?;
    let tags = if n == 0 { vec![] } else { tags };
    Ok(listing(&format!("/v2/{repo}/tags/list"), n, tags, "tags", Some(("name", repo.as_str()))))
}

/// Only what the caller may pull, decided in the database.
pub async fn catalog(req: &Req<'_>, access: &Access) -> Result<Response, OciError> {
    let (n, last) = page(req)?;
    let public = !req.app.config.auth.private_registry;
    let repos = if n == 0 { vec![] } else { req.app.registry.catalog(access.caller(), public, &last, n + 1).await? };
    Ok(listing("/v2/_catalog", n, repos, "repositories", None))
}

pub async fn referrers(
    req: &Req<'_>,
    access: &Access,
    repo: &RepoName,
    subject: &Digest,
) -> Result<Response, OciError> {
    let filter = req.query.get("artifactType");
    let rows = req.app.registry.referrers(access.caller(), repo, subject).await?;
    let manifests: Vec<serde_json::Value> = rows
        .into_iter()
        .filter(|r| filter.is_none_or(|f| r.artifact_type.as_deref() == Some(f)))
        .map(|r| {
            let mut d = serde_json::json!({ "mediaType": r.media_type, "digest": r.digest, "size": r.size });
            if let Some(a) = r.artifact_type {
                d["artifactType"] = a.into();
            }
            if let Some(a) = r.annotations.and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok()) {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let body = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut headers = vec![("content-type", OCI_INDEX.to_owned())];
    if filter.is_some() {
        headers.push(("oci-filters-applied", "artifactType".to_owned()));
    }
    Ok(respond(StatusCode::OK, &headers, Body::from(body.to_string())))
}

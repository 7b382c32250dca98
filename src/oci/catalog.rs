//! Listings: tags, the catalog and referrers, with `n`/`last` pagination and `Link`.

use axum::{body::Body, http::StatusCode, response::Response};

use super::{Req, access::Access, error::OciError, respond};
use crate::{digest::Digest, manifest::OCI_INDEX, names::RepoName};

/// Most entries one page returns when the client asks for `n`, and `_catalog`'s page
/// without `n` (DESIGN.md §5).
const PAGE_MAX: u32 = 1000;
/// Most tags `tags/list` returns without `n`: clients that do not paginate (docker, most
/// scripts) get the whole list in one response, as Distribution gives it, and a repository
/// past this gets a `Link` like any page. At the longest tag names (128 bytes) a full page
/// is about 3.3 MB.
const TAGS_UNPAGED_MAX: u32 = 25_000;

/// `(n, last)` from the query; a missing `n` is `unpaged`, an over-large one [`PAGE_MAX`].
fn page(req: &Req<'_>, unpaged: u32) -> Result<(u32, String), OciError> {
    let n = match req.query.get("n") {
        None => unpaged,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| OciError::new(StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", "invalid n"))?
            .min(u64::from(PAGE_MAX)) as u32,
    };
    Ok((n, req.query.get("last").unwrap_or("").to_owned()))
}

/// A JSON listing with a `Link` to the next page when there may be more. `items` holds up
/// to `n + 1` entries: one past the page tells that there is a next one. The body is
/// written straight from the names, with no JSON tree in between (a full tag list is
/// tens of thousands of them).
fn listing(path: &str, n: u32, items: &[&str], key: &str, extra: Option<(&str, &str)>) -> Response {
    let more = n > 0 && items.len() > n as usize;
    let items = &items[..items.len().min(n as usize)];
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if more && let Some(last) = items.last() {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("n", &n.to_string())
            .append_pair("last", last)
            .finish();
        headers.push(("link", format!("<{path}?{q}>; rel=\"next\"")));
    }
    respond(StatusCode::OK, &headers, Body::from(listing_json(items, key, extra)))
}

/// `{"<extra key>":"<extra value>","<key>":[<items>]}`.
fn listing_json(items: &[&str], key: &str, extra: Option<(&str, &str)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + items.iter().map(|i| i.len() + 3).sum::<usize>());
    let string = |out: &mut Vec<u8>, s: &str| {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    };
    out.push(b'{');
    if let Some((k, v)) = extra {
        string(&mut out, k);
        out.push(b':');
        string(&mut out, v);
        out.push(b',');
    }
    string(&mut out, key);
    out.extend_from_slice(b":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(&mut out, item);
    }
    out.extend_from_slice(b"]}");
    out
}

pub async fn tags(req: &Req<'_>, access: &Access, repo: &RepoName) -> Result<Response, OciError> {
    let (n, last) = page(req, TAGS_UNPAGED_MAX)?;
    // One extra row tells whether there is a next page.
    let joined = req.app.registry.list_tags(access.caller(), repo, &last, n + 1).await?;
    let tags: Vec<&str> = if n == 0 || joined.is_empty() { vec![] } else { joined.split(',').collect() };
    Ok(listing(&format!("/v2/{repo}/tags/list"), n, &tags, "tags", Some(("name", repo.as_str()))))
}

/// Only what the caller may pull, decided in the database.
pub async fn catalog(req: &Req<'_>, access: &Access) -> Result<Response, OciError> {
    let (n, last) = page(req, PAGE_MAX)?;
    let public = !req.app.config.auth.private_registry;
    let repos = if n == 0 { vec![] } else { req.app.registry.catalog(access.caller(), public, &last, n + 1).await? };
    let repos: Vec<&str> = repos.iter().map(String::as_str).collect();
    Ok(listing("/v2/_catalog", n, &repos, "repositories", None))
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

#[cfg(test)]
mod tests {
    use super::listing_json;

    #[test]
    fn listing_json_is_the_object_serde_would_write() {
        let items = ["a", "b\"quoted\\", "ü"];
        let body = listing_json(&items, "tags", Some(("name", "x/y")));
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value, serde_json::json!({"name": "x/y", "tags": ["a", "b\"quoted\\", "ü"]}));
        let empty = listing_json(&[], "repositories", None);
        assert_eq!(std::str::from_utf8(&empty).unwrap(), r#"{"repositories":[]}"#);
    }
}

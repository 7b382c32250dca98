//! Tag listing and pagination (OCI end-8a, end-8b; DESIGN §5) and `_catalog`.

use crate::common::*;
use serde_json::{Value, json};

async fn tagged_repo(s: &TestServer, repo: &str, tags: &[&str]) -> String {
    let token = s.repo_token(&[repo]).await;
    let img = s.push_image(&token, repo, tags[0], repo).await;
    for tag in &tags[1..] {
        s.push_manifest(&token, repo, tag, OCI_MANIFEST, &img.manifest).await;
    }
    token
}

async fn list(s: &TestServer, token: &str, path: &str) -> (Value, Option<String>) {
    let resp = s.get(path, Some(token)).await;
    let resp = expect_status(resp, 200, &format!("GET {path}")).await;
    let link = header(&resp, "link");
    let ct = header(&resp, "content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "Content-Type {ct:?} for {path}");
    (resp.json().await.unwrap(), link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_listed_byte_sorted() {
    let s = TestServer::start().await;
    let token = tagged_repo(&s, "tag/app", &["latest", "b", "a", "C", "1.0", "_x", "a-1", "a.1"]).await;
    let (json, link) = list(&s, &token, "/v2/tag/app/tags/list").await;
    assert_eq!(json["name"], "tag/app");
    assert_eq!(json["tags"], json!(["1.0", "C", "_x", "a", "a-1", "a.1", "b", "latest"]));
    assert!(link.is_none(), "no Link without pagination: {link:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_with_n_and_last() {
    let s = TestServer::start().await;
    let token = tagged_repo(&s, "tag/page", &["v1", "v2", "v3", "v4", "v5"]).await;

    let (json, link) = list(&s, &token, "/v2/tag/page/tags/list?n=2").await;
    assert_eq!(json["tags"], json!(["v1", "v2"]));
    assert_eq!(link.as_deref(), Some("</v2/tag/page/tags/list?n=2&last=v2>; rel=\"next\""));

    // Follow the Link as a client would.
    let next = link.unwrap();
    let url = next.trim_start_matches('<').split('>').next().unwrap().to_string();
    let (json, link) = list(&s, &token, &url).await;
    assert_eq!(json["tags"], json!(["v3", "v4"]));
    assert_eq!(link.as_deref(), Some("</v2/tag/page/tags/list?n=2&last=v4>; rel=\"next\""));

    let (json, link) = list(&s, &token, "/v2/tag/page/tags/list?n=2&last=v4").await;
    assert_eq!(json["tags"], json!(["v5"]));
    assert!(link.is_none(), "last page has no Link: {link:?}");

    // n larger than what is left.
    let (json, link) = list(&s, &token, "/v2/tag/page/tags/list?n=10").await;
    assert_eq!(json["tags"], json!(["v1", "v2", "v3", "v4", "v5"]));
    assert!(link.is_none(), "{link:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_zero_and_last_edge_cases() {
    let s = TestServer::start().await;
    let token = tagged_repo(&s, "tag/edge", &["a", "b", "c"]).await;

    let (json, link) = list(&s, &token, "/v2/tag/edge/tags/list?n=0").await;
    assert_eq!(json["tags"], json!([]), "n=0 gives an empty list");
    assert!(link.is_none(), "n=0 gives no Link: {link:?}");

    // `last` is exclusive and need not exist; `n` is optional with it.
    let (json, _) = list(&s, &token, "/v2/tag/edge/tags/list?last=a").await;
    assert_eq!(json["tags"], json!(["b", "c"]));
    let (json, _) = list(&s, &token, "/v2/tag/edge/tags/list?last=ab").await;
    assert_eq!(json["tags"], json!(["b", "c"]));
    let (json, link) = list(&s, &token, "/v2/tag/edge/tags/list?n=1&last=b").await;
    assert_eq!(json["tags"], json!(["c"]));
    assert!(link.is_none(), "{link:?}");
    let (json, _) = list(&s, &token, "/v2/tag/edge/tags/list?last=z").await;
    assert_eq!(json["tags"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_without_tags_lists_empty_array() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["tag/none"]).await;
    let config = b"{}".to_vec();
    s.push_blob(&token, "tag/none", &config).await;
    let manifest = oci_manifest(&config, &[]);
    let digest = sha256_digest(&manifest);
    s.push_manifest(&token, "tag/none", &digest, OCI_MANIFEST, &manifest).await;
    let (json, _) = list(&s, &token, "/v2/tag/none/tags/list").await;
    assert_eq!(json["name"], "tag/none");
    assert_eq!(json["tags"], json!([]), "no tags gives \"tags\": [] (not null): {json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_of_absent_repository() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["tag/absent"]).await;
    let resp = s.get("/v2/tag/absent/tags/list", Some(&token)).await;
    expect_error(resp, 404, "NAME_UNKNOWN", "tags of an absent repository").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_lists_repositories_sorted_and_paginated() {
    let s = TestServer::start().await;
    for repo in ["cat/zeta", "cat/alpha", "cat/mid/deep"] {
        let token = s.repo_token(&[repo]).await;
        s.push_image(&token, repo, "v1", repo).await;
    }
    let token = s.admin_token(&["registry:catalog:*"]).await;
    let resp = s.get("/v2/_catalog", Some(&token)).await;
    let json: Value = expect_status(resp, 200, "GET /v2/_catalog").await.json().await.unwrap();
    assert_eq!(json["repositories"], json!(["cat/alpha", "cat/mid/deep", "cat/zeta"]));

    let (json, link) = list(&s, &token, "/v2/_catalog?n=1").await;
    assert_eq!(json["repositories"], json!(["cat/alpha"]));
    // `/` in the query may be sent as is or percent-encoded.
    let link = link.map(|l| l.replace("%2F", "/").replace("%2f", "/"));
    assert_eq!(link.as_deref(), Some("</v2/_catalog?n=1&last=cat/alpha>; rel=\"next\""));
    let (json, link) = list(&s, &token, "/v2/_catalog?n=2&last=cat/alpha").await;
    assert_eq!(json["repositories"], json!(["cat/mid/deep", "cat/zeta"]));
    assert!(link.is_none(), "{link:?}");
    let (json, link) = list(&s, &token, "/v2/_catalog?n=0").await;
    assert_eq!(json["repositories"], json!([]));
    assert!(link.is_none(), "{link:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_over_1000_is_capped_with_link() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["tag/many"]).await;
    let img = s.push_image(&token, "tag/many", "t0000", "many").await;
    let mut tags: Vec<String> = (0..1005).map(|i| format!("t{i:04}")).collect();
    tags.sort();
    // Several tags per request through PUT-by-digest `?tag=` (OCI 1.1) to keep this quick.
    for group in tags[1..].chunks(50) {
        let query: Vec<String> = group.iter().map(|t| format!("tag={t}")).collect();
        let reference = format!("{}?{}", img.digest, query.join("&"));
        let resp = s.put_manifest(&token, "tag/many", &reference, Some(OCI_MANIFEST), &img.manifest).await;
        expect_status(resp, 201, "PUT with many ?tag=").await;
    }
    let (json, link) = list(&s, &token, "/v2/tag/many/tags/list?n=5000").await;
    let got = json["tags"].as_array().unwrap();
    assert_eq!(got.len(), 1000, "n over 1000 gives 1000");
    assert_eq!(got[999], tags[999].as_str());
    let link = link.expect("Link when capped");
    assert!(
        link.starts_with("</v2/tag/many/tags/list?n=")
            && link.ends_with(&format!("&last={}>; rel=\"next\"", tags[999])),
        "Link {link}"
    );
    let (json, _) = list(&s, &token, &format!("/v2/tag/many/tags/list?last={}", tags[999])).await;
    assert_eq!(json["tags"].as_array().unwrap().len(), 5);
    // Without n: every tag in one response (up to 25,000), as clients that do not
    // paginate expect; `_catalog` keeps its 1000 (DESIGN.md §5).
    let (json, link) = list(&s, &token, "/v2/tag/many/tags/list").await;
    let got: Vec<&str> = json["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(got, tags, "tags/list without n gives all 1005, sorted");
    assert_eq!(json["name"], "tag/many");
    assert!(link.is_none(), "no Link when the unpaginated list is whole: {link:?}");
}

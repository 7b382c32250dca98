//! Spec "Workflow Categories › Pull" (end-1, end-2, end-3): the API version check, pulling
//! manifests by tag and by digest, pulling blobs whole and by `Range`, and `HEAD` checks.

use reqwest::Method;
use serde_json::json;

use crate::client::Registry;
use crate::content::*;

/// Spec "API › Determining Support" (end-1): `GET /v2/` answers `200` to an authorized
/// client; "Authentication": without a token it answers `401` with a Bearer challenge
/// (DESIGN §4: no `scope` on the bare `/v2/`) and `Docker-Distribution-API-Version`.
#[tokio::test]
async fn end1_api_version_check() {
    let reg = Registry::start().await;
    let anon = reg.req(Method::GET, "/v2/").send_anonymous().await;
    assert_eq!(anon.status, 401, "{anon:?}");
    let c = anon.challenge();
    assert_eq!(c.get("realm"), Some(&format!("{}/token", reg.base_url())));
    assert!(!c.contains_key("scope"), "bare /v2/ challenge has a scope: {c:?}");
    anon.expect_header("docker-distribution-api-version", "registry/2.0");

    let ok = reg.get("/v2/").await.expect(200);
    ok.expect_header("docker-distribution-api-version", "registry/2.0");
}

/// Spec "Pull › Pulling manifests" (end-3): a GET by tag MUST answer `200` with the manifest
/// byte for byte, `Content-Type` its media type and `Docker-Content-Digest` its digest;
/// DESIGN §5: manifest GET always carries `Content-Length`.
#[tokio::test]
async fn pull_manifest_by_tag() {
    let reg = Registry::start().await;
    let img = reg.push_image("pull/tag", "v1", "by-tag").await;
    let r = reg.req(Method::GET, "/v2/pull/tag/manifests/v1").header("accept", OCI_MANIFEST).send().await.expect(200);
    assert_eq!(r.body.as_ref(), img.manifest.as_slice(), "manifest bytes");
    r.expect_header("content-type", OCI_MANIFEST);
    r.expect_header("docker-content-digest", &img.digest);
    r.expect_header("content-length", &img.manifest.len().to_string());
}

/// Spec "Pull › Pulling manifests" (end-3): `<reference>` may be the manifest's digest;
/// the same bytes, type and `Docker-Content-Digest` come back.
#[tokio::test]
async fn pull_manifest_by_digest() {
    let reg = Registry::start().await;
    let img = reg.push_image("pull/digest", "v1", "by-digest").await;
    let r = reg
        .req(Method::GET, &format!("/v2/pull/digest/manifests/{}", img.digest))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect(200);
    assert_eq!(r.body.as_ref(), img.manifest.as_slice());
    r.expect_header("content-type", OCI_MANIFEST);
    r.expect_header("docker-content-digest", &img.digest);
    r.expect_header("content-length", &img.manifest.len().to_string());
}

/// Spec "Pull › Checking if content exists" (end-3 HEAD): `200`, no body,
/// `Docker-Content-Digest` and the real `Content-Length`, by tag and by digest.
#[tokio::test]
async fn head_manifest_by_tag_and_digest() {
    let reg = Registry::start().await;
    let img = reg.push_image("pull/head", "v1", "head-manifest").await;
    for reference in ["v1", img.digest.as_str()] {
        let r = reg.head(&format!("/v2/pull/head/manifests/{reference}")).await.expect(200);
        assert!(r.body.is_empty(), "HEAD body: {r:?}");
        r.expect_header("docker-content-digest", &img.digest);
        r.expect_header("content-length", &img.manifest.len().to_string());
        r.expect_header("content-type", OCI_MANIFEST);
    }
}

/// Spec "Pull › Pulling blobs" (end-2): GET MUST answer `200` with the blob, and
/// `Docker-Content-Digest`, if present, MUST match the body; HEAD answers `200`, no body,
/// with the size in `Content-Length`.
#[tokio::test]
async fn pull_blob_get_and_head() {
    let reg = Registry::start().await;
    let img = reg.push_image("pull/blob", "v1", "blob").await;
    for content in [&img.config, &img.layer] {
        let digest = sha256(content);
        let path = format!("/v2/pull/blob/blobs/{digest}");
        let r = reg.get(&path).await.expect(200);
        assert_eq!(r.body.as_ref(), content.as_slice());
        r.expect_header("docker-content-digest", &digest);
        r.expect_header("content-length", &content.len().to_string());

        let h = reg.head(&path).await.expect(200);
        assert!(h.body.is_empty(), "HEAD body: {h:?}");
        h.expect_header("docker-content-digest", &digest);
        h.expect_header("content-length", &content.len().to_string());
    }
}

/// Spec "Pull › Pulling blobs": registries SHOULD support `Range` per RFC 9110 (resumable
/// pull). One range each of: bounded, open, suffix, and clamped past the end (DESIGN §5).
#[tokio::test]
async fn pull_blob_range() {
    let reg = Registry::start().await;
    let layer = bytes(3000, 42);
    let digest = reg.push_blob("pull/range", &layer).await;
    let path = format!("/v2/pull/range/blobs/{digest}");
    let cases: [(&str, usize, usize); 5] = [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=2990-", 2990, 2999),
        ("bytes=-20", 2980, 2999),
        ("bytes=2900-99999", 2900, 2999),
    ];
    for (range, first, last) in cases {
        let r = reg.req(Method::GET, &path).header("range", range).send().await.expect(206);
        assert_eq!(r.body.as_ref(), &layer[first..=last], "body for {range}");
        r.expect_header("content-range", &format!("bytes {first}-{last}/3000"));
        r.expect_header("content-length", &(last - first + 1).to_string());
    }
}

/// Spec "Pull › Pulling blobs" + RFC 9110 §15.5.17: a range that cannot be satisfied gets
/// `416` with `Content-Range: bytes */<size>` (DESIGN §5), never a 5xx.
#[tokio::test]
async fn pull_blob_range_unsatisfiable() {
    let reg = Registry::start().await;
    let layer = bytes(3000, 43);
    let digest = reg.push_blob("pull/range416", &layer).await;
    let path = format!("/v2/pull/range416/blobs/{digest}");
    for range in ["bytes=500-0", "bytes=3000-", "bytes=5000-6000"] {
        let r = reg.req(Method::GET, &path).header("range", range).send().await;
        assert_eq!(r.status, 416, "{range}: {r:?}");
        r.expect_header("content-range", "bytes */3000");
    }
}

/// Spec "Pull › Pulling manifests/blobs": content not in the registry MUST be `404`; the
/// error codes are `MANIFEST_UNKNOWN` (code-7) and `BLOB_UNKNOWN` (code-1).
#[tokio::test]
async fn pull_missing_content_is_404() {
    let reg = Registry::start().await;
    reg.push_image("pull/missing", "v1", "missing").await;
    let unknown = sha256(b"never pushed");
    reg.get("/v2/pull/missing/manifests/nosuchtag").await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.get(&format!("/v2/pull/missing/manifests/{unknown}")).await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.head("/v2/pull/missing/manifests/nosuchtag").await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.get(&format!("/v2/pull/missing/blobs/{unknown}")).await.expect_error(404, "BLOB_UNKNOWN");
    reg.head(&format!("/v2/pull/missing/blobs/{unknown}")).await.expect_error(404, "BLOB_UNKNOWN");
}

/// Spec "Pull › Pulling blobs": "If the blob does not exist in the repository" → 404;
/// DESIGN §5: a blob is readable only through a repository that links it.
#[tokio::test]
async fn pull_blob_only_through_linking_repository() {
    let reg = Registry::start().await;
    let digest = reg.push_blob("pull/owner", b"linked only here").await;
    reg.push_image("pull/other", "v1", "other").await;
    reg.get(&format!("/v2/pull/other/blobs/{digest}")).await.expect_error(404, "BLOB_UNKNOWN");
}

/// Spec "Pull › Pulling manifests": a manifest is addressed within `<name>`; one pushed to
/// another repository is `404 MANIFEST_UNKNOWN` here, by digest as by tag.
#[tokio::test]
async fn pull_manifest_only_in_its_repository() {
    let reg = Registry::start().await;
    let img = reg.push_image("pull/mine", "v1", "mine").await;
    reg.push_image("pull/yours", "v2", "yours").await;
    reg.get(&format!("/v2/pull/yours/manifests/{}", img.digest)).await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/pull/yours/manifests/v1").await.expect_error(404, "MANIFEST_UNKNOWN");
}

/// Spec "Pull › Pulling manifests": `Content-Type` is the stored manifest's type
/// ("SHOULD match the Content-Type used when the manifest was pushed"), here a Docker v2
/// schema 2 manifest and an OCI index, whatever the `Accept` (DESIGN §5).
#[tokio::test]
async fn pull_returns_stored_media_type() {
    let reg = Registry::start().await;
    let config = config_for("docker");
    let layer = bytes(500, 7);
    reg.push_blob("pull/types", &config).await;
    reg.push_blob("pull/types", &layer).await;
    let docker = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &config),
        "layers": [descriptor(DOCKER_LAYER, &layer)],
    }))
    .expect("json");
    reg.put_manifest("pull/types", "docker", DOCKER_MANIFEST, &docker).await.expect(201);
    let r =
        reg.req(Method::GET, "/v2/pull/types/manifests/docker").header("accept", OCI_MANIFEST).send().await.expect(200);
    r.expect_header("content-type", DOCKER_MANIFEST);
    assert_eq!(r.body.as_ref(), docker.as_slice());

    let img = reg.push_image("pull/types", "img", "types").await;
    let index = image_index(&[&img.manifest], json!({}));
    reg.put_manifest("pull/types", "index", OCI_INDEX, &index).await.expect(201);
    let r = reg.get("/v2/pull/types/manifests/index").await.expect(200);
    r.expect_header("content-type", OCI_INDEX);
    r.expect_header("docker-content-digest", &sha256(&index));
    assert_eq!(r.body.as_ref(), index.as_slice());
}

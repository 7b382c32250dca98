//! Manifests (OCI end-3, end-7, end-9; DESIGN §5): push by tag and digest, byte-exact
//! reads with the stored type, the accepted formats, validation errors, the size limit, and
//! deletion by digest and by tag.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_by_tag_then_get_and_head_byte_exact() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app"]).await;
    let config = b"{\"architecture\":\"arm64\",\"os\":\"linux\"}".to_vec();
    let layer = test_bytes(2000, 31);
    s.push_blob(&token, "man/app", &config).await;
    s.push_blob(&token, "man/app", &layer).await;
    let manifest = oci_manifest(&config, &[&layer]);
    let digest = sha256_digest(&manifest);

    let resp = s.put_manifest(&token, "man/app", "v1.0", Some(OCI_MANIFEST), &manifest).await;
    let resp = expect_status(resp, 201, "PUT manifest by tag").await;
    assert_eq!(header(&resp, "location"), Some(format!("/v2/man/app/manifests/{digest}")));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));

    for reference in ["v1.0", digest.as_str()] {
        let resp = s.get(&format!("/v2/man/app/manifests/{reference}"), Some(&token)).await;
        let resp = expect_status(resp, 200, &format!("GET manifest {reference}")).await;
        assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));
        assert_eq!(header(&resp, "content-length"), Some(manifest.len().to_string()));
        assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
        let body = resp.bytes().await.unwrap();
        assert!(body.as_ref() == manifest.as_slice(), "manifest must be returned byte-exact");

        let resp = s.head(&format!("/v2/man/app/manifests/{reference}"), Some(&token)).await;
        let resp = expect_status(resp, 200, &format!("HEAD manifest {reference}")).await;
        assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));
        assert_eq!(header(&resp, "content-length"), Some(manifest.len().to_string()), "HEAD length");
        assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
        assert!(resp.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_answers_stored_type_whatever_the_accept() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app"]).await;
    let img = s.push_image(&token, "man/app", "latest", "accept").await;
    for accept in [DOCKER_MANIFEST, "application/json", "*/*", OCI_INDEX] {
        let resp = s
            .req(Method::GET, "/v2/man/app/manifests/latest", Some(&token))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let resp = expect_status(resp, 200, &format!("GET with Accept: {accept}")).await;
        assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST), "Accept: {accept}");
        assert!(resp.bytes().await.unwrap().as_ref() == img.manifest.as_slice());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_by_digest_and_with_tag_parameters() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app"]).await;
    let config = b"{\"c\":1}".to_vec();
    s.push_blob(&token, "man/app", &config).await;
    let manifest = oci_manifest(&config, &[]);
    let digest = sha256_digest(&manifest);

    let resp =
        s.put_manifest(&token, "man/app", &format!("{digest}?tag=one&tag=two"), Some(OCI_MANIFEST), &manifest).await;
    let resp = expect_status(resp, 201, "PUT by digest with ?tag=").await;
    assert_eq!(header(&resp, "location"), Some(format!("/v2/man/app/manifests/{digest}")));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    let mut oci_tags: Vec<String> = headers_all(&resp, "oci-tag")
        .iter()
        .flat_map(|v| v.split(',').map(|t| t.trim().to_string()).collect::<Vec<_>>())
        .collect();
    oci_tags.sort();
    assert_eq!(oci_tags, ["one", "two"], "OCI-Tag headers");

    for reference in ["one", "two", digest.as_str()] {
        let resp = s.get(&format!("/v2/man/app/manifests/{reference}"), Some(&token)).await;
        let body = expect_status(resp, 200, reference).await.bytes().await.unwrap();
        assert!(body.as_ref() == manifest.as_slice());
    }

    // A plain PUT by digest, no tag: not listed as a tag.
    let other = oci_manifest(&config, &[]).into_iter().chain(*b" ").collect::<Vec<u8>>();
    let other_digest = sha256_digest(&other);
    let resp = s.put_manifest(&token, "man/app", &other_digest, Some(OCI_MANIFEST), &other).await;
    expect_status(resp, 201, "PUT by digest").await;
    let resp = s.get("/v2/man/app/tags/list", Some(&token)).await;
    let json: Value = expect_status(resp, 200, "tags").await.json().await.unwrap();
    assert_eq!(json["tags"], json!(["one", "two"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_by_digest_that_does_not_match_body() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app"]).await;
    let config = b"{\"c\":2}".to_vec();
    s.push_blob(&token, "man/app", &config).await;
    let manifest = oci_manifest(&config, &[]);
    let wrong = sha256_digest(b"not the manifest");
    let resp = s.put_manifest(&token, "man/app", &wrong, Some(OCI_MANIFEST), &manifest).await;
    expect_error(resp, 400, "DIGEST_INVALID", "PUT by a digest that is not the body's").await;
    for d in [wrong, sha256_digest(&manifest)] {
        let resp = s.get(&format!("/v2/man/app/manifests/{d}"), Some(&token)).await;
        assert_eq!(resp.status(), 404, "nothing stored under {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_by_sha512_digest() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app"]).await;
    let config = b"{\"c\":512}".to_vec();
    s.push_blob(&token, "man/app", &config).await;
    let manifest = oci_manifest(&config, &[]);
    let digest = sha512_digest(&manifest);
    let resp = s.put_manifest(&token, "man/app", &digest, Some(OCI_MANIFEST), &manifest).await;
    let resp = expect_status(resp, 201, "PUT by sha512 digest").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert_eq!(header(&resp, "location"), Some(format!("/v2/man/app/manifests/{digest}")));
    let resp = s.get(&format!("/v2/man/app/manifests/{digest}"), Some(&token)).await;
    let resp = expect_status(resp, 200, "GET by sha512").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(digest.as_str()));
    assert!(resp.bytes().await.unwrap().as_ref() == manifest.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_schema2_manifest_and_manifest_list() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/docker"]).await;
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{}}".to_vec();
    let layer = test_bytes(4000, 32);
    s.push_blob(&token, "man/docker", &config).await;
    s.push_blob(&token, "man/docker", &layer).await;
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &config),
        "layers": [descriptor(DOCKER_LAYER, &layer)],
    }))
    .unwrap();
    let digest = s.push_manifest(&token, "man/docker", "amd64", DOCKER_MANIFEST, &manifest).await;

    let list = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{
            "mediaType": DOCKER_MANIFEST,
            "digest": digest,
            "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    }))
    .unwrap();
    let list_digest = s.push_manifest(&token, "man/docker", "latest", DOCKER_LIST, &list).await;

    for (reference, ty, bytes) in [
        ("amd64", DOCKER_MANIFEST, &manifest),
        ("latest", DOCKER_LIST, &list),
        (digest.as_str(), DOCKER_MANIFEST, &manifest),
        (list_digest.as_str(), DOCKER_LIST, &list),
    ] {
        let resp = s.get(&format!("/v2/man/docker/manifests/{reference}"), Some(&token)).await;
        let resp = expect_status(resp, 200, reference).await;
        assert_eq!(header(&resp, "content-type").as_deref(), Some(ty), "{reference}");
        assert!(resp.bytes().await.unwrap().as_ref() == bytes.as_slice(), "{reference}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_index_children_must_exist() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/multi"]).await;
    let config = b"{\"os\":\"linux\"}".to_vec();
    s.push_blob(&token, "man/multi", &config).await;
    let child = oci_manifest(&config, &[]);
    let index = oci_index(&[&child]);
    let index_digest = sha256_digest(&index);

    let resp = s.put_manifest(&token, "man/multi", "latest", Some(OCI_INDEX), &index).await;
    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN", "index whose child is missing").await;
    let resp = s.get("/v2/man/multi/manifests/latest", Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "tag after refused index").await;
    let resp = s.get(&format!("/v2/man/multi/manifests/{index_digest}"), Some(&token)).await;
    assert_eq!(resp.status(), 404, "digest after refused index");

    let child_digest = sha256_digest(&child);
    let resp = s.put_manifest(&token, "man/multi", &child_digest, Some(OCI_MANIFEST), &child).await;
    expect_status(resp, 201, "push child by digest").await;
    s.push_manifest(&token, "man/multi", "latest", OCI_INDEX, &index).await;
    let resp = s.get("/v2/man/multi/manifests/latest", Some(&token)).await;
    let resp = expect_status(resp, 200, "GET index").await;
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_INDEX));
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(index_digest.as_str()));
    assert!(resp.bytes().await.unwrap().as_ref() == index.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blob_is_manifest_blob_unknown_and_nothing_is_stored() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app", "man/elsewhere"]).await;
    let config = b"{\"os\":\"linux\"}".to_vec();
    let layer = test_bytes(1000, 33);
    s.push_blob(&token, "man/app", &config).await;
    // The layer exists, but only in another repository: it does not count.
    s.push_blob(&token, "man/elsewhere", &layer).await;
    let manifest = oci_manifest(&config, &[&layer]);
    let digest = sha256_digest(&manifest);
    let before = s.blob_files();

    let resp = s.put_manifest(&token, "man/app", "v1", Some(OCI_MANIFEST), &manifest).await;
    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN", "layer missing from this repository").await;

    let resp = s.get("/v2/man/app/manifests/v1", Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "tag after refused manifest").await;
    let resp = s.get(&format!("/v2/man/app/manifests/{digest}"), Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "digest after refused manifest").await;
    let resp = s.get("/v2/man/app/tags/list", Some(&token)).await;
    let json: Value = expect_status(resp, 200, "tags").await.json().await.unwrap();
    assert_eq!(json["tags"], json!([]), "no tag after a refused manifest");
    assert_eq!(s.blob_files(), before, "files under blobs/ changed after a refused manifest");

    // Missing config, too.
    let manifest = oci_manifest(b"{\"never\":\"pushed\"}", &[]);
    let resp = s.put_manifest(&token, "man/app", "v2", Some(OCI_MANIFEST), &manifest).await;
    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN", "config missing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_distributable_layers_with_urls_need_not_exist() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/win"]).await;
    let config = b"{\"os\":\"windows\"}".to_vec();
    s.push_blob(&token, "man/win", &config).await;
    let mut foreign = descriptor("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", b"foreign layer");
    foreign["urls"] = json!(["https://example.invalid/layer.tar.gz"]);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [foreign],
    }))
    .unwrap();
    s.push_manifest(&token, "man/win", "ltsc", OCI_MANIFEST, &manifest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_manifest_with_custom_config_type() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/art"]).await;
    let empty = b"{}".to_vec();
    let payload = b"some artifact payload".to_vec();
    s.push_blob(&token, "man/art", &empty).await;
    s.push_blob(&token, "man/art", &payload).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing.v1",
        "config": descriptor("application/vnd.oci.empty.v1+json", &empty),
        "layers": [descriptor("application/vnd.example.payload", &payload)],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .unwrap();
    s.push_manifest(&token, "man/art", "v1", OCI_MANIFEST, &manifest).await;
    let resp = s.get("/v2/man/art/manifests/v1", Some(&token)).await;
    assert!(expect_status(resp, 200, "GET artifact").await.bytes().await.unwrap().as_ref() == manifest.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_and_media_type() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/ct"]).await;
    let config = b"{\"ct\":true}".to_vec();
    s.push_blob(&token, "man/ct", &config).await;
    let manifest = oci_manifest(&config, &[]);

    // Content-Type differs from the body's mediaType.
    let resp = s.put_manifest(&token, "man/ct", "mismatch", Some(DOCKER_MANIFEST), &manifest).await;
    expect_error(resp, 400, "MANIFEST_INVALID", "Content-Type vs mediaType").await;
    let resp = s.get("/v2/man/ct/manifests/mismatch", Some(&token)).await;
    assert_eq!(resp.status(), 404, "refused manifest was tagged");

    // Parameters on Content-Type are ignored.
    let ct = format!("{OCI_MANIFEST}; charset=utf-8");
    s.push_manifest(&token, "man/ct", "params", &ct, &manifest).await;
    let resp = s.get("/v2/man/ct/manifests/params", Some(&token)).await;
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));

    // No Content-Type: the body's mediaType decides.
    let resp = s.put_manifest(&token, "man/ct", "nohdr", None, &manifest).await;
    expect_status(resp, 201, "PUT without Content-Type").await;
    let resp = s.get("/v2/man/ct/manifests/nohdr", Some(&token)).await;
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));

    // Content-Type only (no mediaType in the body) is fine.
    let bare = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [],
    }))
    .unwrap();
    s.push_manifest(&token, "man/ct", "bare", OCI_MANIFEST, &bare).await;
    let resp = s.get("/v2/man/ct/manifests/bare", Some(&token)).await;
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));

    // Neither: 400.
    let resp = s.put_manifest(&token, "man/ct", "neither", None, &bare).await;
    expect_error(resp, 400, "MANIFEST_INVALID", "no Content-Type and no mediaType").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_are_manifest_invalid() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/bad"]).await;
    s.push_blob(&token, "man/bad", b"x").await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{this is not json".to_vec()),
        ("truncated", oci_manifest(b"x", &[])[..40].to_vec()),
        ("JSON array", b"[1,2,3]".to_vec()),
        (
            "config missing",
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})).unwrap(),
        ),
    ];
    for (what, body) in bodies {
        let resp = s.put_manifest(&token, "man/bad", "t", Some(OCI_MANIFEST), &body).await;
        expect_error(resp, 400, "MANIFEST_INVALID", what).await;
    }
    let resp = s.get("/v2/man/bad/manifests/t", Some(&token)).await;
    assert_eq!(resp.status(), 404);
}

/// A valid OCI manifest (config `config`, no layers) padded to exactly `size` bytes.
fn manifest_of_size(config: &[u8], size: usize) -> Vec<u8> {
    let make = |pad: usize| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [],
            "annotations": {"pad": "x".repeat(pad)},
        }))
        .unwrap()
    };
    let base = make(0).len();
    let m = make(size - base);
    assert_eq!(m.len(), size);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_size_limit_default_4_mib() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/big"]).await;
    let config = b"{}".to_vec();
    s.push_blob(&token, "man/big", &config).await;
    let limit = 4 * 1024 * 1024;

    let over = manifest_of_size(&config, limit + 1);
    let resp = s.put_manifest(&token, "man/big", "over", Some(OCI_MANIFEST), &over).await;
    assert_eq!(resp.status(), 413, "manifest of 4 MiB + 1 byte");
    let resp = s.get("/v2/man/big/manifests/over", Some(&token)).await;
    assert_eq!(resp.status(), 404, "oversized manifest stored");

    let at = manifest_of_size(&config, limit);
    s.push_manifest(&token, "man/big", "at", OCI_MANIFEST, &at).await;
    let resp = s.get("/v2/man/big/manifests/at", Some(&token)).await;
    let resp = expect_status(resp, 200, "GET 4 MiB manifest").await;
    assert_eq!(header(&resp, "content-length"), Some(limit.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_size_limit_is_configurable() {
    let s = TestServer::start_with(|c| c.limits.max_manifest_bytes = 2048).await;
    let token = s.repo_token(&["man/big"]).await;
    let config = b"{}".to_vec();
    s.push_blob(&token, "man/big", &config).await;
    let resp = s.put_manifest(&token, "man/big", "over", Some(OCI_MANIFEST), &manifest_of_size(&config, 2049)).await;
    assert_eq!(resp.status(), 413, "manifest over the configured limit");
    s.push_manifest(&token, "man/big", "at", OCI_MANIFEST, &manifest_of_size(&config, 2048)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_manifest_and_repository() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app", "man/absent"]).await;
    s.push_image(&token, "man/app", "v1", "unknown").await;
    let resp = s.get("/v2/man/app/manifests/nope", Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "unknown tag").await;
    let d = sha256_digest(b"no such manifest");
    let resp = s.get(&format!("/v2/man/app/manifests/{d}"), Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "unknown digest").await;
    let resp = s.head("/v2/man/app/manifests/nope", Some(&token)).await;
    assert_eq!(resp.status(), 404, "HEAD unknown tag");
    let resp = s.get("/v2/man/absent/manifests/v1", Some(&token)).await;
    expect_error(resp, 404, "NAME_UNKNOWN", "manifest of an absent repository").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tag_and_digest_references() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app"]).await;
    let img = s.push_image(&token, "man/app", "v1", "refs").await;
    let long = "t".repeat(129);
    for bad in [".hidden", "-dash", long.as_str(), "a+b"] {
        let resp = s.put_manifest(&token, "man/app", bad, Some(OCI_MANIFEST), &img.manifest).await;
        expect_error(resp, 400, "TAG_INVALID", &format!("PUT manifest with tag {bad:?}")).await;
    }
    let ok = "T".repeat(128);
    s.push_manifest(&token, "man/app", &ok, OCI_MANIFEST, &img.manifest).await;
    let resp = s.get("/v2/man/app/manifests/sha256:abc", Some(&token)).await;
    expect_error(resp, 400, "DIGEST_INVALID", "GET manifest with a malformed digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retagging_moves_the_tag() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/app"]).await;
    let a = s.push_image(&token, "man/app", "latest", "a").await;
    let b = s.push_image(&token, "man/app", "latest", "b").await;
    let resp = s.get("/v2/man/app/manifests/latest", Some(&token)).await;
    let resp = expect_status(resp, 200, "GET latest").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(b.digest.as_str()));
    assert!(resp.bytes().await.unwrap().as_ref() == b.manifest.as_slice());
    let resp = s.get(&format!("/v2/man/app/manifests/{}", a.digest), Some(&token)).await;
    expect_status(resp, 200, "old manifest still there by digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_manifest_by_digest_removes_its_tags() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/del"]).await;
    let img = s.push_image(&token, "man/del", "v1", "del").await;
    s.push_manifest(&token, "man/del", "v1-alias", OCI_MANIFEST, &img.manifest).await;
    let keep = s.push_image(&token, "man/del", "keep", "keep").await;

    let resp = s.delete(&format!("/v2/man/del/manifests/{}", img.digest), Some(&token)).await;
    expect_status(resp, 202, "DELETE manifest by digest").await;
    for reference in ["v1", "v1-alias", img.digest.as_str()] {
        let resp = s.get(&format!("/v2/man/del/manifests/{reference}"), Some(&token)).await;
        expect_error(resp, 404, "MANIFEST_UNKNOWN", &format!("GET {reference} after delete")).await;
    }
    let resp = s.get("/v2/man/del/tags/list", Some(&token)).await;
    let json: Value = expect_status(resp, 200, "tags").await.json().await.unwrap();
    assert_eq!(json["tags"], json!(["keep"]));
    let resp = s.get(&format!("/v2/man/del/manifests/{}", keep.digest), Some(&token)).await;
    expect_status(resp, 200, "unrelated manifest").await;

    let resp = s.delete(&format!("/v2/man/del/manifests/{}", img.digest), Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "second DELETE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_tag_keeps_the_manifest() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/del"]).await;
    let img = s.push_image(&token, "man/del", "v1", "tagdel").await;
    s.push_manifest(&token, "man/del", "v1-alias", OCI_MANIFEST, &img.manifest).await;

    let resp = s.delete("/v2/man/del/manifests/v1", Some(&token)).await;
    expect_status(resp, 202, "DELETE tag").await;
    let resp = s.get("/v2/man/del/manifests/v1", Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "deleted tag").await;
    for reference in ["v1-alias", img.digest.as_str()] {
        let resp = s.get(&format!("/v2/man/del/manifests/{reference}"), Some(&token)).await;
        expect_status(resp, 200, reference).await;
    }
    let resp = s.get("/v2/man/del/tags/list", Some(&token)).await;
    let json: Value = expect_status(resp, 200, "tags").await.json().await.unwrap();
    assert_eq!(json["tags"], json!(["v1-alias"]));
    let resp = s.delete("/v2/man/del/manifests/v1", Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "second tag DELETE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_writes_need_the_right_actions() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/acl"]).await;
    let img = s.push_image(&token, "man/acl", "v1", "acl").await;
    let pull_push = s.admin_token(&[&scope("man/acl", "pull,push")]).await;
    let resp = s.delete(&format!("/v2/man/acl/manifests/{}", img.digest), Some(&pull_push)).await;
    expect_error(resp, 403, "DENIED", "DELETE manifest without delete").await;
    let pull = s.admin_token(&[&scope("man/acl", "pull")]).await;
    let resp = s.put_manifest(&pull, "man/acl", "v2", Some(OCI_MANIFEST), &img.manifest).await;
    expect_error(resp, 403, "DENIED", "PUT manifest without push").await;
    let resp = s.get("/v2/man/acl/manifests/v2", Some(&token)).await;
    assert_eq!(resp.status(), 404);
    let resp = s.get(&format!("/v2/man/acl/manifests/{}", img.digest), Some(&token)).await;
    expect_status(resp, 200, "manifest survived").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_are_per_repository() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/one", "man/two"]).await;
    let img = s.push_image(&token, "man/one", "v1", "per-repo").await;
    s.push_image(&token, "man/two", "other", "other").await;
    let resp = s.get(&format!("/v2/man/two/manifests/{}", img.digest), Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "manifest of man/one read through man/two").await;
    let resp = s.get("/v2/man/two/manifests/v1", Some(&token)).await;
    expect_error(resp, 404, "MANIFEST_UNKNOWN", "tag of man/one read through man/two").await;

    // An index in man/two may not name a child that exists only in man/one.
    let index = oci_index(&[&img.manifest]);
    let resp = s.put_manifest(&token, "man/two", "idx", Some(OCI_INDEX), &index).await;
    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN", "index child only in another repository").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinked_blob_no_longer_satisfies_a_manifest() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/unlink"]).await;
    let config = b"{\"unlink\":1}".to_vec();
    let layer = test_bytes(3000, 34);
    s.push_blob(&token, "man/unlink", &config).await;
    let layer_digest = s.push_blob(&token, "man/unlink", &layer).await;
    let resp = s.delete(&format!("/v2/man/unlink/blobs/{layer_digest}"), Some(&token)).await;
    expect_status(resp, 202, "DELETE layer").await;
    let manifest = oci_manifest(&config, &[&layer]);
    let resp = s.put_manifest(&token, "man/unlink", "v1", Some(OCI_MANIFEST), &manifest).await;
    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN", "manifest naming an unlinked layer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_manifest_is_readable_as_a_blob_of_its_repository() {
    // DESIGN §5: a blob is linked by "upload, mount or manifest".
    let s = TestServer::start().await;
    let token = s.repo_token(&["man/asblob"]).await;
    let img = s.push_image(&token, "man/asblob", "v1", "asblob").await;
    let resp = s.get(&format!("/v2/man/asblob/blobs/{}", img.digest), Some(&token)).await;
    let resp = expect_status(resp, 200, "GET a manifest's digest through /blobs/").await;
    assert_eq!(header(&resp, "docker-content-digest").as_deref(), Some(img.digest.as_str()));
    assert!(resp.bytes().await.unwrap().as_ref() == img.manifest.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_manifest_without_content_length_is_413() {
    let s = TestServer::start_with(|c| c.limits.max_manifest_bytes = 64 * 1024).await;
    let token = s.repo_token(&["man/big"]).await;
    let config = b"{}".to_vec();
    s.push_blob(&token, "man/big", &config).await;
    let body = manifest_of_size(&config, 200 * 1024);
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> =
        body.chunks(8192).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let resp = s
        .req(Method::PUT, "/v2/man/big/manifests/streamed", Some(&token))
        .header("content-type", OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(pieces)))
        .send()
        .await;
    // The server may answer 413 and close before reading everything; a reset is also a refusal.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 413, "chunked manifest over the limit");
    }
    let resp = s.get("/v2/man/big/manifests/streamed", Some(&token)).await;
    assert_eq!(resp.status(), 404, "oversized streamed manifest stored");
}

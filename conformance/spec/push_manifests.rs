//! Spec "Workflow Categories › Push › Pushing Manifests" (end-7): by tag, by digest (sha256
//! and sha512), with `?tag=`, with a `subject`, with non-distributable layers, and the
//! rejections: unknown blobs, digest mismatch, oversize.

use serde_json::json;

use crate::client::Registry;
use crate::content::*;

/// Spec "Pushing Manifests" (end-7): PUT by tag MUST answer `201` with a `Location` and
/// `Docker-Content-Digest`; the official suite pushes the same manifest under four tags,
/// each `201`, and each then pulls it.
#[tokio::test]
async fn push_manifest_by_tag_repeatedly() {
    let reg = Registry::start().await;
    let img = reg.push_image("pushm/tags", "first", "tags").await;
    for tag in ["test0", "test1", "test2", "test3", "test0"] {
        let r = reg.put_manifest("pushm/tags", tag, OCI_MANIFEST, &img.manifest).await.expect(201);
        r.expect_header("docker-content-digest", &img.digest);
        let location = r.location();
        assert!(
            location == format!("/v2/pushm/tags/manifests/{}", img.digest)
                || location == format!("/v2/pushm/tags/manifests/{tag}"),
            "Location {location}"
        );
        reg.get(&location).await.expect(200);
        reg.get(&format!("/v2/pushm/tags/manifests/{tag}"))
            .await
            .expect(200)
            .expect_header("docker-content-digest", &img.digest);
    }
}

/// Spec "Pushing Manifests" (end-7): pushing another manifest under an existing tag moves
/// the tag; the first manifest stays pullable by digest.
#[tokio::test]
async fn push_manifest_moves_tag() {
    let reg = Registry::start().await;
    let first = reg.push_image("pushm/move", "latest", "first").await;
    let second = reg.push_image("pushm/move", "latest", "second").await;
    assert_ne!(first.digest, second.digest);
    let r = reg.get("/v2/pushm/move/manifests/latest").await.expect(200);
    r.expect_header("docker-content-digest", &second.digest);
    assert_eq!(r.body.as_ref(), second.manifest.as_slice());
    reg.get(&format!("/v2/pushm/move/manifests/{}", first.digest)).await.expect(200);
}

/// Spec "Pushing Manifests": "The registry MUST store the manifest exactly as provided";
/// pretty-printing, key order and unknown fields survive (DESIGN §5).
#[tokio::test]
async fn push_manifest_stored_byte_exact() {
    let reg = Registry::start().await;
    let config = config_for("exact");
    reg.push_blob("pushm/exact", &config).await;
    let body = format!(
        "{{\n   \"schemaVersion\" : 2,\n\t\"x-unknown\": [1, 2, {{\"k\": null}}],\n   \
         \"mediaType\": \"{OCI_MANIFEST}\", \"config\": {},\n \"layers\": [] }}\n\n",
        descriptor(OCI_CONFIG, &config)
    )
    .into_bytes();
    reg.put_manifest("pushm/exact", "v1", OCI_MANIFEST, &body)
        .await
        .expect(201)
        .expect_header("docker-content-digest", &sha256(&body));
    let r = reg.get("/v2/pushm/exact/manifests/v1").await.expect(200);
    assert_eq!(r.body.as_ref(), body.as_slice());
}

/// Official suite "Registry should accept a manifest upload with no layers", here an
/// artifact whose config is the OCI empty descriptor.
#[tokio::test]
async fn push_manifest_without_layers() {
    let reg = Registry::start().await;
    reg.push_blob("pushm/nolayers", b"{}").await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing",
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [],
    }))
    .expect("json");
    reg.put_manifest("pushm/nolayers", "v1", OCI_MANIFEST, &body).await.expect(201);
    reg.get("/v2/pushm/nolayers/manifests/v1").await.expect(200);
}

/// Spec "Pushing Manifests" (end-7 with `?tag=`): a manifest PUT by digest with one or more
/// `tag` query parameters answers `201` and lists the tags it applied in `OCI-Tag`; each tag
/// then resolves to the manifest.
#[tokio::test]
async fn push_manifest_by_digest_with_tag_params() {
    let reg = Registry::start().await;
    let img = reg.push_image("pushm/ocitag", "seed", "ocitag").await;
    let r = reg
        .put_manifest(
            "pushm/ocitag",
            &format!("{}?tag=alpha&tag=beta&tag=gamma", img.digest),
            OCI_MANIFEST,
            &img.manifest,
        )
        .await
        .expect(201);
    r.expect_header("docker-content-digest", &img.digest);
    let mut tags = r.header_list("oci-tag");
    tags.sort();
    assert_eq!(tags, ["alpha", "beta", "gamma"], "OCI-Tag: {r:?}");
    for tag in ["alpha", "beta", "gamma"] {
        reg.get(&format!("/v2/pushm/ocitag/manifests/{tag}"))
            .await
            .expect(200)
            .expect_header("docker-content-digest", &img.digest);
    }
}

/// Spec "Pushing Manifests" and image-spec "Digests": a manifest PUT by a `sha512:` digest
/// is `201` with `Docker-Content-Digest` in sha512 ("MUST match the digest provided by the
/// client") and pullable by that digest (DESIGN §5: the digest is in the algorithm it was
/// pushed by).
#[tokio::test]
async fn push_manifest_by_sha512_digest() {
    let reg = Registry::start().await;
    let img = reg.push_image("pushm/sha512", "v1", "sha512m").await;
    let manifest = image_manifest(&img.config, &[&img.layer], json!({"annotations": {"variant": "sha512"}}));
    let digest = sha512(&manifest);
    let r = reg.put_manifest("pushm/sha512", &digest, OCI_MANIFEST, &manifest).await.expect(201);
    r.expect_header("docker-content-digest", &digest);
    assert_eq!(r.location(), format!("/v2/pushm/sha512/manifests/{digest}"));
    let g = reg.get(&format!("/v2/pushm/sha512/manifests/{digest}")).await.expect(200);
    g.expect_header("docker-content-digest", &digest);
    assert_eq!(g.body.as_ref(), manifest.as_slice());
}

/// Spec "Push": "A registry MUST accept a manifest that includes a `subject` field
/// referencing another manifest that does not yet exist"; "Pushing a manifest with a
/// subject field": the registry answers `OCI-Subject: <subject digest>`.
#[tokio::test]
async fn push_manifest_with_absent_subject() {
    let reg = Registry::start().await;
    reg.push_blob("pushm/subject", b"{}").await;
    let subject = image_manifest(b"not pushed config", &[], json!({}));
    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [],
        "subject": descriptor(OCI_MANIFEST, &subject),
    }))
    .expect("json");
    let digest = sha256(&referrer);
    let r = reg.put_manifest("pushm/subject", &digest, OCI_MANIFEST, &referrer).await.expect(201);
    r.expect_header("oci-subject", &sha256(&subject));
    r.expect_header("docker-content-digest", &digest);
}

/// Spec "Push": a registry MAY reject descriptors that name absent blobs, but a layer
/// carrying `urls` (image-spec non-distributable layer) is hosted elsewhere, so it is
/// accepted without being pushed (DESIGN §5).
#[tokio::test]
async fn push_manifest_with_non_distributable_layer() {
    let reg = Registry::start().await;
    let config = config_for("nondist");
    reg.push_blob("pushm/nondist", &config).await;
    let foreign = bytes(100, 15);
    let mut layer = descriptor(OCI_NONDIST_LAYER, &foreign);
    layer["urls"] = json!(["https://example.com/layer.tar.gz"]);
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [layer],
    }))
    .expect("json");
    reg.put_manifest("pushm/nondist", "v1", OCI_MANIFEST, &body).await.expect(201);
}

/// Spec "Push": a manifest rejected for referencing blobs that do not exist "MUST return
/// one or more `MANIFEST_BLOB_UNKNOWN` errors" (code-5); nothing is stored (DESIGN §5).
#[tokio::test]
async fn push_manifest_with_missing_blob() {
    let reg = Registry::start().await;
    let config = config_for("missing");
    reg.push_blob("pushm/missing", &config).await;
    let absent_layer = bytes(300, 16);
    let body = image_manifest(&config, &[&absent_layer], json!({}));
    reg.put_manifest("pushm/missing", "v1", OCI_MANIFEST, &body).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    reg.get("/v2/pushm/missing/manifests/v1").await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.get(&format!("/v2/pushm/missing/manifests/{}", sha256(&body))).await.expect_error(404, "MANIFEST_UNKNOWN");

    // The config itself missing, too.
    let body = image_manifest(b"absent config", &[], json!({}));
    reg.put_manifest("pushm/missing", "v2", OCI_MANIFEST, &body).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    // A layer that exists only in another repository is not present in this one
    // (DESIGN §5: descriptors must be present in this repository).
    let elsewhere = bytes(300, 17);
    reg.push_blob("pushm/elsewhere", &elsewhere).await;
    let body = image_manifest(&config, &[&elsewhere], json!({}));
    reg.put_manifest("pushm/missing", "v3", OCI_MANIFEST, &body).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

/// Spec "Push": an image index whose `manifests` name a manifest not in the repository is
/// rejected with `MANIFEST_BLOB_UNKNOWN` ("manifest references a manifest or blob unknown
/// to registry"); one over pushed manifests is `201`.
#[tokio::test]
async fn push_index_checks_children() {
    let reg = Registry::start().await;
    let img = reg.push_image("pushm/index", "child", "child").await;
    let good = image_index(&[&img.manifest], json!({}));
    reg.put_manifest("pushm/index", "multi", OCI_INDEX, &good)
        .await
        .expect(201)
        .expect_header("docker-content-digest", &sha256(&good));
    let absent = image_manifest(&img.config, &[], json!({"annotations": {"x": "y"}}));
    let bad = image_index(&[&img.manifest, &absent], json!({}));
    reg.put_manifest("pushm/index", "broken", OCI_INDEX, &bad).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

/// Spec "Pushing Manifests": `Docker-Content-Digest` "MUST match the digest provided by the
/// client"; a body whose digest differs from the one in the URL is `400 DIGEST_INVALID`
/// (code-4) and not stored.
#[tokio::test]
async fn push_manifest_digest_mismatch() {
    let reg = Registry::start().await;
    let img = reg.push_image("pushm/mismatch", "v1", "mismatch").await;
    let other = image_manifest(&img.config, &[], json!({}));
    let wrong = sha256(&other);
    reg.put_manifest("pushm/mismatch", &wrong, OCI_MANIFEST, &img.manifest).await.expect_error(400, "DIGEST_INVALID");
    reg.get(&format!("/v2/pushm/mismatch/manifests/{wrong}")).await.expect_error(404, "MANIFEST_UNKNOWN");
}

/// Spec "Pushing Manifests": registries SHOULD enforce a maximum size and answer `413`
/// above it, and SHOULD accept at least 4 MiB (DESIGN §5: limit 4 MiB).
#[tokio::test]
async fn push_manifest_too_large_is_413() {
    let reg = Registry::start().await;
    let config = config_for("large");
    reg.push_blob("pushm/large", &config).await;
    let padding = "x".repeat(4 * 1024 * 1024 + 1);
    let body = image_manifest(&config, &[], json!({"annotations": {"pad": padding}}));
    let r = reg.put_manifest("pushm/large", "v1", OCI_MANIFEST, &body).await;
    assert_eq!(r.status, 413, "{r:?}");
    reg.get("/v2/pushm/large/manifests/v1").await.expect_error(404, "MANIFEST_UNKNOWN");
}

/// DESIGN §5 (spec "Pushing Manifests": clients MUST set `Content-Type` to the `mediaType`):
/// a `Content-Type` that contradicts the body's `mediaType` is `400 MANIFEST_INVALID`.
#[tokio::test]
async fn push_manifest_content_type_mismatch() {
    let reg = Registry::start().await;
    let img = reg.push_image("pushm/ctype", "v1", "ctype").await;
    reg.put_manifest("pushm/ctype", "v2", OCI_INDEX, &img.manifest).await.expect_error(400, "MANIFEST_INVALID");
    reg.put_manifest("pushm/ctype", "v3", OCI_MANIFEST, b"{not json").await.expect_error(400, "MANIFEST_INVALID");
}

//! Spec "API › Error Codes" across every endpoint: malformed digests (code-4
//! `DIGEST_INVALID`), invalid repository names (code-8 `NAME_INVALID`), invalid tags
//! (`TAG_INVALID`), unknown repositories (code-9 `NAME_UNKNOWN`). A malformed request is
//! the client's error: 4xx with the spec's JSON body, never a 5xx.

use reqwest::Method;

use crate::client::{Registry, Reply};
use crate::content::*;

/// Digests that break image-spec "Digests" (`algorithm ":" encoded`, sha256 = 64 and sha512
/// = 128 lower-case hex characters).
fn malformed_digests() -> Vec<String> {
    vec![
        "sha256:abc".into(),
        format!("sha256:{}", "z".repeat(64)),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}", "a".repeat(65)),
        format!("sha512:{}", "a".repeat(64)),
        format!("sha256{}", "a".repeat(64)),
        format!(":{}", "a".repeat(64)),
        "sha256:".into(),
    ]
}

#[track_caller]
fn digest_invalid(r: &Reply, digest: &str) {
    assert!(r.status < 500, "{digest}: server error: {r:?}");
    r.expect_error(400, "DIGEST_INVALID");
}

/// Spec "Error Codes" code-4 `DIGEST_INVALID` on every endpoint that takes a digest in the
/// path (end-2, end-3, end-9, end-10, end-12a "MUST return 400 Bad Request" for an invalid
/// digest): GET, HEAD and DELETE of blobs and manifests, and referrers.
#[tokio::test]
async fn malformed_digest_in_path() {
    let reg = Registry::start().await;
    reg.push_image("errs/digest", "v1", "digest").await;
    for d in malformed_digests() {
        let r = reg.get(&format!("/v2/errs/digest/blobs/{d}")).await;
        digest_invalid(&r, &d);
        let r = reg.head(&format!("/v2/errs/digest/blobs/{d}")).await;
        digest_invalid(&r, &d);
        let r = reg.delete(&format!("/v2/errs/digest/blobs/{d}")).await;
        digest_invalid(&r, &d);
        let r = reg.get(&format!("/v2/errs/digest/referrers/{d}")).await;
        digest_invalid(&r, &d);
        if d.contains(':') {
            // With a colon the reference cannot be a tag, so it is a digest that is wrong.
            let r = reg.get(&format!("/v2/errs/digest/manifests/{d}")).await;
            digest_invalid(&r, &d);
            let r = reg.head(&format!("/v2/errs/digest/manifests/{d}")).await;
            digest_invalid(&r, &d);
            let r = reg.delete(&format!("/v2/errs/digest/manifests/{d}")).await;
            digest_invalid(&r, &d);
        }
    }
}

/// Spec end-4b/end-6 failure `400` with code-4 `DIGEST_INVALID`: a malformed `?digest=` on a
/// single POST or on the closing PUT; the session survives the bad PUT is not required, so
/// each PUT uses a fresh session.
#[tokio::test]
async fn malformed_digest_in_query() {
    let reg = Registry::start().await;
    for d in malformed_digests() {
        let r = reg
            .req(Method::POST, &format!("/v2/errs/query/blobs/uploads/?digest={d}"))
            .octets(b"content".to_vec())
            .send()
            .await;
        digest_invalid(&r, &d);
        let location = reg.start_upload("errs/query").await;
        let r = reg.req(Method::PUT, &format!("{location}?digest={d}")).octets(b"content".to_vec()).send().await;
        digest_invalid(&r, &d);
    }
    let r = reg.req(Method::PUT, &reg.start_upload("errs/query").await).octets(b"content".to_vec()).send().await;
    digest_invalid(&r, "(no digest on the closing PUT)");
}

/// Image-spec "Digests": an algorithm the registry does not implement is not a server
/// failure — a 4xx with a spec body, never a 5xx.
#[tokio::test]
async fn unsupported_digest_algorithm() {
    let reg = Registry::start().await;
    reg.push_image("errs/alg", "v1", "alg").await;
    let d = "md5:d41d8cd98f00b204e9800998ecf8427e";
    for r in [
        reg.get(&format!("/v2/errs/alg/blobs/{d}")).await,
        reg.get(&format!("/v2/errs/alg/manifests/{d}")).await,
        reg.req(Method::POST, &format!("/v2/errs/alg/blobs/uploads/?digest={d}")).octets(Vec::new()).send().await,
    ] {
        assert!((400..500).contains(&r.status), "{r:?}");
        let codes = r.error_codes();
        assert!(
            codes.iter().any(|c| {
                ["DIGEST_INVALID", "UNSUPPORTED", "BLOB_UNKNOWN", "MANIFEST_UNKNOWN"].contains(&c.as_str())
            }),
            "{r:?}"
        );
    }
    reg.req(Method::POST, "/v2/errs/alg/blobs/uploads/?digest-algorithm=md5")
        .body(Vec::new())
        .send()
        .await
        .expect_error(400, "DIGEST_INVALID");
}

fn invalid_names() -> Vec<String> {
    vec![
        "UPPER".into(),
        "Mixed/case".into(),
        "a..b".into(),
        "-lead".into(),
        "trail-".into(),
        "_under".into(),
        "a___b".into(),
        "a//b".into(),
        "a/".into(),
        "a b".into(),
        "a".repeat(256),
    ]
}

/// Spec "Pulling manifests": `<name>` MUST match
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*` — otherwise
/// code-8 `NAME_INVALID` with `400`, on every endpoint; DESIGN §2: at most 255 characters,
/// and decided before authorization (an anonymous request gets the same `400`).
#[tokio::test]
async fn invalid_repository_names() {
    let reg = Registry::start().await;
    let d = sha256(b"x");
    for name in invalid_names() {
        let name = name.replace(' ', "%20");
        let paths = [
            (Method::GET, format!("/v2/{name}/tags/list")),
            (Method::GET, format!("/v2/{name}/manifests/latest")),
            (Method::PUT, format!("/v2/{name}/manifests/latest")),
            (Method::GET, format!("/v2/{name}/blobs/{d}")),
            (Method::POST, format!("/v2/{name}/blobs/uploads/")),
            (Method::GET, format!("/v2/{name}/referrers/{d}")),
        ];
        for (method, path) in paths {
            let r = reg.req(method.clone(), &path).body(Vec::new()).send().await;
            assert!(r.status < 500, "{r:?}");
            r.expect_error(400, "NAME_INVALID");
            let r = reg.req(method, &path).body(Vec::new()).send_anonymous().await;
            r.expect_error(400, "NAME_INVALID");
        }
    }
    // The longest allowed name works (DESIGN §2: at most 255 characters).
    let longest = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    assert_eq!(longest.len(), 255);
    reg.push_blob(&longest, b"long name").await;
}

/// Spec "Pulling manifests": a tag MUST match `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. A read
/// of a reference that cannot exist finds nothing: GET/HEAD `404 MANIFEST_UNKNOWN` (as the
/// official suites expect of `.INVALID_MANIFEST_NAME`); a write under it is `400
/// TAG_INVALID` on PUT and DELETE, and in `?tag=` on a PUT by digest (DESIGN §5; the
/// spec's code table has no tag code, Distribution uses `TAG_INVALID`).
#[tokio::test]
async fn invalid_tags() {
    let reg = Registry::start().await;
    let img = reg.push_image("errs/tags", "v1", "tags").await;
    let long = "t".repeat(129);
    for tag in ["-lead", ".dot", ".INVALID_MANIFEST_NAME", long.as_str(), "a%2Bb", "x%21"] {
        let path = format!("/v2/errs/tags/manifests/{tag}");
        reg.get(&path).await.expect_error(404, "MANIFEST_UNKNOWN");
        reg.head(&path).await.expect(404);
        for r in [
            reg.delete(&path).await,
            reg.put_manifest("errs/tags", tag, OCI_MANIFEST, &img.manifest).await,
            reg.put_manifest("errs/tags", &format!("{}?tag={tag}", img.digest), OCI_MANIFEST, &img.manifest).await,
        ] {
            assert!(r.status < 500, "{tag}: {r:?}");
            r.expect_error(400, "TAG_INVALID");
        }
    }
    // The longest valid tag works.
    let longest = format!("_{}", "x".repeat(127));
    reg.put_manifest("errs/tags", &longest, OCI_MANIFEST, &img.manifest).await.expect(201);
    reg.get(&format!("/v2/errs/tags/manifests/{longest}")).await.expect(200);
}

/// Spec code-9 `NAME_UNKNOWN` ("repository name not known to registry") with `404`
/// (end-2, end-3, end-8a, end-9, end-10 failure 404; "Deleting Manifests": "If the
/// repository does not exist, the response MUST return 404"). Checked for a repository in
/// an existing collection and, for reads, in an absent one (DESIGN §3).
#[tokio::test]
async fn unknown_repository() {
    let reg = Registry::start().await;
    reg.push_image("errs/present", "v1", "present").await;
    let d = sha256(b"x");
    for repo in ["errs/absent", "nocollection/absent"] {
        reg.get(&format!("/v2/{repo}/tags/list")).await.expect_error(404, "NAME_UNKNOWN");
        reg.get(&format!("/v2/{repo}/manifests/latest")).await.expect_error(404, "NAME_UNKNOWN");
        reg.head(&format!("/v2/{repo}/manifests/latest")).await.expect_error(404, "NAME_UNKNOWN");
        reg.get(&format!("/v2/{repo}/manifests/{d}")).await.expect_error(404, "NAME_UNKNOWN");
        reg.get(&format!("/v2/{repo}/blobs/{d}")).await.expect_error(404, "NAME_UNKNOWN");
    }
    reg.delete(&format!("/v2/errs/absent/manifests/{d}")).await.expect_error(404, "NAME_UNKNOWN");
    reg.delete("/v2/errs/absent/manifests/latest").await.expect_error(404, "NAME_UNKNOWN");
    reg.delete(&format!("/v2/errs/absent/blobs/{d}")).await.expect_error(404, "NAME_UNKNOWN");
}

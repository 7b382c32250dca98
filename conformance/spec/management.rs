//! Spec "Workflow Categories › Content Management" (end-9, end-10, end-14): deleting tags,
//! manifests and blobs, and cancelling an upload session.

use reqwest::Method;

use crate::client::Registry;
use crate::content::*;

fn tags_of(r: &crate::client::Reply) -> Vec<String> {
    r.json()["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no tags array: {r:?}"))
        .iter()
        .map(|t| t.as_str().expect("string").to_string())
        .collect()
}

/// Spec "Deleting tags" (end-9): DELETE `/v2/<name>/manifests/<tag>` MUST answer `202`;
/// "Once deleted, a GET to `/v2/<name>/manifests/<tag>` will return a 404"
/// (`MANIFEST_UNKNOWN`). The manifest itself and its other tags stay.
#[tokio::test]
async fn delete_tag() {
    let reg = Registry::start().await;
    let img = reg.push_image("mgmt/tag", "keep", "deltag").await;
    reg.put_manifest("mgmt/tag", "drop", OCI_MANIFEST, &img.manifest).await.expect(201);
    reg.delete("/v2/mgmt/tag/manifests/drop").await.expect(202);
    reg.get("/v2/mgmt/tag/manifests/drop").await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/mgmt/tag/manifests/keep").await.expect(200);
    reg.get(&format!("/v2/mgmt/tag/manifests/{}", img.digest)).await.expect(200);
    let r = reg.get("/v2/mgmt/tag/tags/list").await.expect(200);
    assert_eq!(tags_of(&r), ["keep"]);
    reg.delete("/v2/mgmt/tag/manifests/drop").await.expect_error(404, "MANIFEST_UNKNOWN");
}

/// Spec "Deleting Manifests" (end-9): DELETE by digest MUST answer `202`; "Once deleted, a
/// GET to `/v2/<name>/manifests/<digest>` and any tag pointing to that digest will return a
/// 404" (`MANIFEST_UNKNOWN`); the tags leave the tag list (DESIGN §5).
#[tokio::test]
async fn delete_manifest_by_digest() {
    let reg = Registry::start().await;
    let img = reg.push_image("mgmt/manifest", "a", "delmanifest").await;
    reg.put_manifest("mgmt/manifest", "b", OCI_MANIFEST, &img.manifest).await.expect(201);
    let other = reg.push_image("mgmt/manifest", "other", "survivor").await;
    let path = format!("/v2/mgmt/manifest/manifests/{}", img.digest);
    reg.delete(&path).await.expect(202);
    reg.get(&path).await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.head(&path).await.expect_error(404, "MANIFEST_UNKNOWN");
    for tag in ["a", "b"] {
        reg.get(&format!("/v2/mgmt/manifest/manifests/{tag}")).await.expect_error(404, "MANIFEST_UNKNOWN");
    }
    let r = reg.get("/v2/mgmt/manifest/tags/list").await.expect(200);
    assert_eq!(tags_of(&r), ["other"]);
    reg.get(&format!("/v2/mgmt/manifest/manifests/{}", other.digest)).await.expect(200);
    reg.delete(&path).await.expect_error(404, "MANIFEST_UNKNOWN");
}

/// Spec "Deleting Blobs" (end-10): DELETE MUST answer `202`; afterwards the blob is gone
/// from the repository (`404 BLOB_UNKNOWN`, DESIGN §5: at once); "If the blob is not found,
/// a 404 Not Found code MUST be returned".
#[tokio::test]
async fn delete_blob() {
    let reg = Registry::start().await;
    let content = bytes(4321, 21);
    let digest = reg.push_blob("mgmt/blob", &content).await;
    let path = format!("/v2/mgmt/blob/blobs/{digest}");
    reg.delete(&path).await.expect(202);
    reg.get(&path).await.expect_error(404, "BLOB_UNKNOWN");
    reg.head(&path).await.expect_error(404, "BLOB_UNKNOWN");
    reg.delete(&path).await.expect_error(404, "BLOB_UNKNOWN");
    reg.delete(&format!("/v2/mgmt/blob/blobs/{}", sha256(b"never"))).await.expect_error(404, "BLOB_UNKNOWN");
}

/// Spec "Deleting Blobs": deleting a blob from one repository leaves other repositories
/// that hold it alone (registry-wide content is shared, the link is per repository).
#[tokio::test]
async fn delete_blob_keeps_other_repositories() {
    let reg = Registry::start().await;
    let content = bytes(900, 22);
    let digest = reg.push_blob("mgmt/one", &content).await;
    reg.push_blob("mgmt/two", &content).await;
    reg.delete(&format!("/v2/mgmt/one/blobs/{digest}")).await.expect(202);
    let r = reg.get(&format!("/v2/mgmt/two/blobs/{digest}")).await.expect(200);
    assert_eq!(r.body.as_ref(), content.as_slice());
}

/// Spec "Push › Cancel a blob upload" (end-14): DELETE `<location>` SHOULD answer `204`; the
/// session is then unknown (end-13 failure `404`, code-3 `BLOB_UPLOAD_UNKNOWN`) to GET,
/// PATCH and PUT, and nothing was stored.
#[tokio::test]
async fn cancel_upload() {
    let reg = Registry::start().await;
    let content = bytes(800, 23);
    let digest = sha256(&content);
    let location = reg.start_upload("mgmt/cancel").await;
    reg.req(Method::PATCH, &location)
        .header("content-range", "0-399")
        .octets(content[..400].to_vec())
        .send()
        .await
        .expect(202);
    reg.delete(&location).await.expect(204);
    reg.get(&location).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.req(Method::PATCH, &location)
        .header("content-range", "400-799")
        .octets(content[400..].to_vec())
        .send()
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.req(Method::PUT, &format!("{location}?digest={digest}"))
        .octets(content[400..].to_vec())
        .send()
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.delete(&location).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&format!("/v2/mgmt/cancel/blobs/{digest}")).await.expect_error(404, "BLOB_UNKNOWN");
}

/// Spec end-13/end-5/end-6/end-14 failure `404`: a session id the registry never issued is
/// `BLOB_UPLOAD_UNKNOWN` (code-3) on every upload method; so is a completed session, and a
/// session addressed through another repository.
#[tokio::test]
async fn unknown_upload_session() {
    let reg = Registry::start().await;
    reg.push_image("mgmt/nosession", "v1", "nosession").await;
    let bogus = "/v2/mgmt/nosession/blobs/uploads/3f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11";
    let digest = sha256(b"x");
    reg.get(bogus).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.req(Method::PATCH, bogus)
        .header("content-range", "0-0")
        .octets(b"x".to_vec())
        .send()
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.req(Method::PUT, &format!("{bogus}?digest={digest}"))
        .octets(b"x".to_vec())
        .send()
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.delete(bogus).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");

    // DESIGN §6: a session is bound to its repository; under another name it is unknown.
    let session = reg.start_upload("mgmt/nosession").await;
    let id = session.rsplit('/').next().expect("session id");
    reg.get(&format!("/v2/mgmt/elsewhere/blobs/uploads/{id}")).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&session).await.expect(204);

    let location = reg.start_upload("mgmt/nosession").await;
    reg.req(Method::PUT, &format!("{location}?digest={digest}")).octets(b"x".to_vec()).send().await.expect(201);
    reg.get(&location).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

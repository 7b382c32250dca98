//! Spec "Workflow Categories › Push › Mounting a blob from another repository" (end-11):
//! with `from` (201), without a pullable source (202 and a usable session), without `from`,
//! and the token challenge a mount raises.

use reqwest::Method;

use crate::client::{Registry, with_query};
use crate::content::*;
use crate::push::{assert_blob, check_session_location};

/// The scope docker asks for before a mount: push on the target, pull on the source.
fn mount_scope(target: &str, from: &str) -> String {
    format!("repository:{target}:pull,push repository:{from}:pull")
}

/// DESIGN §4 ("a mount also asks for `repository:<from>:pull`") with the official suite's
/// client, which answers one challenge and retries once: the challenge to a mount without a
/// token names both repositories, so the retried mount succeeds (spec end-11: `201`).
#[tokio::test]
async fn mount_challenge_names_source() {
    let reg = Registry::start().await;
    let content = bytes(1234, 12);
    let digest = reg.push_blob("mount/source", &content).await;
    let path = format!("/v2/mount/target/blobs/uploads/?mount={digest}&from=mount/source");
    let anon = reg.req(Method::POST, &path).body(Vec::new()).send_anonymous().await;
    assert_eq!(anon.status, 401, "{anon:?}");
    let scope = anon.challenge().get("scope").cloned().unwrap_or_default();
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert!(scopes.contains(&"repository:mount/source:pull"), "mount challenge does not ask for the source: {anon:?}");
    reg.req(Method::POST, &path).body(Vec::new()).send().await.expect(201);
}

/// Spec "Push › Mounting a blob from another repository" (end-11): with `from` naming a
/// repository that has the blob, the mount MUST answer `201` with `Location` of the blob in
/// the target, which is then pullable there.
#[tokio::test]
async fn mount_blob_from_other_repository() {
    let reg = Registry::start().await;
    let content = bytes(1234, 12);
    let digest = reg.push_blob("mount/source", &content).await;
    let r = reg
        .req(Method::POST, &format!("/v2/mount/target/blobs/uploads/?mount={digest}&from=mount/source"))
        .body(Vec::new())
        .send_scoped(&mount_scope("mount/target", "mount/source"))
        .await
        .expect(201);
    assert_eq!(r.location(), format!("/v2/mount/target/blobs/{digest}"));
    r.expect_header("docker-content-digest", &digest);
    assert_blob(&reg, "mount/target", &digest, &content).await;

    // The mounted blob counts as present in the target for a manifest pushed there.
    let config = config_for("mounted");
    reg.push_blob("mount/target", &config).await;
    let manifest = image_manifest(&config, &[&content], serde_json::json!({}));
    reg.put_manifest("mount/target", "v1", OCI_MANIFEST, &manifest).await.expect(201);
}

/// Spec "Push › Mounting a blob": "if a registry … is unable to mount the requested blob,
/// it SHOULD return a `202`" and the upload session has begun: here `from` lacks the blob
/// (once an existing repository, once an absent one); the session then takes the upload.
#[tokio::test]
async fn mount_without_pullable_source_opens_session() {
    let reg = Registry::start().await;
    reg.push_blob("mount/src2", b"something else").await;
    let content = bytes(999, 13);
    let digest = sha256(&content);
    for from in ["mount/src2", "mount/absent"] {
        let r = reg
            .req(Method::POST, &format!("/v2/mount/dst2/blobs/uploads/?mount={digest}&from={from}"))
            .body(Vec::new())
            .send_scoped(&mount_scope("mount/dst2", from))
            .await
            .expect(202);
        check_session_location(&r.location(), "mount/dst2");
        reg.req(Method::PUT, &with_query(&r.location(), &format!("digest={digest}")))
            .octets(content.clone())
            .send()
            .await
            .expect(201);
    }
    assert_blob(&reg, "mount/dst2", &digest, &content).await;
}

/// Spec "Push › Mounting a blob": "The registry MAY treat the `from` parameter as
/// optional"; DESIGN §5: without `from`, `201` when a repository the caller may pull links
/// the blob, else `202` with a session (official suite: unknown digest → session id).
#[tokio::test]
async fn mount_without_from() {
    let reg = Registry::start().await;
    let content = bytes(2222, 14);
    let digest = reg.push_blob("mount/known", &content).await;
    let r = reg
        .req(Method::POST, &format!("/v2/mount/auto/blobs/uploads/?mount={digest}"))
        .body(Vec::new())
        .send()
        .await
        .expect(201);
    assert_eq!(r.location(), format!("/v2/mount/auto/blobs/{digest}"));
    assert_blob(&reg, "mount/auto", &digest, &content).await;

    let unknown = sha256(b"nobody has this");
    let r = reg
        .req(Method::POST, &format!("/v2/mount/auto/blobs/uploads/?mount={unknown}"))
        .body(Vec::new())
        .send()
        .await
        .expect(202);
    check_session_location(&r.location(), "mount/auto");
}

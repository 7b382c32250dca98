//! Referrers (OCI end-12; DESIGN §5): `subject` may name a manifest that does not exist
//! yet, the PUT answers `OCI-Subject`, the referrers index lists descriptors and honours the
//! `artifactType` filter.

use crate::common::*;
use serde_json::{Value, json};

/// An artifact manifest about `subject` (digest, size), with its config blob pushed.
async fn push_artifact(
    s: &TestServer,
    token: &str,
    repo: &str,
    subject: (&str, usize),
    artifact_type: &str,
    note: &str,
) -> (String, Vec<u8>) {
    let empty = b"{}".to_vec();
    s.push_blob(token, repo, &empty).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor("application/vnd.oci.empty.v1+json", &empty),
        "layers": [descriptor("application/vnd.oci.empty.v1+json", &empty)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.0, "size": subject.1},
        "annotations": {"note": note},
    }))
    .unwrap();
    let digest = sha256_digest(&manifest);
    let resp = s.put_manifest(token, repo, &digest, Some(OCI_MANIFEST), &manifest).await;
    let resp = expect_status(resp, 201, "PUT artifact with subject").await;
    assert_eq!(header(&resp, "oci-subject").as_deref(), Some(subject.0), "OCI-Subject header");
    (digest, manifest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_list_and_filter() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["ref/app"]).await;
    let img = s.push_image(&token, "ref/app", "v1", "subject").await;
    let subject = (img.digest.as_str(), img.manifest.len());
    let (sig, sig_bytes) = push_artifact(&s, &token, "ref/app", subject, "application/vnd.example.sig", "sig").await;
    let (sbom, _) = push_artifact(&s, &token, "ref/app", subject, "application/vnd.example.sbom", "sbom").await;

    let resp = s.get(&format!("/v2/ref/app/referrers/{}", img.digest), Some(&token)).await;
    let resp = expect_status(resp, 200, "GET referrers").await;
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_INDEX));
    let index: Value = resp.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().expect("manifests");
    let mut digests: Vec<&str> = manifests.iter().map(|m| m["digest"].as_str().unwrap()).collect();
    digests.sort();
    let mut want = vec![sig.as_str(), sbom.as_str()];
    want.sort();
    assert_eq!(digests, want);
    let sig_desc = manifests.iter().find(|m| m["digest"] == sig.as_str()).unwrap();
    assert_eq!(sig_desc["artifactType"], "application/vnd.example.sig");
    assert_eq!(sig_desc["mediaType"], OCI_MANIFEST);
    assert_eq!(sig_desc["size"], sig_bytes.len());
    assert_eq!(sig_desc["annotations"]["note"], "sig");

    let resp = s
        .get(&format!("/v2/ref/app/referrers/{}?artifactType=application/vnd.example.sbom", img.digest), Some(&token))
        .await;
    let resp = expect_status(resp, 200, "GET referrers with artifactType").await;
    assert_eq!(header(&resp, "oci-filters-applied").as_deref(), Some("artifactType"));
    let index: Value = resp.json().await.unwrap();
    let only: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    assert_eq!(only, [sbom.as_str()]);

    // Deleting the referrer removes it from the index.
    let resp = s.delete(&format!("/v2/ref/app/manifests/{sig}"), Some(&token)).await;
    expect_status(resp, 202, "DELETE referrer").await;
    let resp = s.get(&format!("/v2/ref/app/referrers/{}", img.digest), Some(&token)).await;
    let index: Value = expect_status(resp, 200, "GET referrers").await.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_may_not_exist_yet() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["ref/app"]).await;
    let future = sha256_digest(b"a manifest pushed later");
    let (art, _) = push_artifact(&s, &token, "ref/app", (&future, 123), "application/vnd.example.sig", "early").await;
    let resp = s.get(&format!("/v2/ref/app/referrers/{future}"), Some(&token)).await;
    let index: Value = expect_status(resp, 200, "referrers of a missing subject").await.json().await.unwrap();
    let digests: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, [art.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_of_unknown_digest_and_absent_repo_are_empty() {
    let s = TestServer::start().await;
    let token = s.repo_token(&["ref/app", "ref/absent"]).await;
    s.push_image(&token, "ref/app", "v1", "x").await;
    let d = sha256_digest(b"nothing refers to me");
    for repo in ["ref/app", "ref/absent"] {
        let resp = s.get(&format!("/v2/{repo}/referrers/{d}"), Some(&token)).await;
        let resp = expect_status(resp, 200, &format!("referrers in {repo}")).await;
        assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_INDEX));
        let index: Value = resp.json().await.unwrap();
        assert_eq!(index["manifests"], json!([]), "{repo}: {index}");
    }
    let resp = s.get("/v2/ref/app/referrers/sha256:bad", Some(&token)).await;
    expect_error(resp, 400, "DIGEST_INVALID", "referrers with a malformed digest").await;
}

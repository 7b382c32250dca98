//! Screenshots of the main pages for the docs (`docs/screenshots.sh` runs this with
//! `BERTH_SCREENSHOTS=<dir>`): berth in-process with demo content (two collections, members
//! and a team, a multi-platform index, an image with a signature and an SBOM attached),
//! captured by headless Chromium at 1280x800, the whole manifest page, and the repository
//! page at a phone's width.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use super::Browser;
use super::setup::{PASSWORD, api_collection, api_push, forget, image, login, users};
use crate::common::{ADMIN, OCI_INDEX, OCI_MANIFEST, TestServer, api_expect, descriptor};

const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Pushes an artifact of `artifact_type` whose subject is `subject` (a manifest's bytes).
async fn push_referrer(s: &TestServer, repo: &str, artifact_type: &str, payload: &[u8], subject: &[u8]) -> String {
    let token = s.repo_token(&[repo]).await;
    s.push_blob(&token, repo, b"{}").await;
    s.push_blob(&token, repo, payload).await;
    let mut empty = descriptor(EMPTY, b"{}");
    empty["data"] = json!("e30=");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty,
        "layers": [descriptor(artifact_type, payload)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": {"org.opencontainers.image.created": "2026-11-21T08:30:00Z"},
    }))
    .expect("referrer");
    let digest = crate::common::sha256_digest(&manifest);
    s.push_manifest(&token, repo, &digest, OCI_MANIFEST, &manifest).await
}

/// A multi-platform index over an amd64 and an arm64 image, tagged `tag`.
async fn push_index(s: &TestServer, repo: &str, tag: &str) {
    let mut entries: Vec<Value> = Vec::new();
    for arch in ["amd64", "arm64"] {
        let img = image(&format!("{repo}-{arch}"), &json!({"org.opencontainers.image.version": tag}));
        // Untagged children, pushed by digest, as a multi-platform build leaves them.
        let digest = crate::common::sha256_digest(&img.manifest);
        api_push(s, repo, &digest, &img).await;
        let mut d = descriptor(OCI_MANIFEST, &img.manifest);
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        entries.push(d);
    }
    let index =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})).expect("index");
    let token = s.repo_token(&[repo]).await;
    s.push_manifest(&token, repo, tag, OCI_INDEX, &index).await;
}

async fn demo(s: &TestServer) -> String {
    users(s, &["alice", "bob", "carol"]).await;
    api_collection(s, "acme", false, &["alice"], &["bob"]).await;
    api_expect(s, Method::POST, "/api/v1/teams", ADMIN, Some(&json!({"name": "platform"})), 201).await;
    api_expect(s, Method::PUT, "/api/v1/teams/platform/members/carol", ADMIN, None, 200).await;
    let team = json!({"role": "contributor"});
    api_expect(s, Method::PUT, "/api/v1/collections/acme/members/teams/platform", ADMIN, Some(&team), 200).await;
    api_collection(s, "internal", true, &["alice"], &[]).await;
    api_collection(s, "tools", false, &["bob"], &[]).await;
    // The superuser created them through the API and so owns them too; leave the demo owners.
    for c in ["acme", "internal", "tools"] {
        api_expect(s, Method::DELETE, &format!("/api/v1/collections/{c}/members/users/admin"), ADMIN, None, 204).await;
    }

    let labels = json!({
        "org.opencontainers.image.title": "acme web",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "maintainer": "alice@example.invalid",
    });
    let web = image("acme-web-1.0", &labels);
    let digest = api_push(s, "acme/web", "1.0", &web).await;
    api_push(s, "acme/web", "1.1", &image("acme-web-1.1", &labels)).await;
    push_index(s, "acme/web", "latest").await;
    push_referrer(s, "acme/web", "application/vnd.dev.cosign.artifact.sig.v1+json", b"signature bytes", &web.manifest)
        .await;
    push_referrer(s, "acme/web", "application/spdx+json", br#"{"spdxVersion":"SPDX-2.3"}"#, &web.manifest).await;
    api_push(s, "acme/api", "2.3", &image("acme-api", &json!({}))).await;
    api_push(s, "internal/tools", "dev", &image("tools", &json!({}))).await;
    api_push(s, "tools/lint", "0.9", &image("lint", &json!({}))).await;
    digest
}

/// Regenerates the screenshots into `$BERTH_SCREENSHOTS`.
#[tokio::test]
#[ignore = "writes docs/screenshots; run by docs/screenshots.sh"]
async fn capture() {
    let dir = PathBuf::from(std::env::var("BERTH_SCREENSHOTS").expect("BERTH_SCREENSHOTS=<output dir>"));
    std::fs::create_dir_all(&dir).expect("output dir");
    let s = TestServer::start().await;
    let digest = demo(&s).await;
    let b = Browser::start().await.expect("screenshots need Chromium");
    // The window is 1280x800; the viewport (what a screenshot shows) is set to that size.
    b.set_viewport(1280, 800, false).await;
    let shoot = async |name: &str, path: &str| {
        b.goto(&s.url(path)).await;
        assert_eq!(b.status().await, 200, "{path}");
        let png = b.screenshot().await;
        std::fs::write(dir.join(format!("{name}.png")), &png).expect("write screenshot");
        eprintln!("{name}.png: {path} ({} bytes)", png.len());
    };

    shoot("login", "/ui/login").await;
    login(&b, &s, "alice", PASSWORD).await;
    shoot("collections", "/ui/").await;
    shoot("repository", "/ui/r/acme/web").await;
    shoot("manifest", &format!("/ui/r/acme/web/-/manifests/{digest}")).await;
    shoot("members", "/ui/c/acme/members").await;
    // The whole manifest page (layers, config, annotations, referrers), as tall as it is.
    b.goto(&s.url(&format!("/ui/r/acme/web/-/manifests/{digest}"))).await;
    let height = b.client().execute("return document.documentElement.scrollHeight;", vec![]).await.expect("height");
    let height = height.as_u64().and_then(|h| u32::try_from(h).ok()).expect("page height");
    b.set_viewport(1280, height, false).await;
    shoot("manifest-full", &format!("/ui/r/acme/web/-/manifests/{digest}")).await;
    b.set_viewport(390, 844, true).await;
    shoot("repository-phone", "/ui/r/acme/web").await;
    forget(&b).await;
    b.close().await;
}

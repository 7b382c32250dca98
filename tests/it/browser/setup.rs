//! What the browser flows stand on: users, signing in through the form, images pushed by a
//! real client (skopeo, from an OCI layout the test writes), and management-API checks of
//! what a page did or did not change.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::Browser;
use crate::common::{
    ADMIN, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, TestServer, api_expect, api_user, descriptor, sha256_digest,
};

/// The password every test user gets.
pub const PASSWORD: &str = "browser-test-password";

/// Creates users with [`PASSWORD`] through the management API.
pub async fn users(s: &TestServer, names: &[&str]) {
    for name in names {
        api_user(s, name, PASSWORD, "user").await;
    }
}

/// Signs in through `/ui/login` as a person would: type, click, land on `/ui/`.
pub async fn login(b: &Browser, s: &TestServer, user: &str, password: &str) {
    b.goto(&s.url("/ui/login")).await;
    b.submit_form("#login-form", &[("username", user), ("password", password)]).await;
    let path = b.path().await;
    assert_eq!(path, "/ui/", "signing in as {user} should land on /ui/: {}", b.main_text().await);
}

/// Forgets the browser's session (a new visitor, anonymous until it signs in).
pub async fn forget(b: &Browser) {
    b.client().delete_all_cookies().await.expect("delete cookies");
}

/// An image as the tests push it: config (with labels, entrypoint, cmd) and one layer.
pub struct Image {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
}

/// An image for `seed` whose config carries `labels`.
pub fn image(seed: &str, labels: &Value) -> Image {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-11-20T10:00:00Z",
        "config": {"Entrypoint": ["/bin/app"], "Cmd": ["--serve", seed], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("config");
    let layer = format!("layer of {seed} ").repeat(3000).into_bytes();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &layer)],
        "annotations": {"org.opencontainers.image.source": format!("https://example.invalid/{seed}")},
    }))
    .expect("manifest");
    Image { config, layer, manifest }
}

fn write_blob(dir: &Path, bytes: &[u8]) {
    let digest = sha256_digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(dir.join("blobs/sha256").join(hex), bytes).expect("write blob");
}

/// Pushes `img` as `repo:tag` with skopeo, logging in as `user:secret` (a password or an
/// API token); returns the digest skopeo reports for the pushed manifest.
pub async fn skopeo_push(s: &TestServer, user: &str, secret: &str, repo: &str, tag: &str, img: &Image) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout dir");
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    for bytes in [&img.config, &img.layer, &img.manifest] {
        write_blob(&layout, bytes);
    }
    let mut top = descriptor(OCI_MANIFEST, &img.manifest);
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");

    let digest_file = work.path().join("digest");
    let out = tokio::process::Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--retry-times", "0", "--dest-tls-verify=false"])
        .arg("--dest-creds")
        .arg(format!("{user}:{secret}"))
        .arg("--digestfile")
        .arg(&digest_file)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{}/{repo}:{tag}", s.addr()))
        .env("HOME", work.path())
        .env("REGISTRY_AUTH_FILE", work.path().join("auth.json"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("skopeo copy timed out")
        .expect("run skopeo (installed by .ci/run)");
    assert!(
        out.status.success(),
        "skopeo copy to {repo}:{tag} as {user} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&digest_file).expect("skopeo wrote the digest file").trim().to_string()
}

/// The digest the registry answers for `repo:reference` (admin token), or None on 404.
pub async fn registry_digest(s: &TestServer, repo: &str, reference: &str) -> Option<String> {
    let token = s.repo_token(&[repo]).await;
    let resp = s
        .req(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"), Some(&token))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
        .send()
        .await
        .expect("HEAD manifest");
    match resp.status().as_u16() {
        200 => Some(crate::common::header(&resp, "docker-content-digest").expect("Docker-Content-Digest")),
        404 => None,
        other => panic!("HEAD {repo}:{reference}: unexpected {other}"),
    }
}

/// The tags the registry lists for `repo` (admin token).
pub async fn registry_tags(s: &TestServer, repo: &str) -> Vec<String> {
    let token = s.repo_token(&[repo]).await;
    let resp = s.get(&format!("/v2/{repo}/tags/list"), Some(&token)).await;
    assert_eq!(resp.status(), 200, "tags of {repo}");
    let v: Value = resp.json().await.expect("tags JSON");
    v["tags"].as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// `GET /api/v1/collections/{name}` as the superuser: the collection, or None when absent.
pub async fn collection(s: &TestServer, name: &str) -> Option<Value> {
    let resp = crate::common::api_call(s, Method::GET, &format!("/api/v1/collections/{name}"), ADMIN, None).await;
    match resp.status().as_u16() {
        200 => Some(resp.json().await.expect("collection JSON")),
        404 => None,
        other => panic!("GET collection {name}: unexpected {other}"),
    }
}

/// Creates `name` through the API as the superuser, with `owners` and `contributors` (users).
pub async fn api_collection(s: &TestServer, name: &str, private: bool, owners: &[&str], contributors: &[&str]) {
    let body = json!({"name": name, "private": private});
    api_expect(s, Method::POST, "/api/v1/collections", ADMIN, Some(&body), 201).await;
    for (users, role) in [(owners, "owner"), (contributors, "contributor")] {
        for user in users {
            let path = format!("/api/v1/collections/{name}/members/users/{user}");
            api_expect(s, Method::PUT, &path, ADMIN, Some(&json!({"role": role})), 200).await;
        }
    }
}

/// Pushes `img` as `repo:tag` through the registry API with an admin token (setup only;
/// the flows that check what a client pushed use [`skopeo_push`]); returns its digest.
pub async fn api_push(s: &TestServer, repo: &str, tag: &str, img: &Image) -> String {
    let token = s.repo_token(&[repo]).await;
    s.push_blob(&token, repo, &img.config).await;
    s.push_blob(&token, repo, &img.layer).await;
    s.push_manifest(&token, repo, tag, OCI_MANIFEST, &img.manifest).await
}

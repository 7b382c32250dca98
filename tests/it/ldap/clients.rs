//! Real registry clients driven by the LDAP tests: podman (login) and skopeo (push).

use serde_json::json;

use crate::common::*;

/// `podman login` with a throwaway auth file; asserts it succeeds or fails.
pub async fn podman_login(s: &TestServer, user: &str, password: &str, ok: bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("podman")
        .args(["login", "--tls-verify=false", "--authfile"])
        .arg(dir.path().join("auth.json"))
        .args(["-u", user, "-p", password])
        .arg(s.addr().to_string())
        .env("HOME", dir.path())
        .output()
        .await
        .expect("podman (apt-get install podman)");
    assert_eq!(out.status.success(), ok, "podman login {user}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Writes a one-layer OCI image layout under `dir` and copies it to the server with
/// skopeo, logged in as `user`.
pub async fn skopeo_push(s: &TestServer, user: &str, password: &str, reference: &str) {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let write_blob = |bytes: &[u8]| -> String {
        let d = sha256_digest(bytes);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        d
    };
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    let layer = test_bytes(2048, 11);
    write_blob(config);
    write_blob(&layer);
    let manifest = oci_manifest(config, &[&layer]);
    let md = write_blob(&manifest);
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": md, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    let out = tokio::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--dest-creds", &format!("{user}:{password}")])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{}/{reference}", s.addr()))
        .env("HOME", dir.path())
        .output()
        .await
        .expect("skopeo (apt-get install skopeo)");
    assert!(out.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&out.stderr));
}

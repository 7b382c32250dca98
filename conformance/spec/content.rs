//! Test content (blobs, image manifests, indexes, artifacts) and the push steps every
//! workflow starts from. The push helpers use the plainest spec flows and assert their
//! success statuses, so a test that builds on them fails at the step that broke.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};

use crate::client::Registry;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_NONDIST_LAYER: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `sha256` of the empty byte string.
pub const EMPTY_SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

/// Deterministic, incompressible-looking bytes (the generator of tests/it/common).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    crate::common::test_bytes(len, seed)
}

pub fn descriptor(media_type: &str, content: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(content), "size": content.len()})
}

/// A config blob unique to `seed`.
pub fn config_for(seed: &str) -> Vec<u8> {
    json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
           "seed": seed})
    .to_string()
    .into_bytes()
}

/// An OCI image manifest over `config` and `layers`; `extra` fields are merged in.
pub fn image_manifest(config: &[u8], layers: &[&[u8]], extra: Value) -> Vec<u8> {
    let layers: Vec<Value> = layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect();
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers,
    });
    merge(&mut m, extra);
    serde_json::to_vec_pretty(&m).expect("serialize manifest")
}

/// An OCI image index over image manifests; `extra` fields are merged in.
pub fn image_index(manifests: &[&[u8]], extra: Value) -> Vec<u8> {
    let manifests: Vec<Value> = manifests
        .iter()
        .map(|m| {
            let mut d = descriptor(OCI_MANIFEST, m);
            d["platform"] = json!({"architecture": "amd64", "os": "linux"});
            d
        })
        .collect();
    let mut m = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    merge(&mut m, extra);
    serde_json::to_vec(&m).expect("serialize index")
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

/// What [`Registry::push_image`] pushed.
pub struct Image {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

impl Registry {
    /// Single-POST upload (end-4b), asserting `201`; returns the sha256 digest.
    pub async fn push_blob(&self, repo: &str, content: &[u8]) -> String {
        let digest = sha256(content);
        self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
            .octets(content.to_vec())
            .send()
            .await
            .expect(201);
        digest
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with `content_type`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: &str,
        body: &[u8],
    ) -> crate::client::Reply {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", content_type)
            .body(body.to_vec())
            .send()
            .await
    }

    /// A config and one layer derived from `seed`, then an OCI image manifest for them
    /// under `reference`, asserting `201` throughout.
    pub async fn push_image(&self, repo: &str, reference: &str, seed: &str) -> Image {
        let config = config_for(seed);
        let layer = bytes(3000, seed.len() as u64 * 7919 + seed.bytes().map(u64::from).sum::<u64>());
        self.push_blob(repo, &config).await;
        self.push_blob(repo, &layer).await;
        let manifest = image_manifest(&config, &[&layer], json!({}));
        self.put_manifest(repo, reference, OCI_MANIFEST, &manifest).await.expect(201);
        Image { digest: sha256(&manifest), config, layer, manifest }
    }

    /// Starts an upload session (end-4a), asserting `202`; returns its `Location` path.
    pub async fn start_upload(&self, repo: &str) -> String {
        self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .body(Vec::new()) // `Content-Length: 0`, as the spec asks for a chunked upload
            .send()
            .await
            .expect(202)
            .location()
    }
}

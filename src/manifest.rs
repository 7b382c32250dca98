//! Manifest parsing and validation (pure, shared by the registry and the HTTP layer).
//! Accepts OCI image manifests and indexes, Docker schema 2 manifests and manifest lists,
//! and OCI artifacts; keeps nothing but what the registry needs to check references and
//! answer referrers queries.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// What a valid manifest tells the registry.
#[derive(Debug, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// Blobs that must be linked in the repository (config and distributable layers).
    pub blobs: Vec<Digest>,
    /// Manifests that must exist in the repository (index entries).
    pub manifests: Vec<Digest>,
    pub subject: Option<Digest>,
    /// `artifactType`, else the config media type (for referrers).
    pub artifact_type: Option<String>,
    /// Annotations as JSON text (for referrers).
    pub annotations: Option<String>,
}

fn descriptor(d: &RawDescriptor, what: &str) -> Result<Digest, String> {
    if d.size < 0 {
        return Err(format!("{what}: negative size"));
    }
    if d.media_type.as_deref().is_none_or(str::is_empty) {
        return Err(format!("{what}: missing mediaType"));
    }
    d.digest.parse().map_err(|_| format!("{what}: invalid digest {:?}", d.digest))
}

/// Deepest JSON nesting a manifest may have (DESIGN §5). Real manifests nest four or five
/// levels; common client parsers refuse documents far shallower than the 10,000 levels
/// Go's encoding/json stops at, and berth stores what clients must be able to read back.
pub const MAX_DEPTH: usize = 64;

/// Whether the JSON text nests arrays and objects deeper than `max`, anywhere (also in
/// fields berth never reads, which serde skips without counting). Brackets inside strings
/// do not count. Only meaningful for valid JSON; invalid JSON is refused by the parser.
fn nests_deeper_than(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses and validates a manifest body. `content_type` is the request's, without
/// parameters. Errors are `MANIFEST_INVALID` messages.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest, String> {
    if nests_deeper_than(body, MAX_DEPTH) {
        return Err(format!("JSON nested deeper than {MAX_DEPTH} levels"));
    }
    let raw: RawManifest = serde_json::from_slice(body).map_err(|e| format!("not a valid manifest: {e}"))?;
    let media_type = match (content_type.filter(|c| !c.is_empty()), raw.media_type.as_deref()) {
        (Some(c), Some(m)) if c != m => {
            return Err(format!("Content-Type {c} does not match mediaType {m}"));
        }
        (Some(c), _) => c.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => return Err("no Content-Type and no mediaType".into()),
    };
    if raw.schema_version != Some(2) {
        return Err("schemaVersion must be 2".into());
    }
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw.config.as_ref().ok_or("image manifest without config")?;
            blobs.push(descriptor(config, "config")?);
            let layers = raw.layers.as_deref().ok_or("image manifest without layers")?;
            if media_type == DOCKER_MANIFEST && layers.is_empty() {
                return Err("Docker manifest without layers".into());
            }
            for l in layers {
                let d = descriptor(l, "layer")?;
                // Non-distributable layers live elsewhere and need not be pushed here.
                if l.urls.as_ref().is_none_or(Vec::is_empty) {
                    blobs.push(d);
                }
            }
            if raw.manifests.is_some() {
                return Err("image manifest must not have manifests".into());
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            for m in raw.manifests.as_deref().ok_or("index without manifests")? {
                manifests.push(descriptor(m, "manifest")?);
            }
            if raw.config.is_some() || raw.layers.is_some() {
                return Err("index must not have config or layers".into());
            }
        }
        other => return Err(format!("unsupported manifest media type {other}")),
    }
    let subject = raw.subject.as_ref().map(|s| descriptor(s, "subject")).transpose()?;
    let artifact_type = raw.artifact_type.clone().or_else(|| {
        // Per the spec, an image manifest's referrers entry falls back to config.mediaType.
        if media_type == OCI_MANIFEST { raw.config.as_ref().and_then(|c| c.media_type.clone()) } else { None }
    });
    let annotations = raw.annotations.as_ref().and_then(|a| serde_json::to_string(a).ok());
    Ok(ParsedManifest { media_type, blobs, manifests, subject, artifact_type, annotations })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D2}","size":3}}]{extra}}}"#
        )
    }

    #[test]
    fn image_manifest() {
        let p = parse(Some(OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(p.blobs.len(), 2);
        assert!(p.manifests.is_empty());
        assert_eq!(p.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
        // mediaType alone suffices
        assert!(parse(None, image("").as_bytes()).is_ok());
    }

    #[test]
    fn media_type_rules() {
        assert!(parse(Some(DOCKER_MANIFEST), image("").as_bytes()).unwrap_err().contains("does not match"));
        let no_mt = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(parse(None, no_mt.as_bytes()).is_err());
        assert_eq!(parse(Some(OCI_INDEX), no_mt.as_bytes()).unwrap().media_type, OCI_INDEX);
        assert!(parse(Some("application/json"), no_mt.as_bytes()).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in ["", "{", "[]", "null", r#"{"schemaVersion":1}"#] {
            assert!(parse(Some(OCI_MANIFEST), bad.as_bytes()).is_err(), "{bad}");
        }
        let bad_digest = image("").replace(D2, "sha256:nothex");
        assert!(parse(None, bad_digest.as_bytes()).is_err());
    }

    /// `levels` nested arrays in an annotation-like field berth does not read.
    fn nested(levels: usize) -> String {
        image(&format!(r#","x-unread":{}{}"#, "[".repeat(levels), "]".repeat(levels)))
    }

    #[test]
    fn nesting_limit() {
        // The top-level object is one level; the field adds the rest.
        assert!(parse(None, nested(MAX_DEPTH - 1).as_bytes()).is_ok());
        for levels in [MAX_DEPTH, 10_000, 100_000] {
            let err = parse(None, nested(levels).as_bytes()).unwrap_err();
            assert!(err.contains("nested deeper"), "{levels}: {err}");
        }
        // Brackets inside strings (also after escaped quotes) are text, not nesting.
        let in_string = format!(r#","annotations":{{"a":"\"{}"}}"#, "[".repeat(1000));
        assert!(parse(None, image(&in_string).as_bytes()).is_ok());
        assert!(!nests_deeper_than(br#"{"a":"\\"}"#, 1));
        assert!(nests_deeper_than(br#"{"a":"\\",[]}"#, 1));
    }

    #[test]
    fn foreign_layers_and_subject() {
        let foreign = image("").replace(r#""size":3}"#, r#""size":3,"urls":["https://example.com/l"]}"#);
        assert_eq!(parse(None, foreign.as_bytes()).unwrap().blobs.len(), 1);
        let with_subject = image(&format!(
            r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":9}},"artifactType":"x/y","annotations":{{"a":"b"}}"#
        ));
        let p = parse(None, with_subject.as_bytes()).unwrap();
        assert_eq!(p.subject.unwrap().as_str(), D1);
        assert_eq!(p.artifact_type.as_deref(), Some("x/y"));
        assert_eq!(p.annotations.as_deref(), Some(r#"{"a":"b"}"#));
    }
}

//! Spec "Workflow Categories › Content Discovery" (end-8a, end-8b, end-12a, end-12b): tag
//! listing with `n`/`last`/`Link`, the referrers API with the `artifactType` filter, and
//! `_catalog` (from the Docker Registry API the spec is based on; DESIGN §5).

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Registry, Reply};
use crate::content::*;

/// The path inside `Link: <path>; rel="next"`, if the header is there.
fn next_link(r: &Reply) -> Option<String> {
    let link = r.header("link")?;
    assert!(link.contains("rel=\"next\"") || link.contains("rel=next"), "Link without rel=\"next\": {link}");
    let start = link.find('<').expect("Link has <") + 1;
    let end = link.find('>').expect("Link has >");
    let target = &link[start..end];
    Some(match target.strip_prefix("http://") {
        Some(rest) => rest[rest.find('/').expect("path in Link")..].to_string(),
        None => target.to_string(),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// Pushes one small image and tags it with each of `tags` (by PUT per tag).
async fn tag_all(reg: &Registry, repo: &str, tags: &[&str]) {
    let img = reg.push_image(repo, tags[0], repo).await;
    for tag in &tags[1..] {
        reg.put_manifest(repo, tag, OCI_MANIFEST, &img.manifest).await.expect(201);
    }
}

/// Spec "Content Discovery › Listing Tags" (end-8a): `200` with `{"name", "tags"}`, the tags
/// "in lexical … or ASCIIbetical order" (DESIGN §5: byte order).
#[tokio::test]
async fn tags_list_sorted() {
    let reg = Registry::start().await;
    let tags = ["latest", "v10", "1.0", "Beta", "alpha", "_x", "v9", "A-1", "beta"];
    tag_all(&reg, "disc/tags", &tags).await;
    let r = reg.get("/v2/disc/tags/tags/list").await.expect(200);
    let json = r.json();
    assert_eq!(json["name"], "disc/tags");
    let mut want: Vec<String> = tags.iter().map(std::string::ToString::to_string).collect();
    want.sort();
    assert_eq!(strings(&json["tags"]), want);
}

/// Spec "Listing Tags" (end-8b): `n` returns the first `n` tags and a `Link` with
/// `rel="next"` when more remain; following the links visits every tag once, in order.
#[tokio::test]
async fn tags_list_paginated_by_link() {
    let reg = Registry::start().await;
    let tags = ["t01", "t02", "t03", "t04", "t05", "t06", "t07"];
    tag_all(&reg, "disc/page", &tags).await;
    let mut seen = Vec::new();
    let mut next = Some("/v2/disc/page/tags/list?n=3".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let r = reg.get(&path).await.expect(200);
        let page = strings(&r.json()["tags"]);
        assert!(page.len() <= 3, "page over n: {page:?}");
        if pages == 0 {
            assert_eq!(page, ["t01", "t02", "t03"]);
            assert!(r.header("link").is_some(), "first page without Link: {r:?}");
        }
        seen.extend(page);
        next = next_link(&r);
        pages += 1;
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, tags);
}

/// Spec "Listing Tags" (end-8b): `last` is exclusive ("`<tagname>` itself is not included"),
/// `n` is optional with `last`, and `last` need not be an existing tag (DESIGN §5).
#[tokio::test]
async fn tags_list_last_is_exclusive() {
    let reg = Registry::start().await;
    tag_all(&reg, "disc/last", &["a", "b", "c", "d", "e"]).await;
    let cases: [(&str, &[&str]); 4] = [
        ("?n=2&last=b", &["c", "d"]),
        ("?last=c", &["d", "e"]),
        ("?n=10&last=bb", &["c", "d", "e"]),
        ("?n=2&last=e", &[]),
    ];
    for (query, want) in cases {
        let r = reg.get(&format!("/v2/disc/last/tags/list{query}")).await.expect(200);
        assert_eq!(strings(&r.json()["tags"]), want, "{query}");
    }
}

/// Spec "Listing Tags": "If `n=0`, the registry MUST return an empty list and MUST NOT
/// include a `Link` header".
#[tokio::test]
async fn tags_list_n_zero() {
    let reg = Registry::start().await;
    tag_all(&reg, "disc/zero", &["a", "b"]).await;
    let r = reg.get("/v2/disc/zero/tags/list?n=0").await.expect(200);
    assert_eq!(strings(&r.json()["tags"]), Vec::<String>::new());
    assert!(r.header("link").is_none(), "Link with n=0: {r:?}");
}

/// Spec "Listing Tags": "The list of tags MAY be empty"; DESIGN §5: a repository whose
/// manifests were pushed only by digest answers `"tags": []`.
#[tokio::test]
async fn tags_list_empty() {
    let reg = Registry::start().await;
    let config = config_for("untagged");
    reg.push_blob("disc/untagged", &config).await;
    let m = image_manifest(&config, &[], json!({}));
    reg.put_manifest("disc/untagged", &sha256(&m), OCI_MANIFEST, &m).await.expect(201);
    let r = reg.get("/v2/disc/untagged/tags/list").await.expect(200);
    assert_eq!(r.json()["tags"], json!([]));
}

/// The referrers index of `digest` in `repo` (query included in `suffix`), checked for shape.
async fn referrers(reg: &Registry, repo: &str, digest: &str, suffix: &str) -> (Reply, Vec<Value>) {
    let r = reg.get(&format!("/v2/{repo}/referrers/{digest}{suffix}")).await.expect(200);
    r.expect_header("content-type", OCI_INDEX);
    let json = r.json();
    assert_eq!(json["schemaVersion"], 2, "{r:?}");
    assert_eq!(json["mediaType"], OCI_INDEX, "{r:?}");
    let list = json["manifests"].as_array().unwrap_or_else(|| panic!("no manifests array: {r:?}")).clone();
    (r, list)
}

/// Spec "Listing Referrers" (end-12a): "A registry that supports the referrers API MUST NOT
/// return 404"; with no referrers it returns an index with an empty `manifests` list — for
/// an unknown digest in an existing repository and in an absent one (DESIGN §3).
#[tokio::test]
async fn referrers_empty_for_unknown_subject() {
    let reg = Registry::start().await;
    reg.push_image("disc/noref", "v1", "noref").await;
    let unknown = sha256(b"no such manifest");
    let (_, list) = referrers(&reg, "disc/noref", &unknown, "").await;
    assert!(list.is_empty());
    let (_, list) = referrers(&reg, "disc/absent-repo", &unknown, "").await;
    assert!(list.is_empty());
}

/// What the referrer fixtures pushed: (digest, size, artifactType expected, mediaType).
struct Pushed {
    digest: String,
    size: usize,
    artifact_type: Option<&'static str>,
    media_type: &'static str,
}

/// Pushes four referrers of `subject` (an artifact manifest, a plain image manifest, an
/// index with and one without `artifactType`) and one unrelated manifest to `repo`.
async fn push_referrers(reg: &Registry, repo: &str, subject: &[u8]) -> Vec<Pushed> {
    reg.push_blob(repo, b"{}").await;
    let sbom_config = config_for("sbom-config");
    reg.push_blob(repo, &sbom_config).await;
    let subject_desc = descriptor(OCI_MANIFEST, subject);
    let sbom = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": descriptor(OCI_EMPTY, b"{}"), "layers": [],
        "subject": subject_desc,
        "annotations": {"org.example.sbom.format": "json", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .expect("json");
    let sig = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.example.signature.config.v1+json",
                   "digest": sha256(&sbom_config), "size": sbom_config.len()},
        "layers": [],
        "subject": subject_desc,
        "annotations": {"org.example.signature.fingerprint": "abcd"},
    }))
    .expect("json");
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "artifactType": "application/vnd.example.bundle.v1",
        "manifests": [],
        "subject": subject_desc,
        "annotations": {"org.example.bundle": "yes"},
    }))
    .expect("json");
    let plain_idx = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [],
        "subject": subject_desc,
        "annotations": {"org.example.plain": "index"},
    }))
    .expect("json");
    let unrelated = image_manifest(&sbom_config, &[], json!({"annotations": {"x": "unrelated"}}));
    let mut out = Vec::new();
    for (body, ct, at) in [
        (&sbom, OCI_MANIFEST, Some("application/vnd.example.sbom.v1")),
        (&sig, OCI_MANIFEST, Some("application/vnd.example.signature.config.v1+json")),
        (&idx, OCI_INDEX, Some("application/vnd.example.bundle.v1")),
        (&plain_idx, OCI_INDEX, None),
    ] {
        let digest = sha256(body);
        reg.put_manifest(repo, &digest, ct, body).await.expect(201).expect_header("oci-subject", &sha256(subject));
        out.push(Pushed { digest, size: body.len(), artifact_type: at, media_type: ct });
    }
    reg.put_manifest(repo, "unrelated", OCI_MANIFEST, &unrelated).await.expect(201);
    out
}

/// The annotations of a manifest body.
fn annotations_of(reg_body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(reg_body).expect("json")["annotations"].clone()
}

/// Spec "Listing Referrers" (end-12a): the index lists a descriptor for every manifest whose
/// `subject` is the digest "in `<name>`", each with `artifactType` (the manifest's, else its
/// config's `mediaType`; an index without one has none) and all its annotations; unfiltered
/// answers carry no `OCI-Filters-Applied`. Referrers in another repository are not listed.
#[tokio::test]
async fn referrers_list_descriptors() {
    let reg = Registry::start().await;
    let subject = reg.push_image("disc/refs", "v1", "subject").await;
    push_referrers(&reg, "disc/elsewhere", &subject.manifest).await;
    let pushed = push_referrers(&reg, "disc/refs", &subject.manifest).await;
    let (r, list) = referrers(&reg, "disc/refs", &subject.digest, "").await;
    assert!(r.header("oci-filters-applied").is_none(), "{r:?}");
    assert_eq!(list.len(), pushed.len(), "{r:?}");
    for p in &pushed {
        let d = list
            .iter()
            .find(|d| d["digest"] == p.digest.as_str())
            .unwrap_or_else(|| panic!("{} not listed: {r:?}", p.digest));
        assert_eq!(d["mediaType"], p.media_type, "{d}");
        assert_eq!(d["size"], p.size, "{d}");
        assert_eq!(d["artifactType"].as_str(), p.artifact_type, "{d}");
        let body = reg.get(&format!("/v2/disc/refs/manifests/{}", p.digest)).await.expect(200);
        assert_eq!(d["annotations"], annotations_of(&body.body), "{d}");
    }
}

/// Spec "Listing Referrers › Filtering by artifactType" (end-12b): with the filter applied
/// only matching descriptors come back and the response carries
/// `OCI-Filters-Applied: artifactType`; a filter matching nothing gives an empty list.
#[tokio::test]
async fn referrers_filter_by_artifact_type() {
    let reg = Registry::start().await;
    let subject = reg.push_image("disc/filter", "v1", "filter").await;
    let pushed = push_referrers(&reg, "disc/filter", &subject.manifest).await;
    let (r, list) =
        referrers(&reg, "disc/filter", &subject.digest, "?artifactType=application/vnd.example.sbom.v1").await;
    r.expect_header("oci-filters-applied", "artifactType");
    assert_eq!(list.len(), 1, "{r:?}");
    assert_eq!(list[0]["digest"], pushed[0].digest.as_str());
    assert_eq!(list[0]["artifactType"], "application/vnd.example.sbom.v1");

    let (r, list) =
        referrers(&reg, "disc/filter", &subject.digest, "?artifactType=application%2Fvnd.example.none").await;
    r.expect_header("oci-filters-applied", "artifactType");
    assert!(list.is_empty(), "{r:?}");
}

/// Spec "Push": the subject may be pushed after its referrers; "Listing Referrers": the
/// referrer is listed whether or not the subject exists.
#[tokio::test]
async fn referrers_before_subject_exists() {
    let reg = Registry::start().await;
    let config = config_for("late-subject");
    let layer = bytes(64, 99);
    let subject = image_manifest(&config, &[&layer], json!({}));
    let pushed = push_referrers(&reg, "disc/late", &subject).await;
    let (_, list) = referrers(&reg, "disc/late", &sha256(&subject), "").await;
    assert_eq!(list.len(), pushed.len());
}

/// Spec "Deleting Manifests" + "Listing Referrers": the index lists manifests that exist, so
/// a referrer deleted by digest (`202`) disappears from its subject's referrers.
#[tokio::test]
async fn referrers_drop_deleted_referrer() {
    let reg = Registry::start().await;
    let subject = reg.push_image("disc/del", "v1", "del").await;
    let pushed = push_referrers(&reg, "disc/del", &subject.manifest).await;
    reg.delete(&format!("/v2/disc/del/manifests/{}", pushed[0].digest)).await.expect(202);
    let (r, list) = referrers(&reg, "disc/del", &subject.digest, "").await;
    assert_eq!(list.len(), pushed.len() - 1, "{r:?}");
    assert!(list.iter().all(|d| d["digest"] != pushed[0].digest.as_str()), "deleted referrer still listed: {r:?}");
}

/// Docker Registry API "Listing Repositories" (`GET /v2/_catalog`, kept by DESIGN §5):
/// `{"repositories": […]}` byte-sorted, paged by `n`/`last` with `Link: rel="next"`.
#[tokio::test]
async fn catalog_paginated() {
    let reg = Registry::start().await;
    let repos = ["cat/b", "cat/a", "cat/c/d", "cat/a-1", "cat0"];
    for repo in repos {
        reg.push_blob(repo, repo.as_bytes()).await;
    }
    let mut want: Vec<String> = repos.iter().map(std::string::ToString::to_string).collect();
    want.sort();
    let r = reg.get("/v2/_catalog").await.expect(200);
    let all = strings(&r.json()["repositories"]);
    let ours: Vec<String> = all.iter().filter(|n| want.contains(n)).cloned().collect();
    assert_eq!(ours, want, "{r:?}");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "catalog not sorted");

    let mut seen = Vec::new();
    let mut next = Some("/v2/_catalog?n=2".to_string());
    while let Some(path) = next {
        let r = reg.req(Method::GET, &path).send().await.expect(200);
        let page = strings(&r.json()["repositories"]);
        assert!(page.len() <= 2, "{r:?}");
        seen.extend(page);
        next = next_link(&r);
        assert!(seen.len() <= all.len() + 2, "catalog pagination does not end");
    }
    assert_eq!(seen, all);

    let r = reg.get("/v2/_catalog?n=2&last=cat/a-1").await.expect(200);
    assert_eq!(strings(&r.json()["repositories"]), ["cat/b", "cat/c/d"]);
}

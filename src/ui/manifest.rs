//! A manifest's page: layers, config (os/arch, created, entrypoint/cmd, labels),
//! annotations, index platforms and referrers; and the reading of manifests for display
//! (lenient: whatever berth accepted is shown, unknown fields are ignored).

use futures_util::TryStreamExt;
use maud::{Markup, html};
use serde_json::Value;

use super::{
    UiError, UiResult, Viewer, fmt,
    layout::{self, csrf_field},
    repo::{crumbs, pull_commands},
};
use crate::{
    auth::rules::Actions,
    digest::Digest,
    names::{Reference, RepoName},
    registry::BlobData,
};

/// The largest image config read for display.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Index children whose sizes are added up for a tag's size.
const MAX_CHILDREN: usize = 64;

/// A descriptor as displayed.
#[derive(Clone, Debug, Default)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    /// `os/arch[/variant]` of an index entry.
    pub platform: Option<String>,
}

/// What a manifest says, for display.
#[derive(Debug, Default)]
pub struct Summary {
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub config: Option<Desc>,
    pub layers: Vec<Desc>,
    pub manifests: Vec<Desc>,
    pub subject: Option<Desc>,
    pub annotations: Vec<(String, String)>,
    pub len: i64,
}

impl Summary {
    pub fn is_index(&self) -> bool {
        !self.manifests.is_empty() || self.media_type.contains("index") || self.media_type.contains("list")
    }

    /// Platforms of an index, as `os/arch[/variant]`.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests.iter().filter_map(|m| m.platform.clone()).collect()
    }

    /// Bytes of the manifest, its config and layers (an index: without its children).
    pub fn own_size(&self) -> i64 {
        self.len + self.config.as_ref().map_or(0, |c| c.size) + self.layers.iter().map(|l| l.size).sum::<i64>()
    }
}

fn string_map(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect())
        .unwrap_or_default()
}

fn desc(v: &Value) -> Option<Desc> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let platform = v.get("platform").map(|p| {
        let part = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
        let mut s = format!("{}/{}", part("os"), part("architecture"));
        if !part("variant").is_empty() {
            s = format!("{s}/{}", part("variant"));
        }
        s
    });
    Some(Desc {
        media_type: s("mediaType").unwrap_or_default(),
        digest: s("digest")?,
        size: v.get("size").and_then(Value::as_i64).unwrap_or(0),
        platform,
    })
}

/// Reads a stored manifest for display.
pub fn summarize(media_type: &str, content: &[u8]) -> Summary {
    let v: Value = serde_json::from_slice(content).unwrap_or(Value::Null);
    let list =
        |k: &str| v.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(desc).collect()).unwrap_or_default();
    Summary {
        media_type: media_type.to_owned(),
        artifact_type: v.get("artifactType").and_then(Value::as_str).map(str::to_owned),
        config: v.get("config").and_then(desc),
        layers: list("layers"),
        manifests: list("manifests"),
        subject: v.get("subject").and_then(desc),
        annotations: v.get("annotations").map(string_map).unwrap_or_default(),
        len: content.len() as i64,
    }
}

/// A manifest of a repository the viewer may pull, summarized.
pub async fn load(v: &Viewer, repo: &RepoName, digest: &Digest) -> Result<Summary, UiError> {
    let m = v.app.registry.get_manifest(&v.caller(), repo, &Reference::Digest(digest.clone())).await?;
    Ok(summarize(&m.media_type, &m.content))
}

/// The bytes an image takes: for an index, the sum of its children's images.
pub async fn total_size(v: &Viewer, repo: &RepoName, s: &Summary) -> Result<i64, UiError> {
    let mut total = s.own_size();
    for child in s.manifests.iter().take(MAX_CHILDREN) {
        let Ok(d) = child.digest.parse::<Digest>() else { continue };
        match load(v, repo, &d).await {
            Ok(c) => total += c.own_size(),
            Err(UiError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// The image config, if it is a small JSON blob of this repository.
async fn config_json(v: &Viewer, repo: &RepoName, config: &Desc) -> Result<Option<Value>, UiError> {
    if !config.media_type.contains("config") && !config.media_type.contains("container.image") {
        return Ok(None);
    }
    let Ok(d) = config.digest.parse::<Digest>() else { return Ok(None) };
    let reg = &v.app.registry;
    let bytes = match reg.open_blob(&v.caller(), repo, &d).await {
        Ok(BlobData::Bytes(b)) => b,
        Ok(BlobData::Stored { size, location }) if size <= MAX_CONFIG_BYTES => {
            let stream = reg.read_blob(&location, 0, size).await?;
            let chunks: Vec<bytes::Bytes> = stream.try_collect().await.map_err(anyhow::Error::from)?;
            chunks.concat()
        }
        Ok(_) | Err(crate::registry::RegistryError::BlobUnknown) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // Only an image config (an artifact's config, e.g. a Helm chart's, is shown as a blob).
    let v: Option<Value> = serde_json::from_slice(&bytes).ok();
    Ok(v.filter(|c| c.get("os").is_some() || c.get("architecture").is_some()))
}

fn manifest_link(repo: &RepoName, digest: &str) -> String {
    format!("/ui/r/{repo}/-/manifests/{digest}")
}

/// `GET /ui/r/{repository}/-/manifests/{digest}`
pub async fn page(v: Viewer, name: &str, digest: &str) -> UiResult {
    let (repo, _, granted) = v.manager().repository_actions(&v.actor, name).await?;
    let digest: Digest = digest.parse().map_err(|_| UiError::NotFound)?;
    let s = load(&v, &repo, &digest).await?;
    let shown = v.manager().show_repository(&v.actor, repo.as_str()).await?;
    let tags: Vec<&str> = shown.tags.iter().filter(|t| t.digest == digest.as_str()).map(|t| t.name.as_str()).collect();
    let config = match &s.config {
        Some(c) => config_json(&v, &repo, c).await?,
        None => None,
    };
    let referrers = v.app.registry.referrers(&v.caller(), &repo, &digest).await?;
    let size = total_size(&v, &repo, &s).await?;
    let short = &digest.hex()[..12.min(digest.hex().len())];
    let content = html! {
        (crumbs(&repo, Some(short)))
        h1 { @if s.is_index() { "Index" } @else if s.artifact_type.is_some() { "Artifact" } @else { "Image manifest" } }
        dl.facts {
            dt { "Digest" } dd { code #manifest-digest { (digest) } }
            dt { "Media type" } dd #media-type { (s.media_type) }
            @if let Some(a) = &s.artifact_type { dt { "Artifact type" } dd #artifact-type { (a) } }
            dt { "Size" } dd { (fmt::size_html(size)) }
            dt { "Tags" } dd #manifest-tags {
                @if tags.is_empty() { "none" }
                @for t in &tags { span.tag { (t) } " " }
            }
            @if let Some(sub) = &s.subject {
                dt { "Subject" } dd { a href=(manifest_link(&repo, &sub.digest)) { code.digest title=(sub.digest) { (sub.digest) } } }
            }
        }
        (pull_commands(&v, &repo, &format!("@{digest}")))
        @if !s.manifests.is_empty() { (platforms_table(&repo, &s)) }
        @if !s.layers.is_empty() || s.config.is_some() { (layers_table(&s)) }
        @if let Some(c) = &config { (config_section(c)) }
        @if !s.annotations.is_empty() {
            section { h2 { "Annotations" } (kv_table("annotations", &s.annotations)) }
        }
        section.scroll {
            h2 { "Referrers" }
            @if referrers.is_empty() { p.empty { "No signature, SBOM or other artifact refers to this manifest." } }
            @else {
                table #referrers {
                    thead { tr { th { "Artifact type" } th { "Digest" } th { "Size" } } }
                    tbody {
                        @for r in &referrers {
                            tr.referrer {
                                td.artifact-type { (r.artifact_type.as_deref().unwrap_or(&r.media_type)) }
                                td { a href=(manifest_link(&repo, &r.digest)) { code.digest title=(r.digest) { (r.digest) } } }
                                td { (fmt::size_html(r.size)) }
                            }
                        }
                    }
                }
            }
        }
        @if granted.contains(Actions::DELETE) {
            section.danger {
                h2 { "Delete" }
                form #delete-manifest-form method="post" action=(format!("{}/delete", manifest_link(&repo, digest.as_str()))) {
                    (csrf_field(v.csrf()))
                    button.danger type="submit" { "Delete manifest" }
                }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), &format!("{repo}@{short}"), content))
}

fn platforms_table(repo: &RepoName, s: &Summary) -> Markup {
    html! {
        section.scroll {
            h2 { "Platforms" }
            table #platforms {
                thead { tr { th { "Platform" } th { "Digest" } th { "Size" } } }
                tbody {
                    @for m in &s.manifests {
                        tr.platform {
                            td { (m.platform.as_deref().unwrap_or("—")) }
                            td { a href=(manifest_link(repo, &m.digest)) { code.digest title=(m.digest) { (m.digest) } } }
                            td { (fmt::size_html(m.size)) }
                        }
                    }
                }
            }
        }
    }
}

fn layers_table(s: &Summary) -> Markup {
    html! {
        section.scroll {
            h2 { "Layers" }
            table #layers {
                thead { tr { th { "#" } th { "Digest" } th { "Media type" } th { "Size" } } }
                tbody {
                    @if let Some(c) = &s.config {
                        tr.config-blob { td { "config" } td { code.digest title=(c.digest) { (c.digest) } } td { (c.media_type) } td { (fmt::size_html(c.size)) } }
                    }
                    @for (i, l) in s.layers.iter().enumerate() {
                        tr.layer { td { (i + 1) } td { code.digest title=(l.digest) { (l.digest) } } td { (l.media_type) } td { (fmt::size_html(l.size)) } }
                    }
                }
            }
        }
    }
}

fn kv_table(id: &str, rows: &[(String, String)]) -> Markup {
    html! {
        table.kv id=(id) {
            tbody { @for (k, v) in rows { tr { th scope="row" { (k) } td { (v) } } } }
        }
    }
}

/// A JSON array of strings as one command line (`["sh", "-c", "x"]` → `sh -c x`).
fn argv(v: Option<&Value>) -> Option<String> {
    let a = v?.as_array()?;
    Some(a.iter().map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned)).collect::<Vec<_>>().join(" "))
}

fn config_section(c: &Value) -> Markup {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
    let mut platform = format!("{}/{}", s("os"), s("architecture"));
    if !s("variant").is_empty() {
        platform = format!("{platform}/{}", s("variant"));
    }
    let inner = c.get("config").unwrap_or(&Value::Null);
    let labels = inner.get("Labels").map(string_map).unwrap_or_default();
    html! {
        section #config {
            h2 { "Config" }
            dl.facts {
                dt { "OS/arch" } dd #config-platform { (platform) }
                @if !s("created").is_empty() { dt { "Created" } dd #config-created { (fmt::written_time_html(s("created"))) } }
                @if let Some(e) = argv(inner.get("Entrypoint")) { dt { "Entrypoint" } dd { code #config-entrypoint { (e) } } }
                @if let Some(cmd) = argv(inner.get("Cmd")) { dt { "Cmd" } dd { code #config-cmd { (cmd) } } }
                @if let Some(w) = inner.get("WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()) { dt { "Working dir" } dd { code { (w) } } }
                @if let Some(u) = inner.get("User").and_then(Value::as_str).filter(|u| !u.is_empty()) { dt { "User" } dd { code { (u) } } }
            }
            @if !labels.is_empty() { h3 { "Labels" } (kv_table("labels", &labels)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_an_index_and_an_image() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":10,
             "platform":{"os":"linux","architecture":"arm64","variant":"v8"}}],"annotations":{"a":"b"}}"#;
        let s = summarize("application/vnd.oci.image.index.v1+json", index);
        assert!(s.is_index());
        assert_eq!(s.platforms(), vec!["linux/arm64/v8"]);
        assert_eq!(s.annotations, vec![("a".to_owned(), "b".to_owned())]);
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":5},
            "layers":[{"mediaType":"x","digest":"sha256:l","size":100}]}"#;
        let s = summarize("application/vnd.oci.image.manifest.v1+json", image);
        assert!(!s.is_index());
        assert_eq!(s.own_size(), image.len() as i64 + 105);
        assert_eq!(summarize("x", b"not json").layers.len(), 0);
    }
}

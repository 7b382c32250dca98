//! `/ui/r/{repository}…`: a repository's tags, its manifests, and deleting either. The name
//! holds slashes, so the path is parsed from the `/-/` that no repository name contains (a
//! name component starts with a letter or digit).

use axum::extract::{Path, Query};
use maud::{Markup, html};

use super::{
    Posted, UiError, UiResult, Viewer, fmt,
    layout::{self, ListQuery, command, csrf_field, pager, search},
    manifest,
};
use crate::{
    auth::rules::Actions,
    digest::Digest,
    names::{Reference, RepoName, Tag},
};

/// What a path under `/ui/r/` names.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    DeleteManifest(&'a str, &'a str),
    DeleteTag(&'a str, &'a str),
    DeleteRepository(&'a str),
    Unknown,
}

fn route(path: &str) -> Route<'_> {
    let Some((repo, rest)) = path.split_once("/-/") else { return Route::Tags(path) };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["manifests", d] => Route::Manifest(repo, d),
        ["manifests", d, "delete"] => Route::DeleteManifest(repo, d),
        ["tags", t, "delete"] => Route::DeleteTag(repo, t),
        ["delete"] => Route::DeleteRepository(repo),
        _ => Route::Unknown,
    }
}

/// `GET /ui/r/{*path}`
pub async fn get(v: Viewer, Path(path): Path<String>, Query(q): Query<ListQuery>) -> UiResult {
    match route(&path) {
        Route::Tags(repo) => tags_page(v, repo, q).await,
        Route::Manifest(repo, d) => manifest::page(v, repo, d).await,
        _ => Err(UiError::NotFound),
    }
}

/// `POST /ui/r/{*path}`: tag and manifest deletes (owners and staff).
pub async fn post(Path(path): Path<String>, p: Posted) -> UiResult {
    if let Route::DeleteRepository(name) = route(&path) {
        let repo = name.parse::<RepoName>().map_err(|_| UiError::NotFound)?;
        p.v.manager().delete_repository(&p.v.actor, repo.as_str()).await?;
        return Ok(layout::see_other(&format!("/ui/c/{}", repo.collection())));
    }
    let (name, reference) = match route(&path) {
        Route::DeleteTag(repo, t) => (repo, t.parse::<Tag>().map(Reference::Tag).map_err(|_| UiError::NotFound)?),
        Route::DeleteManifest(repo, d) => {
            (repo, d.parse::<Digest>().map(Reference::Digest).map_err(|_| UiError::NotFound)?)
        }
        _ => return Err(UiError::NotFound),
    };
    let v = &p.v;
    let (repo, _, granted) = v.manager().repository_actions(&v.actor, name).await?;
    if !granted.contains(Actions::DELETE) {
        return Err(UiError::Forbidden("only the collection's owners and staff may delete".into()));
    }
    v.app.registry.delete_manifest(&v.caller(), &repo, &reference).await?;
    Ok(layout::see_other(&format!("/ui/r/{repo}")))
}

/// The registry's host as clients name it (the public URL without its scheme).
pub fn registry_host(v: &Viewer) -> String {
    let realm = v.app.tokens.settings().realm.trim_end_matches("/token");
    realm.split_once("://").map_or(realm, |(_, h)| h).trim_end_matches('/').to_owned()
}

/// Pull commands for docker, podman and oras; `suffix` is `:tag`, `@digest` or empty.
pub fn pull_commands(v: &Viewer, repo: &RepoName, suffix: &str) -> Markup {
    let image = format!("{}/{repo}{suffix}", registry_host(v));
    html! {
        section.pull {
            h2 { "Pull" }
            (command(&format!("docker pull {image}")))
            (command(&format!("podman pull {image}")))
            (command(&format!("oras pull {image}")))
        }
    }
}

/// Breadcrumbs: collections / collection / repository [/ last].
pub fn crumbs(repo: &RepoName, last: Option<&str>) -> Markup {
    let c = repo.collection();
    html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/" { "Collections" } " / "
            a href=(format!("/ui/c/{c}")) { (c) } " / "
            @if let Some(l) = last {
                a href=(format!("/ui/r/{repo}")) { (repo.as_str()) } " / " span { (l) }
            } @else {
                span { (repo.as_str()) }
            }
        }
    }
}

struct Row {
    name: String,
    digest: String,
    updated_at: i64,
    size: i64,
    platforms: Vec<String>,
}

async fn tags_page(v: Viewer, name: &str, q: ListQuery) -> UiResult {
    let (repo, _, granted) = v.manager().repository_actions(&v.actor, name).await?;
    let shown = v.manager().show_repository(&v.actor, repo.as_str()).await?;
    let default_tag = shown.tags.iter().find(|t| t.name == "latest").or(shown.tags.first()).map(|t| t.name.clone());
    let (tags, page, total) = q.slice(shown.tags, |t| &t.name);
    let mut rows = Vec::with_capacity(tags.len());
    for t in tags {
        let Ok(d) = t.digest.parse::<Digest>() else { continue };
        let (size, platforms) = match manifest::load(&v, &repo, &d).await {
            Ok(s) => (manifest::total_size(&v, &repo, &s).await?, s.platforms()),
            Err(UiError::NotFound) => (t.size, vec![]),
            Err(e) => return Err(e),
        };
        rows.push(Row { name: t.name, digest: t.digest, updated_at: t.updated_at, size, platforms });
    }
    let deletes = granted.contains(Actions::DELETE);
    let base = format!("/ui/r/{repo}");
    let suffix = default_tag.map(|t| format!(":{t}")).unwrap_or_default();
    let content = html! {
        (crumbs(&repo, None))
        h1 { (repo.as_str()) }
        p.meta { (total) " tags · " (fmt::size_html(shown.size_bytes)) }
        (pull_commands(&v, &repo, &suffix))
        h2 { "Tags" }
        (search(&base, &q.q, "Find a tag"))
        @if rows.is_empty() {
            p.empty { "No tag to show." }
        } @else {
            div.scroll {
                table #tags {
                    thead { tr { th { "Tag" } th { "Digest" } th { "Size" } th { "Pushed" } th { "Platforms" } @if deletes { th { span.sr-only { "Actions" } } } } }
                    tbody {
                        @for r in &rows {
                            tr data-tag=(r.name) {
                                td { a href=(format!("{base}/-/manifests/{}", r.digest)) { (r.name) } }
                                td { a href=(format!("{base}/-/manifests/{}", r.digest)) { code.digest title=(r.digest) { (r.digest) } } }
                                td { (fmt::size_html(r.size)) }
                                td { (fmt::time_html(r.updated_at)) }
                                td.platforms { @if r.platforms.is_empty() { "—" } @else { (r.platforms.join(", ")) } }
                                @if deletes {
                                    td {
                                        form.delete-tag method="post" action=(format!("{base}/-/tags/{}/delete", r.name)) {
                                            (csrf_field(v.csrf()))
                                            button.danger type="submit" aria-label=(format!("Delete tag {}", r.name)) { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager(&base, &q.q, page, total))
        @if deletes {
            section.danger {
                h2 { "Delete" }
                p.hint { "Deletes the repository with every manifest and tag in it." }
                form #delete-repository-form method="post" action=(format!("{base}/-/delete")) {
                    (csrf_field(v.csrf()))
                    button.danger type="submit" { "Delete repository" }
                }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), repo.as_str(), content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_the_marker() {
        assert_eq!(route("a/b"), Route::Tags("a/b"));
        assert_eq!(route("a/b/-/manifests/sha256:x"), Route::Manifest("a/b", "sha256:x"));
        assert_eq!(route("a/-/manifests/sha256:x/delete"), Route::DeleteManifest("a", "sha256:x"));
        assert_eq!(route("a/b/c/-/tags/v1/delete"), Route::DeleteTag("a/b/c", "v1"));
        assert_eq!(route("a/b/-/delete"), Route::DeleteRepository("a/b"));
        assert_eq!(route("a/-/tags/v1"), Route::Unknown);
        assert_eq!(route("a/-/blobs/x"), Route::Unknown);
    }
}

//! The collections a viewer may see, one collection's repositories, creating a collection
//! and changing its visibility.

use axum::extract::{Path, Query};
use maud::html;

use super::{
    Posted, UiResult, Viewer,
    flash::{Flash, redirect},
    fmt,
    layout::{self, ListQuery, all_pages, csrf_field, pager, search},
};
use crate::{auth::rules::Actions, manage::CollectionSummary};

/// Every collection the viewer may see, by name (the API's listing, page after page).
async fn visible_collections(v: &Viewer) -> Result<Vec<CollectionSummary>, super::UiError> {
    let fetch = |last: String| async move { v.manager().list_collections(&v.actor, &last, 1000).await };
    Ok(all_pages(fetch, |c: &CollectionSummary| &c.name).await?)
}

/// `GET /ui/`
pub async fn collections(v: Viewer, Query(q): Query<ListQuery>) -> UiResult {
    let all = visible_collections(&v).await?;
    let (items, page, total) = q.slice(all, |c| &c.name);
    let may_create = v.session.is_some() && v.manager().may_create(&v.actor);
    let content = html! {
        h1 { "Collections" }
        (search("/ui/", &q.q, "Find a collection"))
        @if items.is_empty() {
            p.empty { @if q.q.is_empty() { "No collection to show." } @else { "No collection matches." } }
        } @else {
            ul.cards #collections {
                @for c in &items {
                    li data-collection=(c.name) {
                        a href=(format!("/ui/c/{}", c.name)) { (c.name) }
                        " " (visibility_badge(c.private))
                    }
                }
            }
        }
        (pager("/ui/", &q.q, page, total))
        @if may_create {
            section {
                h2 { "New collection" }
                form #create-collection-form method="post" action="/ui/collections" {
                    (csrf_field(v.csrf()))
                    label for="new-name" { "Name" }
                    input #new-name name="name" required pattern="[a-z0-9]+([._-]+[a-z0-9]+)*" autocapitalize="none";
                    label.check { input type="checkbox" name="private" checked[v.app.config.auth.default_private]; " Private" }
                    button type="submit" { "Create" }
                }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), "Collections", content))
}

pub fn visibility_badge(private: bool) -> maud::Markup {
    html! {
        @if private { span.badge.private { "private" } } @else { span.badge.public { "public" } }
    }
}

/// `POST /ui/collections`
pub async fn create_collection(p: Posted) -> UiResult {
    let name = p.form.text("name")?;
    let c = p.v.manager().create_collection(&p.v.actor, name, Some(p.form.checked("private")), None).await?;
    Ok(redirect(&p.v, &format!("/ui/c/{}", c.name), Flash::CollectionCreated))
}

/// `GET /ui/c/{collection}`
pub async fn collection(v: Viewer, Path(name): Path<String>, Query(q): Query<ListQuery>) -> UiResult {
    let c = v.manager().show_collection(&v.actor, &name).await?;
    let manages = v.manager().collection_actions(&v.actor, &name).await? == Actions::ALL;
    let base = format!("/ui/c/{}", c.name);
    let (repos, page, total) = q.slice(c.repositories, String::as_str);
    let content = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Collections" } " / " span { (c.name) } }
        h1 { (c.name) " " (visibility_badge(c.private)) }
        p.meta {
            (total) " repositories · " (fmt::size_html(c.size_bytes)) " · "
            a href=(format!("{base}/members")) { "Members (" (c.owners.len() + c.contributors.len()) ")" }
        }
        (search(&base, &q.q, "Find a repository"))
        @if repos.is_empty() {
            p.empty { "No repository to show." }
        } @else {
            ul.cards #repositories {
                @for r in &repos {
                    li data-repository=(r) { a href=(format!("/ui/r/{r}")) { (r) } }
                }
            }
        }
        (pager(&base, &q.q, page, total))
        @if manages {
            section {
                h2 { "Visibility" }
                form #visibility-form method="post" action=(format!("{base}/visibility")) {
                    (csrf_field(v.csrf()))
                    label.check { input type="checkbox" name="private" checked[c.private]; " Private (only members and staff may pull)" }
                    button type="submit" { "Save" }
                }
            }
            section.danger {
                h2 { "Delete" }
                p.hint { "Deletes the collection with every repository, manifest and tag in it." }
                form #delete-collection-form method="post" action=(format!("{base}/delete")) {
                    (csrf_field(v.csrf()))
                    button.danger type="submit" { "Delete collection " (c.name) }
                }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), &c.name, content))
}

/// `POST /ui/c/{collection}/visibility`
pub async fn visibility(Path(name): Path<String>, p: Posted) -> UiResult {
    let c = p.v.manager().set_collection_private(&p.v.actor, &name, p.form.checked("private")).await?;
    Ok(redirect(&p.v, &format!("/ui/c/{}", c.name), Flash::VisibilitySaved))
}

/// `POST /ui/c/{collection}/delete` (owners and staff).
pub async fn delete(Path(name): Path<String>, p: Posted) -> UiResult {
    p.v.manager().delete_collection(&p.v.actor, &name).await?;
    Ok(redirect(&p.v, "/ui/", Flash::CollectionDeleted))
}

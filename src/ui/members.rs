//! A collection's owners and contributors (users or teams), and managing them.

use axum::extract::{Path, Query};
use maud::html;

use super::{
    Posted, UiError, UiResult, Viewer,
    browse::visibility_badge,
    layout::{self, ListQuery, csrf_field, pager, search},
};
use crate::{auth::rules::Actions, manage::MemberKind};

/// `(kind, name, role)` of every member, from the API's collection view.
fn members(c: &crate::manage::CollectionOut) -> Vec<(String, String, &'static str)> {
    let entries = |list: &[serde_json::Value], role: &'static str| -> Vec<(String, String, &'static str)> {
        list.iter()
            .filter_map(|e| {
                e.as_object()?.iter().next().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned(), role))
            })
            .collect()
    };
    let mut all = entries(&c.owners, "owner");
    all.extend(entries(&c.contributors, "contributor"));
    all
}

/// `GET /ui/c/{collection}/members`
pub async fn page(v: Viewer, Path(name): Path<String>, Query(q): Query<ListQuery>) -> UiResult {
    let c = v.manager().show_collection(&v.actor, &name).await?;
    let manages = v.manager().collection_actions(&v.actor, &name).await? == Actions::ALL;
    let base = format!("/ui/c/{}", c.name);
    let (rows, page, total) = q.slice(members(&c), |m| &m.1);
    let content = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/" { "Collections" } " / " a href=(base) { (c.name) } " / " span { "Members" }
        }
        h1 { "Members of " (c.name) " " (visibility_badge(c.private)) }
        p.hint { "Owners pull, push, delete and manage the collection; contributors pull and push." }
        (search(&format!("{base}/members"), &q.q, "Find a member"))
        div.scroll {
            table #members {
                thead { tr { th { "Member" } th { "Kind" } th { "Role" } @if manages { th { span.sr-only { "Actions" } } } } }
                tbody {
                    @for (kind, member, role) in &rows {
                        tr data-member=(format!("{kind}:{member}")) {
                            td {
                                @if kind == "team" { a href=(format!("/ui/teams/{member}")) { (member) } } @else { (member) }
                            }
                            td { (kind) }
                            td.role { (role) }
                            @if manages {
                                td {
                                    form.remove-member method="post" action=(format!("{base}/members/remove")) {
                                        (csrf_field(v.csrf()))
                                        input type="hidden" name="kind" value=(kind);
                                        input type="hidden" name="name" value=(member);
                                        button.danger type="submit" aria-label=(format!("Remove {kind} {member}")) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager(&format!("{base}/members"), &q.q, page, total))
        @if manages {
            section {
                h2 { "Add a member" }
                p.hint { "Adding someone who is already a member changes their role." }
                form #add-member-form method="post" action=(format!("{base}/members")) {
                    (csrf_field(v.csrf()))
                    fieldset {
                        legend { "Kind" }
                        label.check { input type="radio" name="kind" value="user" checked; " User" }
                        label.check { input type="radio" name="kind" value="team"; " Team" }
                    }
                    label for="member-name" { "Name" }
                    input #member-name name="name" required autocapitalize="none";
                    label for="member-role" { "Role" }
                    select #member-role name="role" {
                        option value="contributor" { "contributor" }
                        option value="owner" { "owner" }
                    }
                    button type="submit" { "Add" }
                }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), &format!("Members of {}", c.name), content))
}

fn kind(p: &Posted) -> Result<MemberKind, UiError> {
    match p.form.get("kind").unwrap_or("user") {
        "user" => Ok(MemberKind::User),
        "team" => Ok(MemberKind::Team),
        _ => Err(UiError::bad("kind must be user or team")),
    }
}

/// `POST /ui/c/{collection}/members`
pub async fn add(Path(name): Path<String>, p: Posted) -> UiResult {
    let (kind, member, role) = (kind(&p)?, p.form.text("name")?, p.form.text("role")?);
    let role = crate::manage::parse_member_role(role)?;
    p.v.manager().put_member(&p.v.actor, &name, kind, member, role).await?;
    Ok(layout::see_other(&format!("/ui/c/{name}/members")))
}

/// `POST /ui/c/{collection}/members/remove`
pub async fn remove(Path(name): Path<String>, p: Posted) -> UiResult {
    let (kind, member) = (kind(&p)?, p.form.text("name")?);
    p.v.manager().remove_member(&p.v.actor, &name, kind, member).await?;
    Ok(layout::see_other(&format!("/ui/c/{name}/members")))
}

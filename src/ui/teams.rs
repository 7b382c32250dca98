//! Teams: the viewer's (staff: all), creating one, and a team's members (managed by its
//! owner and staff).

use axum::extract::{Path, Query};
use maud::html;

use super::{
    Posted, UiResult, Viewer,
    flash::{Flash, redirect},
    layout::{self, ListQuery, all_pages, csrf_field, pager, search},
};

/// `GET /ui/teams`
pub async fn list(v: Viewer, Query(q): Query<ListQuery>) -> UiResult {
    v.user_id()?;
    let v = &v;
    let all = all_pages(|last| async move { v.manager().list_teams(&v.actor, &last, 1000).await }, |t| &t.name).await?;
    let (teams, page, total) = q.slice(all, |t| &t.name);
    let may_create = v.manager().may_create(&v.actor);
    let content = html! {
        h1 { "Teams" }
        (search("/ui/teams", &q.q, "Find a team"))
        @if teams.is_empty() {
            p.empty { "No team to show." }
        } @else {
            ul.cards #teams {
                @for t in &teams {
                    li data-team=(t.name) {
                        a href=(format!("/ui/teams/{}", t.name)) { (t.name) }
                        span.meta { " · owner " (t.owner) " · " (t.members.len()) " members" }
                    }
                }
            }
        }
        (pager("/ui/teams", &q.q, page, total))
        @if may_create {
            section {
                h2 { "New team" }
                form #create-team-form method="post" action="/ui/teams" {
                    (csrf_field(v.csrf()))
                    label for="team-name" { "Name" }
                    input #team-name name="name" required autocapitalize="none";
                    button type="submit" { "Create" }
                }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), "Teams", content))
}

/// `POST /ui/teams`
pub async fn create(p: Posted) -> UiResult {
    let t = p.v.manager().create_team(&p.v.actor, p.form.text("name")?, None).await?;
    Ok(redirect(&p.v, &format!("/ui/teams/{}", t.name), Flash::TeamCreated))
}

/// `GET /ui/teams/{team}`
pub async fn show(v: Viewer, Path(name): Path<String>, Query(q): Query<ListQuery>) -> UiResult {
    v.user_id()?;
    let t = v.manager().show_team(&v.actor, &name).await?;
    let manages = v.is_staff() || t.owner == v.actor.username;
    let base = format!("/ui/teams/{}", t.name);
    let (members, page, total) = q.slice(t.members.clone(), String::as_str);
    let content = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/teams" { "Teams" } " / " span { (t.name) } }
        h1 { "Team " (t.name) }
        p.meta { "Owner: " strong #team-owner { (t.owner) } }
        h2 { "Members" }
        (search(&base, &q.q, "Find a member"))
        @if members.is_empty() { p.empty { "No member to show." } }
        ul.members #team-members {
            @for m in &members {
                li data-member=(m) {
                    span { (m) }
                    @if manages {
                        " "
                        form.remove-team-member.inline method="post" action=(format!("{base}/members/remove")) {
                            (csrf_field(v.csrf()))
                            input type="hidden" name="username" value=(m);
                            button.danger type="submit" aria-label=(format!("Remove {m}")) { "Remove" }
                        }
                    }
                }
            }
        }
        (pager(&base, &q.q, page, total))
        @if manages {
            section {
                h2 { "Add a member" }
                form #add-team-member-form method="post" action=(format!("{base}/members")) {
                    (csrf_field(v.csrf()))
                    label for="team-member" { "Username" }
                    input #team-member name="username" required autocapitalize="none";
                    button type="submit" { "Add" }
                }
            }
            section.danger {
                h2 { "Delete" }
                form #delete-team-form method="post" action=(format!("{base}/delete")) {
                    (csrf_field(v.csrf()))
                    button.danger type="submit" { "Delete team" }
                }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), &format!("Team {}", t.name), content))
}

/// `POST /ui/teams/{team}/members`
pub async fn add_member(Path(name): Path<String>, p: Posted) -> UiResult {
    p.v.manager().add_team_member(&p.v.actor, &name, p.form.text("username")?).await?;
    Ok(redirect(&p.v, &format!("/ui/teams/{name}"), Flash::MemberSaved))
}

/// `POST /ui/teams/{team}/members/remove`
pub async fn remove_member(Path(name): Path<String>, p: Posted) -> UiResult {
    p.v.manager().remove_team_member(&p.v.actor, &name, p.form.text("username")?).await?;
    Ok(redirect(&p.v, &format!("/ui/teams/{name}"), Flash::MemberRemoved))
}

/// `POST /ui/teams/{team}/delete`
pub async fn delete(Path(name): Path<String>, p: Posted) -> UiResult {
    p.v.manager().delete_team(&p.v.actor, &name).await?;
    Ok(redirect(&p.v, "/ui/teams", Flash::TeamDeleted))
}

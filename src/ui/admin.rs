//! Users, for superusers only (admins may not manage users, as in the API); everyone else
//! gets the 404 of a page that is not there.

use axum::extract::{Path, Query};
use maud::html;

use super::{
    Posted, UiError, UiResult, Viewer,
    flash::{Flash, redirect},
    fmt,
    layout::{self, ListQuery, all_pages, csrf_field, pager, search},
};
use crate::{
    auth::rules::Role,
    manage::{UserPatch, parse_role},
};

const ROLES: [&str; 3] = ["user", "admin", "superuser"];

fn only_superuser(v: &Viewer) -> Result<(), UiError> {
    if v.actor.role == Role::Superuser && v.session.is_some() { Ok(()) } else { Err(UiError::NotFound) }
}

/// `GET /ui/users`
pub async fn users(v: Viewer, Query(q): Query<ListQuery>) -> UiResult {
    only_superuser(&v)?;
    let v = &v;
    let all =
        all_pages(|last| async move { v.manager().list_users(&v.actor, &last, 1000).await }, |u| &u.username).await?;
    let (users, page, total) = q.slice(all, |u| &u.username);
    let content = html! {
        h1 { "Users" }
        (search("/ui/users", &q.q, "Find a user"))
        div.scroll {
            table #users {
                thead { tr { th { "User" } th { "Role" } th { "State" } th { "Created" } th { span.sr-only { "Actions" } } } }
                tbody {
                    @for u in &users {
                        @let action = format!("/ui/users/{}", u.username);
                        tr data-user=(u.username) {
                            td { (u.username) }
                            td {
                                form.user-role.inline method="post" action=(action) {
                                    (csrf_field(v.csrf()))
                                    label.sr-only for=(format!("role-{}", u.username)) { "Role of " (u.username) }
                                    select id=(format!("role-{}", u.username)) name="role" {
                                        @for r in ROLES { option value=(r) selected[r == u.role.as_str()] { (r) } }
                                    }
                                    button type="submit" { "Set role" }
                                }
                            }
                            td.state { @if u.active { "active" } @else { span.badge.private { "deactivated" } } }
                            td { (fmt::time_html(u.created_at)) }
                            td {
                                // Deactivating yourself is refused; the button is not offered.
                                @if u.username != v.actor.username {
                                form.user-active.inline method="post" action=(action) {
                                    (csrf_field(v.csrf()))
                                    input type="hidden" name="active" value=(if u.active { "false" } else { "true" });
                                    button type="submit" .danger[u.active] { @if u.active { "Deactivate" } @else { "Activate" } }
                                }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager("/ui/users", &q.q, page, total))
        section {
            h2 { "New user" }
            form #create-user-form method="post" action="/ui/users" {
                (csrf_field(v.csrf()))
                label for="new-username" { "Username" }
                input #new-username name="username" required autocapitalize="none" autocomplete="off";
                label for="new-user-password" { "Password" }
                input #new-user-password type="password" name="password" required autocomplete="new-password";
                label for="new-user-role" { "Role" }
                select #new-user-role name="role" { @for r in ROLES { option value=(r) { (r) } } }
                button type="submit" { "Create user" }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), "Users", content))
}

/// `POST /ui/users`
pub async fn create_user(p: Posted) -> UiResult {
    only_superuser(&p.v)?;
    let role = parse_role(p.form.get("role").unwrap_or("user"))?;
    let (name, password) = (p.form.text("username")?, p.form.get("password").unwrap_or(""));
    p.v.manager().create_user(&p.v.actor, name, password, role).await?;
    Ok(redirect(&p.v, "/ui/users", Flash::UserCreated))
}

/// `POST /ui/users/{username}`: `role` and/or `active`.
pub async fn update_user(Path(username): Path<String>, p: Posted) -> UiResult {
    only_superuser(&p.v)?;
    let active = match p.form.get("active") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(UiError::bad("active must be true or false")),
    };
    let role = p.form.get("role").map(parse_role).transpose()?;
    if active == Some(false) && p.v.actor.username == username {
        return Err(UiError::Conflict("you cannot deactivate yourself".into()));
    }
    p.v.manager().update_user(&p.v.actor, &username, UserPatch { role, password: None, active }).await?;
    Ok(redirect(&p.v, "/ui/users", Flash::UserSaved))
}

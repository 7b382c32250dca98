//! The viewer's own things: API tokens (created with the secret shown once, revoked) and
//! the password.

use axum::http::{Extensions, HeaderValue, StatusCode, header};
use maud::html;

use super::{
    Posted, UiError, UiResult, Viewer,
    flash::{Flash, redirect},
    fmt,
    layout::{self, csrf_field},
    repo::registry_host,
    session::{self, COOKIE},
};
use crate::auth::{http::client_ip, throttle::LoginError};

/// `GET /ui/tokens`
pub async fn tokens(v: Viewer) -> UiResult {
    let uid = v.user_id()?;
    let tokens = v.manager().list_tokens(uid).await?;
    let now = crate::db::now();
    let content = html! {
        h1 { "API tokens" }
        p.hint { "Use a token as the password of " code { "docker login" } ", podman, oras or the management API. Revoke one you no longer use." }
        @if tokens.is_empty() {
            p.empty { "You have no API token." }
        } @else {
            div.scroll {
                table #tokens {
                    thead { tr { th { "Name" } th { "Access" } th { "Created" } th { "Expires" } th { "Last used" } th { span.sr-only { "Actions" } } } }
                    tbody {
                        @for t in &tokens {
                            tr data-token=(t.id) {
                                td { (t.name) }
                                td { @if t.read_only { "read-only" } @else { "read & write" } }
                                td { (fmt::time_html(t.created_at)) }
                                td {
                                    @match t.expires_at {
                                        Some(e) if e <= now => { span.badge.private { "expired" } " " (fmt::time_html(e)) }
                                        Some(e) => (fmt::time_html(e)),
                                        None => "never",
                                    }
                                }
                                td { @match t.last_used_at { Some(u) => (fmt::time_html(u)), None => "never" } }
                                td {
                                    form.revoke-token method="post" action="/ui/tokens/revoke" {
                                        (csrf_field(v.csrf()))
                                        input type="hidden" name="id" value=(t.id);
                                        button.danger type="submit" aria-label=(format!("Revoke {}", t.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "New token" }
            form #create-token-form method="post" action="/ui/tokens" {
                (csrf_field(v.csrf()))
                label for="token-name" { "Name" }
                input #token-name name="name" required maxlength="100";
                label for="token-expiry" { "Expires in (days, empty for never)" }
                input #token-expiry type="number" name="expires_in_days" min="1" inputmode="numeric";
                label.check { input type="checkbox" name="read_only"; " Read-only (pull only)" }
                button type="submit" { "Create token" }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), "API tokens", content))
}

/// `POST /ui/tokens`: creates a token and shows its secret, this once (not a redirect: the
/// secret is stored nowhere it could be shown from again).
pub async fn create_token(p: Posted) -> UiResult {
    let v = &p.v;
    let uid = v.user_id()?;
    let name = p.form.text("name")?;
    let expires = match p.form.get("expires_in_days").map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(d.parse::<u32>().map_err(|_| UiError::bad("expires_in_days must be a whole number of days"))?),
    };
    let t = v.manager().create_token(uid, name, p.form.checked("read_only"), expires).await?;
    let secret = t.token.unwrap_or_default();
    let login = format!("docker login {} -u {} --password-stdin", registry_host(v), v.actor.username);
    let content = html! {
        h1 { "Token created" }
        p.notice role="status" { "Copy the token now: berth keeps only its hash and cannot show it again." }
        dl.facts {
            dt { "Name" } dd { (t.name) }
            dt { "Access" } dd { @if t.read_only { "read-only" } @else { "read & write" } }
            dt { "Expires" } dd { @match t.expires_at { Some(e) => (fmt::time_html(e)), None => "never" } }
        }
        h2 { "Token" }
        div.command { code #token-secret { (secret) } button.copy type="button" data-copy=(secret) aria-label="Copy the token" { "Copy" } }
        h2 { "Log in with it" }
        p { "Run this and paste the token (or pipe it in):" }
        div.command { code #docker-login { (login) } button.copy type="button" data-copy=(login) aria-label="Copy the docker login command" { "Copy" } }
        p { a href="/ui/tokens" { "Back to your tokens" } }
    };
    let mut r = layout::html_response(StatusCode::OK, layout::page(&v.chrome(), "Token created", content));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /ui/tokens/revoke`
pub async fn revoke_token(p: Posted) -> UiResult {
    let uid = p.v.user_id()?;
    p.v.manager().delete_token(uid, p.form.text("id")?).await?;
    Ok(redirect(&p.v, "/ui/tokens", Flash::TokenRevoked))
}

/// `GET /ui/account`
pub async fn page(v: Viewer) -> UiResult {
    v.user_id()?;
    let content = html! {
        h1 { "Account" }
        dl.facts {
            dt { "Username" } dd #account-username { (v.actor.username) }
            dt { "Role" } dd #account-role { (v.actor.role.as_str()) }
        }
        section {
            h2 { "Change password" }
            p.hint { "Changing it signs you out everywhere else and ends tokens minted by docker login with the old password." }
            form #password-form method="post" action="/ui/account/password" {
                (csrf_field(v.csrf()))
                input type="hidden" name="username" value=(v.actor.username) autocomplete="username";
                label for="current-password" { "Current password" }
                input #current-password type="password" name="current_password" required autocomplete="current-password";
                label for="new-password" { "New password" }
                input #new-password type="password" name="new_password" required autocomplete="new-password";
                button type="submit" { "Change password" }
            }
        }
    };
    Ok(layout::ok(&v.chrome(), "Account", content))
}

/// `POST /ui/account/password`: the current password is checked like a sign-in (same
/// throttle); every session of the user ends and this browser gets a new one.
pub async fn password(ext: Extensions, p: Posted) -> UiResult {
    let v = &p.v;
    let uid = v.user_id()?;
    let (current, new) = (p.form.get("current_password").unwrap_or(""), p.form.text("new_password")?);
    match v.app.tokens.login(&v.actor.username, current, client_ip(&ext)).await {
        Ok(who) if who.api_token_id.is_none() => {}
        Ok(_) | Err(LoginError::Invalid) => return Err(UiError::Forbidden("the current password is wrong".into())),
        Err(LoginError::Throttled(s)) => return Err(UiError::Throttled(s)),
        Err(LoginError::Unavailable) => return Err(UiError::Unavailable),
        Err(LoginError::Internal(e)) => return Err(UiError::Internal(e)),
    }
    // This ends every session of the user, this one included (see `db::users::set_password`).
    v.manager().set_own_password(&v.actor, new).await?;
    let ttl = v.app.config.ui.session_ttl_secs;
    let cookie = v.app.tokens.start_session(uid, ttl).await?;
    let mut r = redirect(v, "/ui/account", Flash::PasswordChanged);
    let set = session::set_cookie(COOKIE, &cookie, "/ui", ttl, v.app.secure_cookies());
    r.headers_mut().append(header::SET_COOKIE, set);
    Ok(r)
}

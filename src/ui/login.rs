//! Signing in and out. A sign-in goes through the same credential check and throttle as
//! `/token` ([`throttle::login`]), so failures here and there count together. The login
//! form itself is protected against cross-site posts by a double-submit secret (the
//! `berth_login` cookie must match the form's `csrf` field).

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{Extensions, HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::html;

use super::{
    Fields, UiError, UiResult, Viewer,
    error::safe_next,
    layout::{self, csrf_field},
    request::Chrome,
    session::{self, COOKIE, LOGIN_COOKIE},
};
use crate::{
    auth::{credentials::API_TOKEN_PREFIX, http::client_ip, password, throttle::LoginError},
    state::{App, AppState},
};

#[derive(Debug, Default, serde::Deserialize)]
pub struct Next {
    pub next: Option<String>,
}

impl App {
    /// Whether cookies must be `Secure`: served over TLS, or behind an https public URL.
    pub(crate) fn secure_cookies(&self) -> bool {
        self.config.tls.cert.is_some() || self.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

fn login_page(app: &App, status: StatusCode, csrf: &str, next: &str, username: &str, error: Option<&str>) -> Response {
    let auth = &app.config.auth;
    // The password form serves local accounts and LDAP; with only OpenID providers left
    // (local passwords off, no directory) it could sign no one in.
    let password_form = auth.local_logins || auth.ldap.url.is_some() || auth.oidc.is_empty();
    let next_query = if next.is_empty() {
        String::new()
    } else {
        format!("?{}", form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish())
    };
    let content = html! {
        section.narrow {
            h1 { "Sign in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @for p in app.oidc.providers() {
                p { a.oidc-login href={ "/ui/oidc/" (p.name()) "/start" (next_query) } { "Sign in with " (p.display_name()) } }
            }
            @if password_form { (password_fields(csrf, next, username)) }
            p.hint { "Anonymous visitors may browse what anonymous may pull, if anything." }
        }
    };
    layout::html_response(status, layout::page(&Chrome::default(), "Sign in", content))
}

/// The password form (local accounts and LDAP).
fn password_fields(csrf: &str, next: &str, username: &str) -> maud::Markup {
    html! {
        form #login-form method="post" action="/ui/login" {
            (csrf_field(csrf))
            @if !next.is_empty() { input type="hidden" name="next" value=(next); }
            label for="username" { "Username" }
            input #username name="username" autocomplete="username" required value=(username);
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
    }
}

/// `GET /ui/login`: the form (signed-in viewers go on to the interface).
pub async fn form(State(app): State<AppState>, headers: HeaderMap, Query(q): Query<Next>) -> UiResult {
    let next = q.next.as_deref().and_then(safe_next).unwrap_or("");
    if session::current(&app.tokens, &headers).await?.is_some() {
        return Ok(layout::see_other(if next.is_empty() { "/ui/" } else { next }));
    }
    let secret = match session::cookie(&headers, LOGIN_COOKIE).filter(|c| c.len() == 43) {
        Some(c) => c.to_owned(),
        None => password::random_secret(""),
    };
    let mut r = login_page(&app, StatusCode::OK, &secret, next, "", None);
    let cookie = session::set_cookie(LOGIN_COOKIE, &secret, "/ui/login", 3600, app.secure_cookies());
    r.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(r)
}

/// `POST /ui/login`: checks the credentials (throttled like `/token`), starts a session.
pub async fn submit(State(app): State<AppState>, headers: HeaderMap, ext: Extensions, body: Bytes) -> UiResult {
    let f = Fields::parse(&body);
    let login_secret = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if login_secret.is_empty() || !session::same_secret(login_secret, f.get("csrf").unwrap_or("")) {
        return Err(UiError::Csrf);
    }
    let next = f.get("next").and_then(safe_next).unwrap_or("");
    let username = f.get("username").unwrap_or("").trim();
    let secret = f.get("password").unwrap_or("");
    let again = |status, error: &str| login_page(&app, status, login_secret, next, username, Some(error));
    if username.is_empty() || secret.is_empty() {
        return Ok(again(StatusCode::BAD_REQUEST, "Enter a username and a password."));
    }
    // An API token is for clients; a browser session is opened with the password.
    if secret.starts_with(API_TOKEN_PREFIX) {
        return Ok(again(StatusCode::UNAUTHORIZED, "Sign in with your password, not an API token."));
    }
    let who = match app.tokens.login(username, secret, client_ip(&ext)).await {
        Ok(who) => who,
        Err(LoginError::Invalid) => return Ok(again(StatusCode::UNAUTHORIZED, "Invalid username or password.")),
        Err(LoginError::Throttled(secs)) => {
            let mut r =
                again(StatusCode::TOO_MANY_REQUESTS, &format!("Too many failed sign-ins: try again in {secs} s."));
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Ok(r);
        }
        Err(LoginError::Unavailable) => {
            return Ok(again(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in directory does not answer; try again later.",
            ));
        }
        Err(LoginError::Internal(e)) => return Err(UiError::Internal(e)),
    };
    let mut r = signed_in(&app, who.user.id, next).await?;
    r.headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(LOGIN_COOKIE, "", "/ui/login", 0, app.secure_cookies()));
    Ok(r)
}

/// Starts a session for a user who just signed in (with a password or a provider) and
/// sends them on to `next` (a checked `/ui/` path; empty: the start page).
pub(super) async fn signed_in(app: &App, user_id: i64, next: &str) -> UiResult {
    let ttl = app.config.ui.session_ttl_secs;
    let cookie = app.tokens.start_session(user_id, ttl).await?;
    let mut r = layout::see_other(if next.is_empty() { "/ui/" } else { next });
    r.headers_mut().append(header::SET_COOKIE, session::set_cookie(COOKIE, &cookie, "/ui", ttl, app.secure_cookies()));
    Ok(r)
}

/// `POST /ui/logout`: ends the session on the server and in the browser. Without a live
/// session there is nothing to end (an expired one, say): straight to the login form.
pub async fn logout(v: Viewer, body: Bytes) -> UiResult {
    let app = &v.app;
    let Some(s) = &v.session else { return Ok(layout::see_other("/ui/login")) };
    if !session::same_secret(&s.csrf, Fields::parse(&body).get("csrf").unwrap_or("")) {
        return Err(UiError::Csrf);
    }
    app.tokens.end_session(&s.id_hash).await?;
    let mut r = layout::see_other("/ui/login");
    r.headers_mut().append(header::SET_COOKIE, session::set_cookie(COOKIE, "", "/ui", 0, app.secure_cookies()));
    Ok(r.into_response())
}

//! Signing in with an OpenID Connect provider (`[[auth.oidc]]`, docs/oidc.md): `start`
//! sends the browser to the provider with a pending sign-in in a cookie; `callback` checks
//! it, lets [`crate::auth::oidc`] verify the provider's answer, syncs the user and starts a
//! session exactly as the password form does.

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};

use super::{
    UiError, UiResult,
    error::safe_next,
    layout,
    login::{Next, signed_in},
    request::Chrome,
    session,
};
use crate::{
    auth::{
        credentials::CredentialError,
        oidc::{COOKIE, Callback, OidcError, PENDING_SECS, Provider},
    },
    state::{App, AppState},
};

fn provider<'a>(app: &'a App, name: &str) -> Result<&'a Provider, UiError> {
    app.oidc.get(name).map(AsRef::as_ref).ok_or(UiError::NotFound)
}

/// A page saying why the sign-in did not happen, with the way back to the sign-in page.
fn failure(status: StatusCode, message: &str) -> Response {
    let message = format!("{message} Back to the sign-in page: /ui/login");
    layout::html_response(status, layout::error_page(&Chrome::default(), status, &message))
}

fn refused(e: &OidcError, provider: &Provider) -> Response {
    match e {
        OidcError::Refused(m) => {
            tracing::info!(provider = provider.name(), reason = m, "OpenID sign-in refused");
            failure(StatusCode::BAD_REQUEST, m)
        }
        OidcError::Unavailable(m) => {
            tracing::error!(provider = provider.name(), error = m, "OpenID provider unavailable");
            let shown = format!("{} does not answer; try again later.", provider.display_name());
            failure(StatusCode::SERVICE_UNAVAILABLE, &shown)
        }
    }
}

/// `GET /ui/oidc/{name}/start`: to the provider's authorization endpoint.
pub async fn start(State(app): State<AppState>, Path(name): Path<String>, Query(q): Query<Next>) -> UiResult {
    let p = provider(&app, &name)?;
    let next = q.next.as_deref().and_then(safe_next).unwrap_or("");
    let started = match p.start(next).await {
        Ok(s) => s,
        Err(e) => return Ok(refused(&e, p)),
    };
    let mut r = layout::see_other(&started.url);
    let cookie = session::set_cookie(COOKIE, &started.cookie, &p.cookie_path(), PENDING_SECS, app.secure_cookies());
    r.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(r)
}

/// `GET /ui/oidc/{name}/callback`: where the provider sends the browser back.
pub async fn callback(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> UiResult {
    let p = provider(&app, &name)?;
    // One callback per started sign-in, whatever it comes to.
    let clear = session::set_cookie(COOKIE, "", &p.cookie_path(), 0, app.secure_cookies());
    let mut r = match p.finish(session::cookie(&headers, COOKIE), &q).await {
        Err(e) => refused(&e, p),
        Ok((entry, next)) => match p.sync(&app.db, &entry).await {
            Ok(user) => {
                tracing::info!(provider = p.name(), user = user.username, "signed in with OpenID Connect");
                signed_in(&app, user.id, safe_next(&next).unwrap_or("")).await?
            }
            Err(CredentialError::Invalid) => failure(
                StatusCode::FORBIDDEN,
                "This account may not sign in here: it is deactivated, or its user name belongs to another account.",
            ),
            Err(e) => return Err(e.into()),
        },
    };
    r.headers_mut().append(header::SET_COOKIE, clear);
    Ok(r)
}

//! The interface's one error type, mapped to a status and an error page in one place, and
//! the middleware that renders those pages and adds the security headers to every answer.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use super::{
    layout,
    request::{Chrome, ChromeSlot},
};
use crate::{auth::credentials::CredentialError, manage::ManageError, registry::RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Absent, or not visible to the viewer: the two must read alike.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// A form post without the session's CSRF secret (or without a session).
    #[error("this form has expired or did not come from this site; reload the page and try again")]
    Csrf,
    /// Sign in first, then go to the page named.
    #[error("sign in")]
    SignIn(String),
    #[error("too many failed sign-ins; try again in {0} s")]
    Throttled(u64),
    /// The directory that checks this account's password does not answer.
    #[error("the sign-in directory does not answer; try again later")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl UiError {
    pub fn bad(m: impl Into<String>) -> UiError {
        UiError::BadRequest(m.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::Forbidden(_) | UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Conflict(_) => StatusCode::CONFLICT,
            UiError::SignIn(_) => StatusCode::SEE_OTHER,
            UiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            UiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ManageError> for UiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::BadRequest(m) => UiError::BadRequest(m),
            ManageError::Forbidden => UiError::Forbidden("you may not do that here".into()),
            ManageError::NotFound(_) => UiError::NotFound,
            ManageError::Conflict(m) => UiError::Conflict(m),
            ManageError::Internal(e) => UiError::Internal(e),
        }
    }
}

impl From<RegistryError> for UiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NameUnknown
            | RegistryError::ManifestUnknown
            | RegistryError::BlobUnknown
            | RegistryError::Denied => UiError::NotFound,
            RegistryError::TagImmutable(t) => UiError::Forbidden(format!("tag {t} is immutable in this collection")),
            RegistryError::Internal(e) => UiError::Internal(e),
            other => UiError::BadRequest(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for UiError {
    fn from(e: sqlx::Error) -> Self {
        UiError::Internal(e.into())
    }
}

/// Marks a response whose page [`render`] still has to draw.
#[derive(Clone, Debug)]
struct Failure {
    status: StatusCode,
    message: String,
}

/// Where to go after signing in: a page of the interface, never another site.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with("/ui/")
        && !next.contains("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(next)
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            UiError::SignIn(next) => {
                let to = match safe_next(next) {
                    Some(n) if n != "/ui/" => {
                        let q = form_urlencoded::Serializer::new(String::new()).append_pair("next", n).finish();
                        format!("/ui/login?{q}")
                    }
                    _ => "/ui/login".to_owned(),
                };
                return Redirect::to(&to).into_response();
            }
            UiError::Internal(e) => {
                crate::ops::metrics::internal_error(e);
                tracing::error!(error = format!("{e:#}"), "web interface error");
                "something went wrong on the server".to_owned()
            }
            UiError::NotFound => "There is nothing here, or you may not see it.".to_owned(),
            other => other.to_string(),
        };
        let mut r = status.into_response();
        if let UiError::Throttled(secs) = self {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r.extensions_mut().insert(Failure { status, message });
        r
    }
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Renders the page of a failed request (with the viewer's frame) and adds the security
/// headers to every answer of the interface.
pub async fn render(mut req: Request, next: Next) -> Response {
    let had_flash = super::session::cookie(req.headers(), super::flash::COOKIE).is_some();
    let slot = ChromeSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut r = next.run(req).await;
    if let Some(f) = r.extensions_mut().remove::<Failure>() {
        // Without the notice: an error page is the same whatever was posted before it (a
        // hidden and an absent page must read alike), and the notice waits for a real page.
        let chrome = Chrome { flash: None, ..slot.0.get().cloned().unwrap_or_default() };
        let page = layout::error_page(&chrome, f.status, &f.message);
        *r.body_mut() = Body::from(page.into_string());
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        r.headers_mut().remove(header::CONTENT_LENGTH);
    }
    // A page was drawn with the notice: it is spent. (A redirect leaves it for the next page.)
    if had_flash && r.status().is_success() {
        let clear = super::session::set_cookie(super::flash::COOKIE, "", "/ui", 0, false);
        r.headers_mut().append(header::SET_COOKIE, clear);
    }
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

impl From<CredentialError> for UiError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Invalid => UiError::SignIn(String::new()),
            CredentialError::Busy(_) => UiError::Throttled(crate::auth::password::BUSY_RETRY_SECS),
            CredentialError::Unavailable => UiError::Unavailable,
            CredentialError::Internal(e) => UiError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_the_interface() {
        assert_eq!(safe_next("/ui/c/lab"), Some("/ui/c/lab"));
        assert_eq!(safe_next("/ui/r/a/b?page=2"), Some("/ui/r/a/b?page=2"));
        for bad in ["//evil.example/", "https://evil.example/", "/ui//evil", "/ui/\\evil", "/v2/", "/ui/a b", ""] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}

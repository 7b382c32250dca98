//! Web-interface sessions: the `berth_session` cookie. The sessions themselves are a
//! credential of the token service ([`crate::auth::sessions`]): the cookie holds a random
//! secret whose SHA-256 names a row with the user, the CSRF secret and the expiry, re-read on
//! every request (sign-out, deactivation, a password change or a directory removal end it).

use axum::http::{HeaderMap, HeaderValue, header};

use crate::auth::{TokenService, credentials::CredentialError, rules::AccountRole};

pub const COOKIE: &str = "berth_session";
/// The pre-sign-in cookie that the login form's `csrf` field must match (double submit).
pub const LOGIN_COOKIE: &str = "berth_login";

/// A live session and its user.
#[derive(Clone, Debug)]
pub struct Session {
    pub id_hash: String,
    pub user_id: i64,
    pub username: String,
    pub role: AccountRole,
    pub csrf: String,
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The session the request's cookie names, if it is live and its user may still sign in.
pub async fn current(tokens: &TokenService, headers: &HeaderMap) -> Result<Option<Session>, CredentialError> {
    let Some(secret) = cookie(headers, COOKIE) else { return Ok(None) };
    Ok(tokens.session(secret).await?.map(|s| Session {
        id_hash: s.id_hash,
        user_id: s.who.user.id,
        username: s.who.user.username,
        role: s.who.user.role,
        csrf: s.csrf,
    }))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, `Secure` when served over TLS; `max_age`
/// 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    // Names, paths and base64url values are plain ASCII.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; berth_session=xyz; b=2"));
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "berth"), None);
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn cookie_attributes() {
        let v = set_cookie(COOKIE, "s", "/ui", 60, true);
        assert_eq!(v.to_str().unwrap(), "berth_session=s; Path=/ui; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
        let v = set_cookie(COOKIE, "", "/ui", 0, false);
        assert_eq!(v.to_str().unwrap(), "berth_session=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Lax");
    }
}

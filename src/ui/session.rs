//! Web-interface sessions: the `berth_session` cookie and the `ui_sessions` table (the only
//! SQL of the web interface lives here).
//!
//! The cookie holds 32 random bytes; the table keeps their SHA-256, the user, the session's
//! CSRF secret and its expiry. Every request reads the session joined with its user, so
//! sign-out (the row goes), deactivation, deletion (cascade) and a password change (both
//! delete the user's rows in `db::users`; a session older than the password, or of an
//! inactive user, is refused as well) take effect at once, on every replica.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::{
    auth::{password, rules::AccountRole},
    db::{self, Db, DbError},
};

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
pub async fn current(db: &Db, headers: &HeaderMap) -> Result<Option<Session>, DbError> {
    let Some(secret) = cookie(headers, COOKIE).filter(|s| !s.is_empty() && s.len() <= 128) else {
        return Ok(None);
    };
    let id_hash = password::secret_hash(secret);
    type Row = (i64, String, String, String, i64, i64, i64);
    let row: Option<Row> = sqlx::query_as(
        "SELECT s.user_id, s.csrf, u.username, u.role, u.active, u.password_changed_at, s.created_at \
         FROM ui_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2",
    )
    .bind(&id_hash)
    .bind(db::now())
    .fetch_optional(&db.pool)
    .await?;
    let Some((user_id, csrf, username, role, active, changed_at, created_at)) = row else { return Ok(None) };
    let Some(role) = AccountRole::parse(&role) else { return Ok(None) };
    if active == 0 || created_at < changed_at {
        return Ok(None);
    }
    Ok(Some(Session { id_hash, user_id, username, role, csrf }))
}

/// Starts a session for `user_id`; returns the cookie secret. Expired rows go first.
pub async fn create(db: &Db, user_id: i64, ttl_secs: u64) -> Result<String, DbError> {
    let now = db::now();
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1").bind(now).execute(&db.pool).await?;
    let secret = password::random_secret("");
    let csrf = password::random_secret("");
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
    sqlx::query("INSERT INTO ui_sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(password::secret_hash(&secret))
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(now.saturating_add(ttl))
        .execute(&db.pool)
        .await?;
    Ok(secret)
}

/// Ends one session.
pub async fn delete(db: &Db, id_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1").bind(id_hash).execute(&db.pool).await?;
    Ok(())
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

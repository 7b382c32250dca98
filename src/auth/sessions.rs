//! Browser sessions, a credential like a password or an API token: the cookie holds a
//! random secret (only its SHA-256 is stored, so a copy of the database opens no session).
//! Every use re-reads the session with its user, so sign-out, deactivation, deletion and a
//! password change end it at once on every replica; a directory user is re-checked against
//! the directory like one using an API token.

use super::{
    credentials::{Authenticated, CredentialError},
    password,
    rules::Role,
    service::TokenService,
};
use crate::db::{self, DbError};

/// A live browser session.
#[derive(Clone, Debug)]
pub struct WebSession {
    /// The SHA-256 of the cookie secret: what ends it.
    pub id_hash: String,
    pub who: Authenticated,
    /// The session's CSRF secret, which every state-changing form must carry.
    pub csrf: String,
}

impl TokenService {
    /// Starts a session for a user who just signed in; returns the cookie secret.
    pub async fn start_session(&self, user_id: i64, ttl_secs: u64) -> Result<String, DbError> {
        let now = db::now();
        let secret = password::random_secret("");
        let csrf = password::random_secret("");
        let expires = now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2));
        db::sessions::insert(&self.db, &password::secret_hash(&secret), user_id, &csrf, now, expires).await?;
        Ok(secret)
    }

    /// The session a cookie secret names, if it is live and its user may still sign in.
    /// A directory that does not answer for a directory user is
    /// [`CredentialError::Unavailable`].
    pub async fn session(&self, secret: &str) -> Result<Option<WebSession>, CredentialError> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let id_hash = password::secret_hash(secret);
        let Some(row) = db::sessions::by_hash(&self.db, &id_hash, db::now()).await? else { return Ok(None) };
        if !row.user.active || row.created_at < row.user.password_changed_at {
            return Ok(None);
        }
        let user = match self.directory.recheck(&self.db, row.user).await {
            Ok(u) if u.active => u,
            Ok(_) | Err(CredentialError::Invalid) => return Ok(None),
            Err(e) => return Err(e),
        };
        let role = Role::from(user.role);
        let who = Authenticated { user, role, read_only: false, api_token_id: None };
        Ok(Some(WebSession { id_hash, who, csrf: row.csrf }))
    }

    /// Ends a session (sign-out).
    pub async fn end_session(&self, id_hash: &str) -> Result<(), DbError> {
        db::sessions::delete(&self.db, id_hash).await
    }
}

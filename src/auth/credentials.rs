//! Checking credentials: a username with a password or an API token, or a refresh token.

use super::{
    login_cache::CACHE,
    password,
    rules::{Principal, Role},
};
use crate::db::{
    self, Db,
    users::{ApiTokenRow, UserRow},
};

/// Prefix of API tokens, so they are told apart from passwords without a lookup.
pub const API_TOKEN_PREFIX: &str = "berth_pat_";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "berth_rt_";

/// An authenticated user and what their credential allows.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub user: UserRow,
    pub role: Role,
    pub read_only: bool,
    /// The API token used, if any (a refresh token minted from it inherits its limits).
    pub api_token_id: Option<String>,
}

impl Authenticated {
    pub fn principal(&self) -> Principal {
        Principal { role: self.role, read_only: self.read_only }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("invalid credentials")]
    Invalid,
    /// Password hashing is saturated; the client should retry shortly.
    #[error(transparent)]
    Busy(#[from] password::Busy),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CredentialError {
    fn from(e: sqlx::Error) -> Self {
        CredentialError::Internal(e.into())
    }
}

fn active_with_role(user: UserRow) -> Result<(UserRow, Role), CredentialError> {
    if !user.active {
        return Err(CredentialError::Invalid);
    }
    let role = Role::from(user.role);
    Ok((user, role))
}

/// Checks `username` with a password or an API token.
pub async fn authenticate(db: &Db, username: &str, secret: &str) -> Result<Authenticated, CredentialError> {
    if secret.starts_with(API_TOKEN_PREFIX) {
        let who = authenticate_api_token(db, secret).await?;
        return if who.user.username == username { Ok(who) } else { Err(CredentialError::Invalid) };
    }
    let user = db::users::by_name(db, username).await?;
    let key = CACHE.key(username, secret);
    let Some(user) = user else {
        // An unknown user costs one verification, like a known one.
        CACHE.verify_once(key, secret, &password::dummy_hash().await?).await?;
        return Err(CredentialError::Invalid);
    };
    if !CACHE.hit(&key, user.id, &user.password_hash) {
        if !CACHE.verify_once(key, secret, &user.password_hash).await? {
            return Err(CredentialError::Invalid);
        }
        CACHE.insert(key, user.id, &user.password_hash);
    }
    let (user, role) = active_with_role(user)?;
    Ok(Authenticated { user, role, read_only: false, api_token_id: None })
}

/// Checks a bare API token (Bearer on the management API, or a password).
pub async fn authenticate_api_token(db: &Db, secret: &str) -> Result<Authenticated, CredentialError> {
    if !secret.starts_with(API_TOKEN_PREFIX) {
        return Err(CredentialError::Invalid);
    }
    let token =
        db::users::api_token_by_hash(db, &password::secret_hash(secret)).await?.ok_or(CredentialError::Invalid)?;
    from_api_token(db, token, None).await
}

/// The token's user (`user` when the caller already loaded it), if the token is live and
/// the user active.
async fn from_api_token(db: &Db, token: ApiTokenRow, user: Option<UserRow>) -> Result<Authenticated, CredentialError> {
    if token.revoked || token.expires_at.is_some_and(|e| e <= db::now()) {
        return Err(CredentialError::Invalid);
    }
    let user = match user {
        Some(u) if u.id == token.user_id => u,
        _ => db::users::by_id(db, token.user_id).await?.ok_or(CredentialError::Invalid)?,
    };
    let (user, role) = active_with_role(user)?;
    db::users::touch_api_token(db, &token.id).await?;
    Ok(Authenticated { user, role, read_only: token.read_only, api_token_id: Some(token.id) })
}

/// Checks a refresh token; it dies with a password change, deactivation, or its API token.
pub async fn from_refresh_token(db: &Db, refresh: &str) -> Result<Authenticated, CredentialError> {
    let rt = db::users::refresh_token(db, &password::secret_hash(refresh)).await?.ok_or(CredentialError::Invalid)?;
    let user = db::users::by_id(db, rt.user_id).await?.ok_or(CredentialError::Invalid)?;
    if rt.created_at < user.password_changed_at {
        return Err(CredentialError::Invalid);
    }
    match rt.api_token_id {
        Some(id) => {
            let token = db::users::api_token_by_id(db, &id).await?.ok_or(CredentialError::Invalid)?;
            from_api_token(db, token, Some(user)).await
        }
        None => {
            let (user, role) = active_with_role(user)?;
            Ok(Authenticated { user, role, read_only: false, api_token_id: None })
        }
    }
}

/// Mints a refresh token bound to this credential.
pub async fn mint_refresh_token(db: &Db, who: &Authenticated) -> Result<String, CredentialError> {
    let secret = password::random_secret(REFRESH_TOKEN_PREFIX);
    db::users::insert_refresh_token(db, &password::secret_hash(&secret), who.user.id, who.api_token_id.as_deref())
        .await?;
    Ok(secret)
}

//! Users (superuser only) and API tokens (each user's own).

use serde::Serialize;

use super::{Actor, ManageError, Manager, Result, page};
use crate::{
    auth::{
        credentials::API_TOKEN_PREFIX,
        login_cache, password,
        rules::AccountRole,
        users::{self as user_domain, UserError},
    },
    db::{self, users::NewApiToken},
};

#[derive(Debug, Serialize)]
pub struct UserOut {
    pub username: String,
    pub role: AccountRole,
    pub active: bool,
    pub created_at: i64,
}

#[derive(Debug, Serialize)]
pub struct TokenOut {
    pub id: String,
    pub name: String,
    pub read_only: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The secret, present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub role: Option<AccountRole>,
    pub password: Option<String>,
    pub active: Option<bool>,
}

pub fn parse_role(s: &str) -> Result<AccountRole> {
    AccountRole::parse(s).ok_or_else(|| ManageError::BadRequest("role must be superuser, admin or user".into()))
}

fn user_error(e: UserError) -> ManageError {
    match e {
        UserError::Exists(n) => ManageError::Conflict(format!("user {n} already exists")),
        UserError::InvalidName | UserError::EmptyPassword => ManageError::BadRequest(e.to_string()),
        UserError::Internal(e) => ManageError::Internal(e),
    }
}

impl Manager<'_> {
    fn only_superuser(&self, actor: &Actor) -> Result<()> {
        if actor.is_superuser() && !actor.read_only { Ok(()) } else { Err(ManageError::Forbidden) }
    }

    pub async fn user(&self, username: &str) -> Result<db::users::UserRow> {
        db::users::by_name(self.db, username).await?.ok_or_else(|| ManageError::NotFound(format!("user {username}")))
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        role: AccountRole,
    ) -> Result<UserOut> {
        self.only_superuser(actor)?;
        user_domain::create(self.db, username, password, role).await.map_err(user_error)?;
        let u = self.user(username).await?;
        Ok(UserOut { username: u.username, role: u.role, active: u.active, created_at: u.created_at })
    }

    pub async fn list_users(&self, actor: &Actor, last: &str, n: u32) -> Result<(Vec<UserOut>, bool)> {
        if !actor.is_superuser() {
            return Err(ManageError::Forbidden);
        }
        let rows = db::users::list(self.db, last, i64::from(n) + 1).await?;
        let users = rows
            .into_iter()
            .map(|u| UserOut { username: u.username, role: u.role, active: u.active, created_at: u.created_at })
            .collect();
        Ok(page(users, n))
    }

    pub async fn update_user(&self, actor: &Actor, username: &str, patch: UserPatch) -> Result<UserOut> {
        self.only_superuser(actor)?;
        let u = self.user(username).await?;
        if let Some(pw) = &patch.password {
            if pw.is_empty() {
                return Err(ManageError::BadRequest("password must not be empty".into()));
            }
            db::users::set_password(self.db, u.id, &password::hash(pw.clone()).await?).await?;
        }
        if let Some(role) = patch.role {
            db::users::set_role(self.db, u.id, role.as_str()).await?;
        }
        if let Some(active) = patch.active {
            db::users::set_active(self.db, u.id, active).await?;
        }
        // A changed or deactivated account is refused at once anyway (a cached login must
        // match the stored hash and an active user); this just frees the entries.
        login_cache::CACHE.forget_user(u.id);
        let u = self.user(username).await?;
        Ok(UserOut { username: u.username, role: u.role, active: u.active, created_at: u.created_at })
    }

    pub async fn delete_user(&self, actor: &Actor, username: &str) -> Result<()> {
        self.only_superuser(actor)?;
        let u = self.user(username).await?;
        if actor.user_id == Some(u.id) {
            return Err(ManageError::Conflict("you cannot delete yourself".into()));
        }
        let sole = db::users::sole_owner_of(self.db, u.id).await?;
        if !sole.is_empty() {
            return Err(ManageError::Conflict(format!("{username} is the last owner of {}", sole.join(", "))));
        }
        db::users::delete(self.db, u.id).await?;
        login_cache::CACHE.forget_user(u.id);
        Ok(())
    }

    /// Creates an API token for `user_id`; the secret is returned once.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        read_only: bool,
        expires_in_days: Option<u32>,
    ) -> Result<TokenOut> {
        if name.is_empty() || name.len() > 100 {
            return Err(ManageError::BadRequest("token name must be 1-100 characters".into()));
        }
        if expires_in_days == Some(0) {
            return Err(ManageError::BadRequest("expires_in_days must be positive".into()));
        }
        let secret = password::random_secret(API_TOKEN_PREFIX);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let expires_at = expires_in_days.map(|d| db::now() + i64::from(d) * 86_400);
        let token_hash = password::secret_hash(&secret);
        let new = NewApiToken { id: &id, user_id, name, token_hash: &token_hash, read_only, expires_at };
        let created_at = db::users::insert_api_token(self.db, &new).await?;
        Ok(TokenOut {
            id,
            name: name.into(),
            read_only,
            expires_at,
            created_at,
            last_used_at: None,
            token: Some(secret),
        })
    }

    pub async fn list_tokens(&self, user_id: i64) -> Result<Vec<TokenOut>> {
        let rows = db::users::api_tokens_of(self.db, user_id).await?;
        Ok(rows
            .into_iter()
            .map(|t| TokenOut {
                id: t.id,
                name: t.name,
                read_only: t.read_only,
                expires_at: t.expires_at,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                token: None,
            })
            .collect())
    }

    pub async fn delete_token(&self, user_id: i64, id: &str) -> Result<()> {
        if db::users::delete_api_token(self.db, user_id, id).await? {
            Ok(())
        } else {
            Err(ManageError::NotFound(format!("token {id}")))
        }
    }
}

//! Users, API tokens and refresh tokens.

use sqlx::Row;

use super::{Db, DbError, now};
use crate::auth::rules::AccountRole;

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: AccountRole,
    pub active: bool,
    pub password_changed_at: i64,
    pub created_at: i64,
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<UserRow, DbError> {
    Ok(UserRow {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        password_hash: r.try_get(2)?,
        role: {
            let name: String = r.try_get(3)?;
            AccountRole::parse(&name).ok_or_else(|| DbError::Decode(format!("unknown role {name:?}").into()))?
        },
        active: r.try_get::<i64, _>(4)? != 0,
        password_changed_at: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}

const USER_COLS: &str = "id, username, password_hash, role, active, password_changed_at, created_at";

pub async fn count(db: &Db) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&db.pool).await
}

pub async fn by_name(db: &Db, username: &str) -> Result<Option<UserRow>, DbError> {
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<UserRow>, DbError> {
    let row =
        sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1")).bind(id).fetch_optional(&db.pool).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Inserts a user; a duplicate name is a unique violation for the caller to map.
pub async fn insert(db: &Db, username: &str, password_hash: &str, role: &str) -> Result<i64, DbError> {
    let t = now();
    sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, active, created_at, password_changed_at) \
         VALUES ($1, $2, $3, 1, $4, $4) RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .bind(t)
    .fetch_one(&db.pool)
    .await
}

#[derive(Clone, Debug)]
pub struct ApiTokenRow {
    pub id: String,
    pub user_id: i64,
    pub read_only: bool,
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

const API_TOKEN_COLS: &str = "id, user_id, read_only, expires_at, revoked";

fn api_token_from_row(r: &sqlx::any::AnyRow) -> Result<ApiTokenRow, DbError> {
    Ok(ApiTokenRow {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        read_only: r.try_get::<i64, _>(2)? != 0,
        expires_at: r.try_get(3)?,
        revoked: r.try_get::<i64, _>(4)? != 0,
    })
}

pub async fn api_token_by_hash(db: &Db, token_hash: &str) -> Result<Option<ApiTokenRow>, DbError> {
    let row = sqlx::query(&format!("SELECT {API_TOKEN_COLS} FROM api_tokens WHERE token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(api_token_from_row).transpose()
}

pub async fn api_token_by_id(db: &Db, id: &str) -> Result<Option<ApiTokenRow>, DbError> {
    let row = sqlx::query(&format!("SELECT {API_TOKEN_COLS} FROM api_tokens WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(api_token_from_row).transpose()
}

pub async fn insert_refresh_token(
    db: &Db,
    token_hash: &str,
    user_id: i64,
    api_token_id: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, user_id, api_token_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(api_token_id)
        .bind(now())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A refresh token: whose, minted from which API token (if any), and when.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub user_id: i64,
    pub api_token_id: Option<String>,
    pub created_at: i64,
}

pub async fn refresh_token(db: &Db, token_hash: &str) -> Result<Option<RefreshTokenRow>, DbError> {
    sqlx::query_as("SELECT user_id, api_token_id, created_at FROM refresh_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&db.pool)
        .await
}

/// Users after `last` by name, at most `n`.
pub async fn list(db: &Db, last: &str, n: i64) -> Result<Vec<UserRow>, DbError> {
    let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE username > $1 ORDER BY username LIMIT $2"))
        .bind(last)
        .bind(n)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(user_from_row).collect()
}

pub async fn set_role(db: &Db, id: i64, role: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET role = $2 WHERE id = $1").bind(id).bind(role).execute(&db.pool).await?;
    Ok(())
}

/// Changes the password and kills every refresh token the user has.
pub async fn set_password(db: &Db, id: i64, hash: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await
}

/// (De)activates a user; deactivation kills their refresh tokens.
pub async fn set_active(db: &Db, id: i64, active: bool) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET active = $2 WHERE id = $1").bind(id).bind(active as i64).execute(&mut *tx).await?;
    if !active {
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Deletes a user with their memberships, tokens and teams they own.
pub async fn delete(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    for sql in [
        "DELETE FROM collection_members WHERE team_id IN (SELECT id FROM teams WHERE owner_id = $1)",
        "DELETE FROM team_members WHERE team_id IN (SELECT id FROM teams WHERE owner_id = $1)",
        "DELETE FROM teams WHERE owner_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Names of collections where the user is an owner and nobody else (user or team) is.
pub async fn sole_owner_of(db: &Db, id: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar(
        "SELECT c.name FROM collections c JOIN collection_members m ON m.collection_id = c.id \
         WHERE m.user_id = $1 AND m.role = 'owner' \
           AND (SELECT COUNT(*) FROM collection_members o WHERE o.collection_id = c.id AND o.role = 'owner') = 1 \
         ORDER BY c.name",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
}

/// A new API token; `token_hash` is the SHA-256 of the secret shown once.
pub struct NewApiToken<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub read_only: bool,
    pub expires_at: Option<i64>,
}

pub async fn insert_api_token(db: &Db, t: &NewApiToken<'_>) -> Result<i64, DbError> {
    let created = now();
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, read_only, expires_at, revoked, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
    )
    .bind(t.id)
    .bind(t.user_id)
    .bind(t.name)
    .bind(t.token_hash)
    .bind(t.read_only as i64)
    .bind(t.expires_at)
    .bind(created)
    .execute(&db.pool)
    .await?;
    Ok(created)
}

/// An API token as its owner lists it (never its secret).
#[derive(Clone, Debug)]
pub struct ApiTokenListed {
    pub id: String,
    pub name: String,
    pub read_only: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A user's live (unrevoked) tokens, by name.
pub async fn api_tokens_of(db: &Db, user_id: i64) -> Result<Vec<ApiTokenListed>, DbError> {
    let rows = sqlx::query(
        "SELECT id, name, read_only, expires_at, created_at, last_used_at FROM api_tokens \
         WHERE user_id = $1 AND revoked = 0 ORDER BY name, id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ApiTokenListed {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                read_only: r.try_get::<i64, _>(2)? != 0,
                expires_at: r.try_get(3)?,
                created_at: r.try_get(4)?,
                last_used_at: r.try_get(5)?,
            })
        })
        .collect()
}

/// Deletes a token (and, by cascade, refresh tokens minted from it); true if it existed.
pub async fn delete_api_token(db: &Db, user_id: i64, id: &str) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Records a use of the token, at most once a minute: docker asks for a token per
/// repository and action, and each would otherwise be a database write.
pub async fn touch_api_token(db: &Db, id: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2 - 60)",
    )
    .bind(id)
    .bind(now())
    .execute(&db.pool)
    .await?;
    Ok(())
}

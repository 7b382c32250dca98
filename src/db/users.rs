//! Users, API tokens and refresh tokens.

use sqlx::Row;

use super::{Db, DbError, now};

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub active: bool,
    pub password_changed_at: i64,
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<UserRow, DbError> {
    Ok(UserRow {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        password_hash: r.try_get(2)?,
        role: r.try_get(3)?,
        active: r.try_get::<i64, _>(4)? != 0,
        password_changed_at: r.try_get(5)?,
    })
}

const USER_COLS: &str = "id, username, password_hash, role, active, password_changed_at";

pub async fn count(db: &Db) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&db.pool)
        .await
}

pub async fn by_name(db: &Db, username: &str) -> Result<Option<UserRow>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLS} FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<UserRow>, DbError> {
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Inserts a user; a duplicate name is a unique violation for the caller to map.
pub async fn insert(
    db: &Db,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<i64, DbError> {
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

pub async fn api_token_by_hash(db: &Db, token_hash: &str) -> Result<Option<ApiTokenRow>, DbError> {
    let row = sqlx::query(
        "SELECT id, user_id, read_only, expires_at, revoked FROM api_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(ApiTokenRow {
            id: r.try_get(0)?,
            user_id: r.try_get(1)?,
            read_only: r.try_get::<i64, _>(2)? != 0,
            expires_at: r.try_get(3)?,
            revoked: r.try_get::<i64, _>(4)? != 0,
        })
    })
    .transpose()
}

pub async fn api_token_by_id(db: &Db, id: &str) -> Result<Option<ApiTokenRow>, DbError> {
    let hash: Option<String> =
        sqlx::query_scalar("SELECT token_hash FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    match hash {
        Some(h) => api_token_by_hash(db, &h).await,
        None => Ok(None),
    }
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

/// `(user_id, api_token_id, created_at)` of a refresh token.
pub async fn refresh_token(
    db: &Db,
    token_hash: &str,
) -> Result<Option<(i64, Option<String>, i64)>, DbError> {
    sqlx::query_as(
        "SELECT user_id, api_token_id, created_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&db.pool)
    .await
}

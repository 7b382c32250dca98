//! Web-interface sessions (`ui_sessions`): the SHA-256 of the cookie secret, the user, the
//! session's CSRF secret, and when it began and ends. A user's password change,
//! deactivation and deletion remove their rows (`super::users`).

use sqlx::Row as _;

use super::{
    Db, DbError,
    users::{USER_COLS, UserRow, user_from_row},
};

/// A live session with its user, as stored.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub user: UserRow,
    pub csrf: String,
    pub created_at: i64,
}

/// The unexpired session whose secret hashes to `id_hash`, with its user.
pub async fn by_hash(db: &Db, id_hash: &str, now: i64) -> Result<Option<SessionRow>, DbError> {
    let user_cols = USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
    let row = sqlx::query(&format!(
        "SELECT {user_cols}, s.csrf, s.created_at FROM ui_sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2"
    ))
    .bind(id_hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let n = USER_COLS.split(", ").count();
    Ok(Some(SessionRow { user: user_from_row(&r)?, csrf: r.try_get(n)?, created_at: r.try_get(n + 1)? }))
}

/// Records a session (expired ones go first).
pub async fn insert(
    db: &Db,
    id_hash: &str,
    user_id: i64,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1").bind(now).execute(&db.pool).await?;
    sqlx::query("INSERT INTO ui_sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Ends one session.
pub async fn delete(db: &Db, id_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1").bind(id_hash).execute(&db.pool).await?;
    Ok(())
}

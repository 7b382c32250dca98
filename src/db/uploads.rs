//! Durable upload sessions: offset and hash state as of the last flushed chunk.

use super::{Db, DbError, now};

pub async fn insert(db: &Db, id: &str, repo: &str, subject: &str, state: &[u8]) -> Result<(), DbError> {
    let t = now();
    sqlx::query(
        "INSERT INTO uploads (id, repo_name, subject, upload_offset, hash_state, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $5)",
    )
    .bind(id)
    .bind(repo)
    .bind(subject)
    .bind(state)
    .bind(t)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// `(offset, hash state)` of a session bound to this repository and subject.
pub async fn get(db: &Db, id: &str, repo: &str, subject: &str) -> Result<Option<(i64, Vec<u8>)>, DbError> {
    sqlx::query_as("SELECT upload_offset, hash_state FROM uploads WHERE id = $1 AND repo_name = $2 AND subject = $3")
        .bind(id)
        .bind(repo)
        .bind(subject)
        .fetch_optional(&db.pool)
        .await
}

/// Moves the session from `old` to `new` offset; false if another writer got there first.
pub async fn advance(db: &Db, id: &str, old: i64, new: i64, state: &[u8]) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE uploads SET upload_offset = $3, hash_state = $4, updated_at = $5 WHERE id = $1 AND upload_offset = $2",
    )
    .bind(id)
    .bind(old)
    .bind(new)
    .bind(state)
    .bind(now())
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete(db: &Db, id: &str) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(&db.pool).await?;
    Ok(r.rows_affected() > 0)
}

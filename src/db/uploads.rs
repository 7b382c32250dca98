//! Durable upload sessions: offset, hash state and the store's own session state (S3
//! multipart id and parts) as of the last flushed chunk.

use super::{Db, DbError, now};

/// A session as recorded.
#[derive(Clone, Debug)]
pub struct UploadRow {
    pub offset: i64,
    pub hash_state: Vec<u8>,
    pub store_state: Option<String>,
}

pub async fn insert(
    db: &Db,
    id: &str,
    repo: &str,
    subject: &str,
    hash_state: &[u8],
    store_state: Option<&str>,
) -> Result<(), DbError> {
    let t = now();
    sqlx::query(
        "INSERT INTO uploads (id, repo_name, subject, upload_offset, hash_state, store_state, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $6)",
    )
    .bind(id)
    .bind(repo)
    .bind(subject)
    .bind(hash_state)
    .bind(store_state)
    .bind(t)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A session bound to this repository and subject.
pub async fn get(db: &Db, id: &str, repo: &str, subject: &str) -> Result<Option<UploadRow>, DbError> {
    let row: Option<(i64, Vec<u8>, Option<String>)> = sqlx::query_as(
        "SELECT upload_offset, hash_state, store_state FROM uploads WHERE id = $1 AND repo_name = $2 AND subject = $3",
    )
    .bind(id)
    .bind(repo)
    .bind(subject)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(offset, hash_state, store_state)| UploadRow { offset, hash_state, store_state }))
}

/// Moves the session from `old` to `new` offset (keeping the store state when `None`);
/// false if another writer got there first.
pub async fn advance(
    db: &Db,
    id: &str,
    old: i64,
    new: i64,
    hash_state: &[u8],
    store_state: Option<&str>,
) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE uploads SET upload_offset = $3, hash_state = $4, store_state = COALESCE($5, store_state), \
         updated_at = $6 WHERE id = $1 AND upload_offset = $2",
    )
    .bind(id)
    .bind(old)
    .bind(new)
    .bind(hash_state)
    .bind(store_state)
    .bind(now())
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes the session; returns its store state if it existed.
pub async fn delete(db: &Db, id: &str) -> Result<Option<Option<String>>, DbError> {
    sqlx::query_scalar("DELETE FROM uploads WHERE id = $1 RETURNING store_state")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

//! Durable upload sessions: offset, hash state and the store's own session state (S3
//! multipart id and parts) as of the last flushed chunk.

use sqlx::AnyConnection;

use super::{Db, DbError, now};

/// A session as recorded.
#[derive(Clone, Debug)]
pub struct UploadRow {
    pub offset: i64,
    pub hash_state: Vec<u8>,
    pub store_state: Option<String>,
}

/// A new session's row (see [`insert`]).
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub id: String,
    pub repo: String,
    pub subject: String,
    pub hash_state: Vec<u8>,
    pub store_state: Option<String>,
}

/// Records a new session at offset 0. Through [`super::writer::Writer`], which commits it.
pub(super) async fn insert(conn: &mut AnyConnection, new: &NewUpload) -> Result<(), DbError> {
    let t = now();
    sqlx::query(
        "INSERT INTO uploads (id, repo_name, subject, upload_offset, hash_state, store_state, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $6)",
    )
    .bind(&new.id)
    .bind(&new.repo)
    .bind(&new.subject)
    .bind(&new.hash_state)
    .bind(new.store_state.as_deref())
    .bind(t)
    .execute(conn)
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

/// A session's move to a new offset (see [`advance`]).
#[derive(Clone, Debug)]
pub struct Advance {
    pub id: String,
    pub old: i64,
    pub new: i64,
    pub hash_state: Vec<u8>,
    /// `None`: keep the recorded store state.
    pub store_state: Option<String>,
}

/// Moves the session from `old` to `new` offset; false if another writer got there first.
/// Through [`super::writer::Writer`].
pub(super) async fn advance(conn: &mut AnyConnection, a: &Advance) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE uploads SET upload_offset = $3, hash_state = $4, store_state = COALESCE($5, store_state), \
         updated_at = $6 WHERE id = $1 AND upload_offset = $2",
    )
    .bind(&a.id)
    .bind(a.old)
    .bind(a.new)
    .bind(&a.hash_state)
    .bind(a.store_state.as_deref())
    .bind(now())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes the session; returns its store state if it existed. Through
/// [`super::writer::Writer`].
pub(super) async fn delete(conn: &mut AnyConnection, id: &str) -> Result<Option<Option<String>>, DbError> {
    sqlx::query_scalar("DELETE FROM uploads WHERE id = $1 RETURNING store_state").bind(id).fetch_optional(conn).await
}

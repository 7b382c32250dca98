//! Queries of garbage collection.

use super::{Db, DbError};

/// Blobs no repository links whose row is older than `cutoff`: `(digest, size, key)`.
pub async fn unreferenced_blobs(
    db: &Db,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(String, i64, Option<String>)>, DbError> {
    sqlx::query_as(
        "SELECT b.digest, b.size, b.storage_key FROM blobs b WHERE b.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE rb.digest = b.digest) ORDER BY b.digest LIMIT $2",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Deletes the blob's row if it is still unreferenced and old; true if it did. This is the
/// decision point: a push that links the blob first makes it fail.
pub async fn delete_unreferenced_blob(db: &Db, digest: &str, cutoff: i64) -> Result<bool, DbError> {
    let r = sqlx::query(
        "DELETE FROM blobs WHERE digest = $1 AND created_at < $2 \
         AND NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE rb.digest = $1)",
    )
    .bind(digest)
    .bind(cutoff)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Upload sessions not written since `cutoff`: `(id, store state)`.
pub async fn stale_uploads(db: &Db, cutoff: i64) -> Result<Vec<(String, Option<String>)>, DbError> {
    sqlx::query_as("SELECT id, store_state FROM uploads WHERE updated_at < $1").bind(cutoff).fetch_all(&db.pool).await
}

pub async fn upload_exists(db: &Db, id: &str) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE id = $1").bind(id).fetch_one(&db.pool).await?;
    Ok(n > 0)
}

/// Removes collections created implicitly before `cutoff` that never got a repository.
pub async fn delete_empty_auto_collections(db: &Db, cutoff: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar(
        "DELETE FROM collections WHERE auto_created = 1 AND created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.collection_id = collections.id) RETURNING name",
    )
    .bind(cutoff)
    .fetch_all(&db.pool)
    .await
}

//! Queries of `berth fsck`: the blob rows to check against storage, marking lost blobs,
//! upload sessions, and manifests whose references are gone.

use super::{Db, DbError};

/// A blob row: digest, size, storage key (S3) and when fsck marked it lost.
pub type BlobRow = (String, i64, Option<String>, Option<i64>);

pub async fn blob_count(db: &Db) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM blobs").fetch_one(&db.pool).await
}

/// Blob rows after `after` in digest order, at most `limit`.
pub async fn blobs(db: &Db, after: &str, limit: i64) -> Result<Vec<BlobRow>, DbError> {
    sqlx::query_as("SELECT digest, size, storage_key, lost_at FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(&db.pool)
        .await
}

/// Marks a blob lost: reads answer BLOB_UNKNOWN and manifests cannot reference it until it
/// is pushed again (which clears the mark).
pub async fn mark_lost(db: &Db, digest: &str, now: i64) -> Result<bool, DbError> {
    let r = sqlx::query("UPDATE blobs SET lost_at = $2 WHERE digest = $1 AND lost_at IS NULL")
        .bind(digest)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Every S3 object key a row accounts for: blobs' and those a collection pass doomed.
pub async fn object_keys(db: &Db) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar(
        "SELECT storage_key FROM blobs WHERE storage_key IS NOT NULL UNION SELECT storage_key FROM doomed_objects",
    )
    .fetch_all(&db.pool)
    .await
}

/// An upload session and the bytes it has recorded.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionOffset {
    pub id: String,
    #[sqlx(rename = "upload_offset")]
    pub offset: i64,
}

/// A reference from a manifest to a child the repository no longer has.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DanglingRef {
    pub repository: String,
    pub manifest: String,
    pub child: String,
}

/// Every upload session.
pub async fn sessions(db: &Db) -> Result<Vec<SessionOffset>, DbError> {
    sqlx::query_as("SELECT id, upload_offset FROM uploads ORDER BY id").fetch_all(&db.pool).await
}

/// References no longer satisfied: the child is neither a manifest of the repository nor
/// a blob it links and still has.
pub async fn dangling_refs(db: &Db) -> Result<Vec<DanglingRef>, DbError> {
    sqlx::query_as(
        "SELECT rp.name AS repository, r.manifest_digest AS manifest, r.child_digest AS child FROM manifest_refs r \
         JOIN repositories rp ON rp.id = r.repo_id \
         WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.repo_id AND m.digest = r.child_digest) \
         AND NOT EXISTS (SELECT 1 FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
           WHERE rb.repo_id = r.repo_id AND rb.digest = r.child_digest AND b.lost_at IS NULL) \
         ORDER BY rp.name, r.manifest_digest, r.child_digest",
    )
    .fetch_all(&db.pool)
    .await
}

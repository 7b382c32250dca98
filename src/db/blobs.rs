//! Blob rows and their links to repositories.

use sqlx::AnyConnection;

use super::{Db, DbError, now, repos::CatalogScope};

/// Size of the blob if it is linked in the repository.
pub async fn size_in_repo(db: &Db, repo_id: i64, digest: &str) -> Result<Option<i64>, DbError> {
    Ok(stored_in_repo(db, repo_id, digest).await?.map(|b| b.size))
}

/// A stored blob: its size and the storage backend's record of where it is (S3 only).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredBlob {
    pub size: i64,
    #[sqlx(rename = "storage_key")]
    pub record: Option<String>,
}

/// The blob if it is linked in the repository and not lost.
pub async fn stored_in_repo(db: &Db, repo_id: i64, digest: &str) -> Result<Option<StoredBlob>, DbError> {
    sqlx::query_as(
        "SELECT b.size, b.storage_key FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
         WHERE rb.repo_id = $1 AND rb.digest = $2 AND b.lost_at IS NULL",
    )
    .bind(repo_id)
    .bind(digest)
    .fetch_optional(&db.pool)
    .await
}

/// Size of the blob if it is stored at all.
pub async fn size(db: &Db, digest: &str) -> Result<Option<i64>, DbError> {
    sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1").bind(digest).fetch_optional(&db.pool).await
}

/// Records a verified blob stored at `key` (S3; `None` on the filesystem) and links it
/// into the repository. The first row for a digest wins: returns the key it records, so a
/// caller whose own copy lost can delete it. A row fsck marked lost is taken over. Through
/// [`super::writer::Writer`], which commits it.
pub(super) async fn insert_and_link(conn: &mut AnyConnection, b: &NewBlob) -> Result<Option<String>, DbError> {
    sqlx::query(
        "INSERT INTO blobs (digest, size, storage_key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) \
         DO UPDATE SET size = excluded.size, storage_key = excluded.storage_key, created_at = excluded.created_at, \
         lost_at = NULL WHERE blobs.lost_at IS NOT NULL",
    )
    .bind(&b.digest)
    .bind(b.size)
    .bind(b.key.as_deref())
    .bind(now())
    .execute(&mut *conn)
    .await?;
    link_in(conn, &b.digest, b.repo_id).await?;
    sqlx::query_scalar("SELECT storage_key FROM blobs WHERE digest = $1").bind(&b.digest).fetch_one(conn).await
}

/// A verified blob to record (see [`insert_and_link`]).
#[derive(Clone, Debug)]
pub struct NewBlob {
    pub digest: String,
    pub size: i64,
    /// Where it is stored (S3), `None` on the filesystem.
    pub key: Option<String>,
    pub repo_id: i64,
}

/// Links a stored blob into the repository, or refreshes the link's time (garbage
/// collection keeps young links); false if the blob is not stored (any more).
async fn link_in(conn: &mut AnyConnection, digest: &str, repo_id: i64) -> Result<bool, DbError> {
    let r = sqlx::query(
        "INSERT INTO repo_blobs (repo_id, digest, created_at) \
         SELECT $1, b.digest, $3 FROM blobs b WHERE b.digest = $2 AND b.lost_at IS NULL \
         ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = excluded.created_at",
    )
    .bind(repo_id)
    .bind(digest)
    .bind(now())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Links an already stored blob into a repository (cross-repository mount); false if the
/// blob went meanwhile (a collection pass removed it).
pub async fn link(db: &Db, digest: &str, repo_id: i64) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let linked = link_in(&mut tx, digest, repo_id).await?;
    tx.commit().await?;
    Ok(linked)
}

/// Removes the blob's link from the repository; true if it was linked.
pub async fn unlink(db: &Db, repo_id: i64, digest: &str) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM repo_blobs WHERE repo_id = $1 AND digest = $2")
        .bind(repo_id)
        .bind(digest)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Whether the blob is linked in some repository the scope may pull.
pub async fn linked_where_visible(db: &Db, digest: &str, scope: &CatalogScope) -> Result<bool, DbError> {
    let base = "SELECT COUNT(*) FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id \
                JOIN collections c ON c.id = r.collection_id WHERE rb.digest = $1";
    let n: i64 = match scope {
        CatalogScope::Nothing => return Ok(false),
        CatalogScope::All => sqlx::query_scalar(base).bind(digest).fetch_one(&db.pool).await?,
        CatalogScope::Public => {
            sqlx::query_scalar(&format!("{base} AND c.private = 0")).bind(digest).fetch_one(&db.pool).await?
        }
        CatalogScope::User(uid) => {
            sqlx::query_scalar(&format!("{base} AND ({})", super::repos::user_can_pull("$2")))
                .bind(digest)
                .bind(uid)
                .fetch_one(&db.pool)
                .await?
        }
    };
    Ok(n > 0)
}

//! Queries of garbage collection and fsck. Every delete is conditional: it re-checks, in
//! the same statement, what the collector decided from an earlier read, so a push, mount or
//! tag that came in between wins (see `crate::registry::gc`).

use super::{Db, DbError};

/// A repository as the collector walks them.
#[derive(Clone, Debug)]
pub struct RepoRow {
    pub id: i64,
    pub name: String,
    pub collection_id: i64,
}

/// A manifest: its digest, when it was last pushed (or referenced by a new parent), its
/// subject and its size.
#[derive(Clone, Debug)]
pub struct ManifestNode {
    pub digest: String,
    pub pushed_at: i64,
    pub subject: Option<String>,
    pub size: i64,
}

#[derive(Clone, Debug)]
pub struct TagRow {
    pub name: String,
    pub digest: String,
    pub updated_at: i64,
}

/// A repository's link to a blob, with the blob's size.
#[derive(Clone, Debug)]
pub struct LinkRow {
    pub digest: String,
    pub size: i64,
    pub linked_at: i64,
}

/// Everything the collector needs to know about one repository.
#[derive(Clone, Debug, Default)]
pub struct RepoGraph {
    pub manifests: Vec<ManifestNode>,
    pub tags: Vec<TagRow>,
    /// `(manifest, child)`: blobs and child manifests each manifest references.
    pub refs: Vec<(String, String)>,
    pub links: Vec<LinkRow>,
}

pub async fn repo_count(db: &Db) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM repositories").fetch_one(&db.pool).await
}

/// Repositories after `after_id`, by id, at most `limit`.
pub async fn repositories(db: &Db, after_id: i64, limit: i64) -> Result<Vec<RepoRow>, DbError> {
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, name, collection_id FROM repositories WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id)
            .bind(limit)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(|(id, name, collection_id)| RepoRow { id, name, collection_id }).collect())
}

pub async fn graph(db: &Db, repo_id: i64) -> Result<RepoGraph, DbError> {
    let manifests: Vec<(String, i64, Option<String>, i64)> =
        sqlx::query_as("SELECT digest, created_at, subject, size FROM manifests WHERE repo_id = $1")
            .bind(repo_id)
            .fetch_all(&db.pool)
            .await?;
    let tags: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT name, digest, updated_at FROM tags WHERE repo_id = $1")
            .bind(repo_id)
            .fetch_all(&db.pool)
            .await?;
    let refs = sqlx::query_as("SELECT manifest_digest, child_digest FROM manifest_refs WHERE repo_id = $1")
        .bind(repo_id)
        .fetch_all(&db.pool)
        .await?;
    let links: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT rb.digest, b.size, rb.created_at FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
         WHERE rb.repo_id = $1",
    )
    .bind(repo_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(RepoGraph {
        manifests: manifests
            .into_iter()
            .map(|(digest, pushed_at, subject, size)| ManifestNode { digest, pushed_at, subject, size })
            .collect(),
        tags: tags.into_iter().map(|(name, digest, updated_at)| TagRow { name, digest, updated_at }).collect(),
        refs,
        links: links.into_iter().map(|(digest, size, linked_at)| LinkRow { digest, size, linked_at }).collect(),
    })
}

/// Deletes a tag that retention dropped, if it still points where it did when read.
pub async fn delete_tag_if_unchanged(db: &Db, repo_id: i64, tag: &TagRow) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND name = $2 AND digest = $3 AND updated_at = $4")
        .bind(repo_id)
        .bind(&tag.name)
        .bind(&tag.digest)
        .bind(tag.updated_at)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// `$first, $first+1, …` for `n` values: the parameter list of an `IN (…)`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A manifest the collector found unreachable: its digest and the `created_at` it read.
#[derive(Clone, Copy, Debug)]
pub struct DeadManifest<'a> {
    pub digest: &'a str,
    pub pushed_at: i64,
}

/// Deletes the manifests the collector found unreachable that still are as far as one row
/// can tell: untagged, not pushed again (nor referenced by a new parent, which refreshes
/// `created_at`) since `pushed_at`, and no manifest of the repository lists them as a
/// child; returns the digests deleted. One transaction for the whole batch: each manifest
/// is re-checked by its own statement, and on SQLite no other write commits between them.
pub async fn delete_manifests_if_dead(
    db: &Db,
    repo_id: i64,
    batch: &[DeadManifest<'_>],
) -> Result<Vec<String>, DbError> {
    let mut tx = db.begin().await?;
    let mut deleted = Vec::new();
    for m in batch {
        let r = sqlx::query(
            "DELETE FROM manifests WHERE repo_id = $1 AND digest = $2 AND created_at <= $3 \
             AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = $1 AND t.digest = $2) \
             AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repo_id = $1 AND r.child_digest = $2)",
        )
        .bind(repo_id)
        .bind(m.digest)
        .bind(m.pushed_at)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            continue;
        }
        sqlx::query("DELETE FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2")
            .bind(repo_id)
            .bind(m.digest)
            .execute(&mut *tx)
            .await?;
        deleted.push(m.digest.to_owned());
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Removes a repository's links to the `digests` that are older than `cutoff` and that no
/// manifest of the repository references; returns the digests unlinked. One statement re-checks
/// every row. A manifest PUT refreshes the links it references in its own transaction, so
/// it either comes first (and the link stays) or finds the link gone (and is refused with
/// MANIFEST_BLOB_UNKNOWN).
pub async fn unlink_unreferenced(db: &Db, repo_id: i64, digests: &[&str], cutoff: i64) -> Result<Vec<String>, DbError> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "DELETE FROM repo_blobs WHERE repo_id = $1 AND created_at < $2 AND digest IN ({}) \
         AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repo_id = $1 AND r.child_digest = repo_blobs.digest) \
         RETURNING digest",
        placeholders(3, digests.len())
    );
    // Not prepared for reuse: one statement per batch size would crowd out each
    // connection's cache of the fixed ones.
    let mut q = sqlx::query_scalar(&sql).persistent(false).bind(repo_id).bind(cutoff);
    for d in digests {
        q = q.bind(*d);
    }
    q.fetch_all(&db.pool).await
}

/// How many repositories link the blob.
pub async fn link_count(db: &Db, digest: &str) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM repo_blobs WHERE digest = $1").bind(digest).fetch_one(&db.pool).await
}

/// `(created_at)` of a blob row, if any.
pub async fn blob_created_at(db: &Db, digest: &str) -> Result<Option<i64>, DbError> {
    sqlx::query_scalar("SELECT created_at FROM blobs WHERE digest = $1").bind(digest).fetch_optional(&db.pool).await
}

/// A blob row as garbage collection sees it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BlobRow {
    pub digest: String,
    pub size: i64,
    /// The storage backend's record of where the bytes are (S3 only).
    #[sqlx(rename = "storage_key")]
    pub record: Option<String>,
}

/// Blobs no repository links whose row is older than `cutoff`, by digest after `after`.
pub async fn unreferenced_blobs(db: &Db, cutoff: i64, after: &str, limit: i64) -> Result<Vec<BlobRow>, DbError> {
    sqlx::query_as(
        "SELECT b.digest, b.size, b.storage_key FROM blobs b WHERE b.created_at < $1 AND b.digest > $2 \
         AND NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE rb.digest = b.digest) ORDER BY b.digest LIMIT $3",
    )
    .bind(cutoff)
    .bind(after)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Deletes the rows of the `digests` still unreferenced and older than `cutoff`; returns
/// the digests deleted. This is the decision point: a push or mount that links a blob first
/// keeps it. One statement re-checks every row.
pub async fn delete_unreferenced_blobs(db: &Db, digests: &[&str], cutoff: i64) -> Result<Vec<String>, DbError> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "DELETE FROM blobs WHERE created_at < $1 AND digest IN ({}) \
         AND NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE rb.digest = blobs.digest) RETURNING digest",
        placeholders(2, digests.len())
    );
    let mut q = sqlx::query_scalar(&sql).persistent(false).bind(cutoff);
    for d in digests {
        q = q.bind(*d);
    }
    match q.fetch_all(&db.pool).await {
        Ok(deleted) => Ok(deleted),
        // PostgreSQL: a mount committed a link meanwhile (the foreign key refuses the
        // delete, and the whole statement with it): one by one, so the others still go.
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() && digests.len() > 1 => {
            let mut deleted = Vec::new();
            for d in digests {
                deleted.extend(Box::pin(delete_unreferenced_blobs(db, &[d], cutoff)).await?);
            }
            Ok(deleted)
        }
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Records an S3 object to delete on a later pass.
pub async fn doom_object(db: &Db, key: &str, now: i64) -> Result<(), DbError> {
    sqlx::query("INSERT INTO doomed_objects (storage_key, doomed_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(key)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// S3 objects doomed before `cutoff`.
pub async fn doomed_objects(db: &Db, cutoff: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar("SELECT storage_key FROM doomed_objects WHERE doomed_at < $1")
        .bind(cutoff)
        .fetch_all(&db.pool)
        .await
}

pub async fn forget_doomed(db: &Db, key: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM doomed_objects WHERE storage_key = $1").bind(key).execute(&db.pool).await?;
    Ok(())
}

/// An upload session and the storage backend's state for it (S3: the multipart upload).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StaleUpload {
    pub id: String,
    pub store_state: Option<String>,
}

/// Upload sessions not written since `cutoff`.
pub async fn stale_uploads(db: &Db, cutoff: i64) -> Result<Vec<StaleUpload>, DbError> {
    sqlx::query_as("SELECT id, store_state FROM uploads WHERE updated_at < $1").bind(cutoff).fetch_all(&db.pool).await
}

pub async fn upload_exists(db: &Db, id: &str) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE id = $1").bind(id).fetch_one(&db.pool).await?;
    Ok(n > 0)
}

/// Collections created implicitly before `cutoff` that never got a repository.
pub async fn empty_auto_collections(db: &Db, cutoff: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar(
        "SELECT name FROM collections WHERE auto_created = 1 AND created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.collection_id = collections.id) ORDER BY name",
    )
    .bind(cutoff)
    .fetch_all(&db.pool)
    .await
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

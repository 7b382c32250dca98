//! Manifests (stored byte-exact), what they reference, and tags.

use super::{Db, DbError, now};

#[derive(Clone, Debug)]
pub struct ManifestRow {
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// A manifest to store, with what it references and the tags to point at it.
pub struct NewManifest<'a> {
    pub repo_id: i64,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub content: &'a [u8],
    pub artifact_type: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub annotations: Option<&'a str>,
    /// Config and layers: must be linked in the repository.
    pub blobs: &'a [String],
    /// Index entries: must be manifests of the repository.
    pub manifests: &'a [String],
    pub tags: &'a [String],
    /// Those of `tags` that may point here if new, but never move from another manifest.
    pub immutable_tags: &'a [String],
}

/// What [`put`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// A referenced blob or child manifest is gone; nothing was stored.
    MissingReference(String),
    /// An immutable tag points at another manifest; nothing was stored.
    TagImmutable(String),
}

pub async fn get(db: &Db, repo_id: i64, digest: &str) -> Result<Option<ManifestRow>, DbError> {
    let row: Option<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT digest, media_type, content FROM manifests WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(digest, media_type, content)| ManifestRow { digest, media_type, content }))
}

pub async fn exists(db: &Db, repo_id: i64, digest: &str) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manifests WHERE repo_id = $1 AND digest = $2")
        .bind(repo_id)
        .bind(digest)
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

/// Stores the manifest, its references and tags in one transaction. Storing the same
/// digest twice keeps the first copy (the bytes are identical by construction) and
/// refreshes its `created_at`, the time garbage collection judges it by.
///
/// Every blob link and child manifest it references is refreshed in the same transaction,
/// which is also the final check that they exist: a collection pass that removed one first
/// makes this return `Some(digest)` of the missing reference, and nothing is stored; one that
/// comes after sees the reference (see `crate::registry::gc`).
pub async fn put(db: &Db, m: &NewManifest<'_>) -> Result<Put, DbError> {
    let t = now();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO manifests (repo_id, digest, media_type, content, size, artifact_type, subject, annotations, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = excluded.created_at",
    )
    .bind(m.repo_id)
    .bind(m.digest)
    .bind(m.media_type)
    .bind(m.content)
    .bind(m.content.len() as i64)
    .bind(m.artifact_type)
    .bind(m.subject)
    .bind(m.annotations)
    .bind(t)
    .execute(&mut *tx)
    .await?;
    let touch_blob = "UPDATE repo_blobs SET created_at = $3 WHERE repo_id = $1 AND digest = $2 \
                      AND EXISTS (SELECT 1 FROM blobs b WHERE b.digest = $2 AND b.lost_at IS NULL)";
    let touch_manifest = "UPDATE manifests SET created_at = $3 WHERE repo_id = $1 AND digest = $2";
    let children = m.blobs.iter().map(|d| (d, touch_blob)).chain(m.manifests.iter().map(|d| (d, touch_manifest)));
    for (child, touch) in children {
        let r = sqlx::query(touch).bind(m.repo_id).bind(child).bind(t).execute(&mut *tx).await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Put::MissingReference(child.clone()));
        }
        sqlx::query(
            "INSERT INTO manifest_refs (repo_id, manifest_digest, child_digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(m.repo_id)
        .bind(m.digest)
        .bind(child)
        .execute(&mut *tx)
        .await?;
    }
    for tag in m.tags {
        // An immutable tag is only (re)written where it already points here: decided by
        // this one statement, so two pushes racing for a new immutable tag cannot both win.
        let only_same = if m.immutable_tags.contains(tag) { " WHERE tags.digest = excluded.digest" } else { "" };
        let r = sqlx::query(&format!(
            "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at\
             {only_same}"
        ))
        .bind(m.repo_id)
        .bind(tag)
        .bind(m.digest)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Put::TagImmutable(tag.clone()));
        }
    }
    tx.commit().await?;
    Ok(Put::Stored)
}

/// The tags pointing at a manifest.
pub async fn tags_of(db: &Db, repo_id: i64, digest: &str) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar("SELECT name FROM tags WHERE repo_id = $1 AND digest = $2 ORDER BY name")
        .bind(repo_id)
        .bind(digest)
        .fetch_all(&db.pool)
        .await
}

/// Deletes a manifest and (by cascade) its tags and references.
pub async fn delete(db: &Db, repo_id: i64, digest: &str) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND digest = $2")
        .bind(repo_id)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2")
        .bind(repo_id)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
    let r = sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
        .bind(repo_id)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

pub async fn delete_tag(db: &Db, repo_id: i64, tag: &str) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND name = $2")
        .bind(repo_id)
        .bind(tag)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Tags after `last` in byte order, at most `n`.
pub async fn tags(db: &Db, repo_id: i64, last: &str, n: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar("SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3")
        .bind(repo_id)
        .bind(last)
        .bind(n)
        .fetch_all(&db.pool)
        .await
}

/// A manifest that names another as its subject.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ReferrerRow {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    /// The manifest's `annotations`, as JSON text.
    pub annotations: Option<String>,
}

/// The manifests of a repository whose subject is `subject`, by digest.
pub async fn referrers(db: &Db, repo_id: i64, subject: &str) -> Result<Vec<ReferrerRow>, DbError> {
    sqlx::query_as(
        "SELECT digest, media_type, size, artifact_type, annotations FROM manifests \
         WHERE repo_id = $1 AND subject = $2 ORDER BY digest",
    )
    .bind(repo_id)
    .bind(subject)
    .fetch_all(&db.pool)
    .await
}

/// What one query finds for a manifest read: whether the repository exists (and when its
/// collection was created), and the manifest if it does.
pub enum Lookup {
    NoRepository,
    /// The repository exists in a collection created at `collection_created`.
    Repository {
        collection_created: i64,
        manifest: Option<ManifestRow>,
    },
}

/// The repository `name` and its manifest by tag or by digest, in one round trip (the hot
/// path of every pull: manifest GET and HEAD).
pub async fn lookup(db: &Db, name: &str, tag: Option<&str>, digest: Option<&str>) -> Result<Lookup, DbError> {
    type Row = (i64, Option<String>, Option<String>, Option<Vec<u8>>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.created_at, m.digest, m.media_type, m.content \
         FROM repositories r JOIN collections c ON c.id = r.collection_id \
         LEFT JOIN tags t ON t.repo_id = r.id AND t.name = $2 \
         LEFT JOIN manifests m ON m.repo_id = r.id AND m.digest = COALESCE(t.digest, $3) \
         WHERE r.name = $1",
    )
    .bind(name)
    .bind(tag)
    .bind(digest)
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        None => Lookup::NoRepository,
        Some((collection_created, digest, media_type, content)) => Lookup::Repository {
            collection_created,
            manifest: match (digest, media_type, content) {
                (Some(digest), Some(media_type), Some(content)) => Some(ManifestRow { digest, media_type, content }),
                _ => None,
            },
        },
    })
}

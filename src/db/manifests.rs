//! Manifests (stored byte-exact), what they reference, and tags.

use sqlx::AnyConnection;

use super::{Db, DbError};

#[derive(Clone, Debug)]
pub struct ManifestRow {
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// A manifest to store, with what it references and the tags to point at it.
pub struct NewManifest {
    pub repo_id: i64,
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    pub annotations: Option<String>,
    /// Config and layers: must be linked in the repository.
    pub blobs: Vec<String>,
    /// Index entries: must be manifests of the repository.
    pub manifests: Vec<String>,
    pub tags: Vec<String>,
    /// Those of `tags` that may point here if new, but never move from another manifest.
    pub immutable_tags: Vec<String>,
}

/// What storing a manifest did ([`super::writer::Write::Put`]).
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

/// A manifest's rows, inside the caller's transaction (see [`super::writer::Write::Put`] for what
/// [`Put`] promises). On anything but [`Put::Stored`] the caller rolls back.
pub(super) async fn write(tx: &mut AnyConnection, m: &NewManifest, t: i64) -> Result<Put, DbError> {
    sqlx::query(
        "INSERT INTO manifests (repo_id, digest, media_type, content, size, artifact_type, subject, annotations, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = excluded.created_at",
    )
    .bind(m.repo_id)
    .bind(&m.digest)
    .bind(&m.media_type)
    .bind(&m.content)
    .bind(m.content.len() as i64)
    .bind(m.artifact_type.as_deref())
    .bind(m.subject.as_deref())
    .bind(m.annotations.as_deref())
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
            return Ok(Put::MissingReference(child.clone()));
        }
        sqlx::query(
            "INSERT INTO manifest_refs (repo_id, manifest_digest, child_digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(m.repo_id)
        .bind(&m.digest)
        .bind(child)
        .execute(&mut *tx)
        .await?;
    }
    for tag in &m.tags {
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
        .bind(&m.digest)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(Put::TagImmutable(tag.clone()));
        }
    }
    Ok(Put::Stored)
}

/// The tags pointing at a manifest, by name. Sorted here: asked for `ORDER BY name`, SQLite
/// would walk every tag of the repository in the primary key's order instead of using
/// `tags_digest`.
pub async fn tags_of(db: &Db, repo_id: i64, digest: &str) -> Result<Vec<String>, DbError> {
    let mut tags: Vec<String> = sqlx::query_scalar("SELECT name FROM tags WHERE repo_id = $1 AND digest = $2")
        .bind(repo_id)
        .bind(digest)
        .fetch_all(&db.pool)
        .await?;
    tags.sort_unstable();
    Ok(tags)
}

/// Deletes a manifest with its tags and references, inside the caller's transaction;
/// whether it existed.
pub(super) async fn delete(tx: &mut AnyConnection, repo_id: i64, digest: &str) -> Result<bool, DbError> {
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
    Ok(r.rows_affected() > 0)
}

/// Deletes a tag inside the caller's transaction; whether it existed.
pub(super) async fn delete_tag(tx: &mut AnyConnection, repo_id: i64, tag: &str) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND name = $2")
        .bind(repo_id)
        .bind(tag)
        .execute(&mut *tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Tags after `last` in byte order, at most `n`, joined by commas (a tag has no comma; ""
/// when there are none): one row, because sqlx hands every row over from its connection
/// worker on its own, which made a page of 1,000 tags cost 1,000 hand-offs. `string_agg`
/// is PostgreSQL's and, since 3.44, SQLite's too.
pub async fn tags(db: &Db, repo_id: i64, last: &str, n: i64) -> Result<String, DbError> {
    let joined: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(name, ',' ORDER BY name) FROM          (SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3) page",
    )
    .bind(repo_id)
    .bind(last)
    .bind(n)
    .fetch_one(&db.pool)
    .await?;
    Ok(joined.unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Deleting a manifest, its cascade to tags and the collector's "still tagged" check all
    /// look tags up by digest; without an index that read every tag of the repository.
    #[tokio::test]
    async fn tags_of_a_digest_are_found_through_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        db.migrate().await.unwrap();
        for query in [
            "SELECT name FROM tags WHERE repo_id = 1 AND digest = 'sha256:0'",
            "DELETE FROM tags WHERE repo_id = 1 AND digest = 'sha256:0'",
            "SELECT 1 FROM tags t WHERE t.repo_id = 1 AND t.digest = 'sha256:0'",
        ] {
            let plan = explain(&db, query).await;
            assert!(plan.contains("tags_digest"), "{query}: {plan}");
        }
    }

    /// A database made before `tags_digest` keeps its tags through that migration (SQLite
    /// rebuilds the table), and deleting a manifest still takes its tags along.
    #[tokio::test]
    async fn tags_survive_the_migration_that_indexes_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        // The migrations before 0008, read from the source tree.
        let older = dir.path().join("older");
        std::fs::create_dir(&older).unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().as_ref() < "0008" {
                std::fs::copy(&path, older.join(path.file_name().unwrap())).unwrap();
            }
        }
        sqlx::migrate::Migrator::new(older.as_path()).await.unwrap().run(&db.pool).await.unwrap();
        for sql in [
            "INSERT INTO collections (id, name, private, created_at) VALUES (1, 'c', 0, 0)",
            "INSERT INTO repositories (id, collection_id, name, created_at) VALUES (7, 1, 'c/r', 0)",
            "INSERT INTO manifests (repo_id, digest, media_type, content, size, created_at) VALUES (7, 'sha256:a', 'm', x'7b7d', 2, 0)",
            "INSERT INTO manifests (repo_id, digest, media_type, content, size, created_at) VALUES (7, 'sha256:b', 'm', x'7b7d', 2, 0)",
            "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (7, 'v2', 'sha256:a', 5), (7, 'v1', 'sha256:a', 4), (7, 'x', 'sha256:b', 6)",
        ] {
            sqlx::query(sql).execute(&db.pool).await.unwrap();
        }
        db.migrate().await.unwrap();
        assert_eq!(tags_of(&db, 7, "sha256:a").await.unwrap(), ["v1", "v2"]);
        let updated: i64 = sqlx::query_scalar("SELECT updated_at FROM tags WHERE repo_id = 7 AND name = 'x'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(updated, 6);
        let mut conn = db.pool.acquire().await.unwrap();
        assert!(delete(&mut conn, 7, "sha256:a").await.unwrap());
        drop(conn);
        assert!(tags_of(&db, 7, "sha256:a").await.unwrap().is_empty());
        sqlx::query("DELETE FROM manifests WHERE repo_id = 7 AND digest = 'sha256:b'").execute(&db.pool).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tags").fetch_one(&db.pool).await.unwrap();
        assert_eq!(left, 0, "the cascade from manifests still reaches tags");
    }

    /// SQLite's plan for `query`, its steps joined by "; ".
    async fn explain(db: &Db, query: &str) -> String {
        use sqlx::Row;
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {query}")).fetch_all(&db.pool).await.unwrap();
        rows.iter().map(|r| r.try_get::<String, _>(3).unwrap()).collect::<Vec<_>>().join("; ")
    }
}

//! Repositories. Every lookup also checks that the caller's token was issued after the
//! collection was created, so a token for a deleted-and-recreated collection grants nothing.

use super::{Db, DbError, now};

/// A repository as seen by a token issued at some time.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    Found(i64),
    Absent,
    /// Its collection was created after the token: the token grants nothing there.
    TooNew,
}

/// Resolves a repository for a token issued at `iat`.
pub async fn resolve_for(db: &Db, name: &str, iat: i64) -> Result<Resolved, DbError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT r.id, c.created_at FROM repositories r JOIN collections c ON c.id = r.collection_id WHERE r.name = $1",
    )
    .bind(name)
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        Some((id, created)) if created <= iat => Resolved::Found(id),
        Some(_) => Resolved::TooNew,
        None => Resolved::Absent,
    })
}

/// The repository's id, if it exists in a collection created no later than `iat`.
pub async fn resolve(db: &Db, name: &str, iat: i64) -> Result<Option<i64>, DbError> {
    Ok(match resolve_for(db, name, iat).await? {
        Resolved::Found(id) => Some(id),
        _ => None,
    })
}

/// Resolves the repository, creating it inside its collection if needed. `Absent` when the
/// collection does not exist, `TooNew` when it is newer than the token.
pub async fn ensure(db: &Db, name: &str, collection: &str, iat: i64) -> Result<Resolved, DbError> {
    match resolve_for(db, name, iat).await? {
        Resolved::Absent => {}
        other => return Ok(other),
    }
    sqlx::query(
        "INSERT INTO repositories (collection_id, name, created_at) \
         SELECT c.id, $1, $3 FROM collections c WHERE c.name = $2 AND c.created_at <= $4 \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(collection)
    .bind(now())
    .bind(iat)
    .execute(&db.pool)
    .await?;
    match resolve_for(db, name, iat).await? {
        Resolved::Absent => {
            let newer: Option<i64> = sqlx::query_scalar("SELECT id FROM collections WHERE name = $1")
                .bind(collection)
                .fetch_optional(&db.pool)
                .await?;
            Ok(if newer.is_some() { Resolved::TooNew } else { Resolved::Absent })
        }
        other => Ok(other),
    }
}

/// SQL condition on collection `c`: the user bound as parameter `$user` (e.g. `"$3"`) may
/// pull there (public, or a member directly or through a team).
pub fn user_can_pull(user: &str) -> String {
    format!(
        "c.private = 0 OR EXISTS (SELECT 1 FROM collection_members m WHERE m.collection_id = c.id \
         AND (m.user_id = {user} OR m.team_id IN (SELECT tm.team_id FROM team_members tm WHERE tm.user_id = {user})))"
    )
}

/// Visibility filter for the catalog, derived from the caller's role.
pub enum CatalogScope {
    /// Superusers and admins see every repository.
    All,
    /// A user sees public collections and those where they are a member.
    User(i64),
    /// Anonymous sees public collections.
    Public,
    Nothing,
}

/// Repository names after `last` in byte order, at most `n`, that the scope may pull.
pub async fn catalog(db: &Db, scope: &CatalogScope, last: &str, n: i64) -> Result<Vec<String>, DbError> {
    let base = "SELECT r.name FROM repositories r JOIN collections c ON c.id = r.collection_id WHERE r.name > $1";
    let tail = "ORDER BY r.name LIMIT $2";
    match scope {
        CatalogScope::Nothing => Ok(vec![]),
        CatalogScope::All => sqlx::query_scalar(&format!("{base} {tail}")).bind(last).bind(n).fetch_all(&db.pool).await,
        CatalogScope::Public => {
            sqlx::query_scalar(&format!("{base} AND c.private = 0 {tail}")).bind(last).bind(n).fetch_all(&db.pool).await
        }
        CatalogScope::User(uid) => {
            let visible = user_can_pull("$3");
            sqlx::query_scalar(&format!("{base} AND ({visible}) {tail}"))
                .bind(last)
                .bind(n)
                .bind(uid)
                .fetch_all(&db.pool)
                .await
        }
    }
}

/// Repository names in a collection, sorted.
pub async fn in_collection(db: &Db, collection_id: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar("SELECT name FROM repositories WHERE collection_id = $1 ORDER BY name")
        .bind(collection_id)
        .fetch_all(&db.pool)
        .await
}

/// A repository's tags with what they point at: `(tag, digest, size, updated_at)`.
/// A tag with its manifest's digest and size.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TagRow {
    pub name: String,
    pub digest: String,
    pub size: i64,
    pub updated_at: i64,
}

/// A repository's tags by name.
pub async fn tag_details(db: &Db, repo_id: i64) -> Result<Vec<TagRow>, DbError> {
    sqlx::query_as(
        "SELECT t.name, t.digest, m.size, t.updated_at FROM tags t \
         JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest WHERE t.repo_id = $1 ORDER BY t.name",
    )
    .bind(repo_id)
    .fetch_all(&db.pool)
    .await
}

pub async fn delete(db: &Db, repo_id: i64, name: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM uploads WHERE repo_name = $1").bind(name).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM repositories WHERE id = $1").bind(repo_id).execute(&mut *tx).await?;
    tx.commit().await?;
    db.note_removal();
    Ok(())
}

/// Bytes a repository holds: each blob it links once, plus its manifests.
pub async fn size_bytes(db: &Db, repo_id: i64) -> Result<i64, DbError> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE((SELECT SUM(b.size) FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
           WHERE rb.repo_id = $1 AND b.lost_at IS NULL), 0) \
         + COALESCE((SELECT SUM(m.size) FROM manifests m WHERE m.repo_id = $1), 0) AS BIGINT)",
    )
    .bind(repo_id)
    .fetch_one(&db.pool)
    .await
}

/// Bytes a collection holds: each blob linked in any of its repositories once (a layer
/// shared by several counts once), plus their manifests.
pub async fn collection_size_bytes(db: &Db, collection_id: i64) -> Result<i64, DbError> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE((SELECT SUM(b.size) FROM blobs b WHERE b.lost_at IS NULL AND b.digest IN \
           (SELECT rb.digest FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id \
            WHERE r.collection_id = $1)), 0) \
         + COALESCE((SELECT SUM(m.size) FROM manifests m JOIN repositories r ON r.id = m.repo_id \
            WHERE r.collection_id = $1), 0) AS BIGINT)",
    )
    .bind(collection_id)
    .fetch_one(&db.pool)
    .await
}

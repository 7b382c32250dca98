//! Repositories. Every lookup also checks that the caller's token was issued after the
//! collection was created, so a token for a deleted-and-recreated collection grants nothing.

use super::{Db, DbError, now};

/// The repository's id, if it exists in a collection created no later than `iat`.
pub async fn resolve(db: &Db, name: &str, iat: i64) -> Result<Option<i64>, DbError> {
    sqlx::query_scalar(
        "SELECT r.id FROM repositories r JOIN collections c ON c.id = r.collection_id \
         WHERE r.name = $1 AND c.created_at <= $2",
    )
    .bind(name)
    .bind(iat)
    .fetch_optional(&db.pool)
    .await
}

/// Resolves the repository, creating it inside its collection if needed. `None` when the
/// collection does not exist (or is newer than the token).
pub async fn ensure(
    db: &Db,
    name: &str,
    collection: &str,
    iat: i64,
) -> Result<Option<i64>, DbError> {
    if let Some(id) = resolve(db, name, iat).await? {
        return Ok(Some(id));
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
    resolve(db, name, iat).await
}

/// SQL condition on collection `c`: user `$2` may pull there (public, or a member).
pub const USER_CAN_PULL: &str = "c.private = 0 OR EXISTS (SELECT 1 FROM collection_members m WHERE m.collection_id = c.id \
     AND (m.user_id = $2 OR m.team_id IN (SELECT tm.team_id FROM team_members tm WHERE tm.user_id = $2)))";

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
pub async fn catalog(
    db: &Db,
    scope: &CatalogScope,
    last: &str,
    n: i64,
) -> Result<Vec<String>, DbError> {
    let base = "SELECT r.name FROM repositories r JOIN collections c ON c.id = r.collection_id WHERE r.name > $1";
    let tail = "ORDER BY r.name LIMIT $2";
    match scope {
        CatalogScope::Nothing => Ok(vec![]),
        CatalogScope::All => {
            sqlx::query_scalar(&format!("{base} {tail}"))
                .bind(last)
                .bind(n)
                .fetch_all(&db.pool)
                .await
        }
        CatalogScope::Public => {
            sqlx::query_scalar(&format!("{base} AND c.private = 0 {tail}"))
                .bind(last)
                .bind(n)
                .fetch_all(&db.pool)
                .await
        }
        CatalogScope::User(uid) => {
            let visible = USER_CAN_PULL.replace("$2", "$3");
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
pub async fn tag_details(
    db: &Db,
    repo_id: i64,
) -> Result<Vec<(String, String, i64, i64)>, DbError> {
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
    sqlx::query("DELETE FROM uploads WHERE repo_name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM repositories WHERE id = $1")
        .bind(repo_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

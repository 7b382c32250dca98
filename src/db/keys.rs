//! Token signing keys, shared by every replica through the database.

use super::{Db, DbError, now};

/// A stored key.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub generation: i64,
    pub created_at: i64,
}

/// All keys, oldest generation first.
pub async fn all(db: &Db) -> Result<Vec<KeyRow>, DbError> {
    sqlx::query_as("SELECT kid, pkcs8, generation, created_at FROM signing_keys ORDER BY generation")
        .fetch_all(&db.pool)
        .await
}

/// Which generation a new key takes.
#[derive(Clone, Copy, Debug)]
pub enum Generation {
    /// The first (1): only when there is no key yet (replicas starting together).
    First,
    /// The one after the newest (a rotation).
    Next,
}

/// Stores a key as `generation`; `false` when another key took that generation first (a
/// racing first start or rotation: the unique generation decides). (`WHERE true` keeps
/// SQLite from reading `ON CONFLICT` as part of the `SELECT`.)
pub async fn insert(db: &Db, kid: &str, pkcs8: &[u8], generation: Generation) -> Result<bool, DbError> {
    let sql = match generation {
        Generation::First => {
            "INSERT INTO signing_keys (kid, pkcs8, created_at, generation) VALUES ($1, $2, $3, 1) \
             ON CONFLICT DO NOTHING"
        }
        Generation::Next => {
            "INSERT INTO signing_keys (kid, pkcs8, created_at, generation) \
             SELECT $1, $2, $3, COALESCE(MAX(generation), 0) + 1 FROM signing_keys WHERE true \
             ON CONFLICT DO NOTHING"
        }
    };
    let done = sqlx::query(sql).bind(kid).bind(pkcs8).bind(now()).execute(&db.pool).await?;
    Ok(done.rows_affected() == 1)
}

//! Token signing keys, shared by every replica through the database.

use super::{Db, DbError, now};

/// All keys, oldest first: `(kid, pkcs8 DER)`.
pub async fn all(db: &Db) -> Result<Vec<(String, Vec<u8>)>, DbError> {
    sqlx::query_as("SELECT kid, pkcs8 FROM signing_keys ORDER BY created_at, kid").fetch_all(&db.pool).await
}

pub async fn insert(db: &Db, kid: &str, pkcs8: &[u8]) -> Result<(), DbError> {
    sqlx::query("INSERT INTO signing_keys (kid, pkcs8, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(kid)
        .bind(pkcs8)
        .bind(now())
        .execute(&db.pool)
        .await?;
    Ok(())
}

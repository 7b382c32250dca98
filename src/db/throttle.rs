//! Counters of failed logins (per account and per client address).

use super::{Db, DbError};

/// The latest `blocked_until` among the keys (0 if none).
pub async fn blocked_until(db: &Db, keys: &[String]) -> Result<i64, DbError> {
    let mut until = 0;
    for k in keys {
        let v: Option<i64> = sqlx::query_scalar("SELECT blocked_until FROM login_failures WHERE key = $1")
            .bind(k)
            .fetch_optional(&db.pool)
            .await?;
        until = until.max(v.unwrap_or(0));
    }
    Ok(until)
}

/// Counts one failure for `key`, restarting the count once `window` seconds have passed,
/// and returns the new count.
pub async fn record_failure(db: &Db, key: &str, now: i64, window: i64) -> Result<i64, DbError> {
    sqlx::query_scalar(
        "INSERT INTO login_failures (key, failures, first_at, blocked_until) VALUES ($1, 1, $2, 0) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_failures.first_at < $2 - $3 THEN 1 ELSE login_failures.failures + 1 END, \
           first_at = CASE WHEN login_failures.first_at < $2 - $3 THEN $2 ELSE login_failures.first_at END \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(window)
    .fetch_one(&db.pool)
    .await
}

pub async fn block(db: &Db, key: &str, until: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE login_failures SET blocked_until = $2 WHERE key = $1")
        .bind(key)
        .bind(until)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn clear(db: &Db, key: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(key).execute(&db.pool).await?;
    Ok(())
}

//! Counters of failed logins (per account and per client address).

use super::{Db, DbError};

/// What the failure counters say about a login attempt.
#[derive(Debug, Default)]
pub struct ThrottleState {
    /// The latest `blocked_until` among the keys (0 if none).
    pub blocked_until: i64,
    /// Whether the first key (the account) has failures recorded, to clear on success.
    pub account_failures: bool,
}

/// Reads the counters of `keys` (the account's first) in one query.
pub async fn state(db: &Db, keys: &[String]) -> Result<ThrottleState, DbError> {
    let Some(account) = keys.first() else { return Ok(ThrottleState::default()) };
    let other = keys.get(1).unwrap_or(account);
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT key, blocked_until FROM login_failures WHERE key = $1 OR key = $2")
            .bind(account)
            .bind(other)
            .fetch_all(&db.pool)
            .await?;
    Ok(ThrottleState {
        blocked_until: rows.iter().map(|r| r.1).max().unwrap_or(0),
        account_failures: rows.iter().any(|r| &r.0 == account),
    })
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

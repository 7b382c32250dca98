//! Retention and immutable-tag policies of collections (one row per collection that has one).

use super::{Db, DbError, now};

/// A collection's policy as stored; patterns are globs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRow {
    pub keep_newest: Option<i64>,
    pub keep_patterns: Vec<String>,
    pub untagged_after_secs: Option<i64>,
    pub immutable_patterns: Vec<String>,
}

type Raw = (Option<i64>, Option<String>, Option<i64>, Option<String>);

fn patterns(json: Option<String>) -> Vec<String> {
    json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default()
}

fn from_raw((keep_newest, keep, untagged_after_secs, immutable): Raw) -> PolicyRow {
    PolicyRow {
        keep_newest,
        keep_patterns: patterns(keep),
        untagged_after_secs,
        immutable_patterns: patterns(immutable),
    }
}

const COLUMNS: &str = "p.keep_newest, p.keep_patterns, p.untagged_after_secs, p.immutable_patterns";

pub async fn get(db: &Db, collection_id: i64) -> Result<Option<PolicyRow>, DbError> {
    let row: Option<Raw> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM collection_policies p WHERE p.collection_id = $1"))
            .bind(collection_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(from_raw))
}

/// The policy of the collection a repository is in.
pub async fn for_repo(db: &Db, repo_id: i64) -> Result<Option<PolicyRow>, DbError> {
    let row: Option<Raw> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM collection_policies p JOIN repositories r ON r.collection_id = p.collection_id \
         WHERE r.id = $1"
    ))
    .bind(repo_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(from_raw))
}

/// Sets (replaces) a collection's policy; an empty one removes the row.
pub async fn put(db: &Db, collection_id: i64, p: &PolicyRow) -> Result<(), DbError> {
    if *p == PolicyRow::default() {
        sqlx::query("DELETE FROM collection_policies WHERE collection_id = $1")
            .bind(collection_id)
            .execute(&db.pool)
            .await?;
        return Ok(());
    }
    let json = |v: &Vec<String>| (!v.is_empty()).then(|| serde_json::Value::from(v.clone()).to_string());
    sqlx::query(
        "INSERT INTO collection_policies \
         (collection_id, keep_newest, keep_patterns, untagged_after_secs, immutable_patterns, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (collection_id) DO UPDATE SET \
         keep_newest = excluded.keep_newest, keep_patterns = excluded.keep_patterns, \
         untagged_after_secs = excluded.untagged_after_secs, immutable_patterns = excluded.immutable_patterns, \
         updated_at = excluded.updated_at",
    )
    .bind(collection_id)
    .bind(p.keep_newest)
    .bind(json(&p.keep_patterns))
    .bind(p.untagged_after_secs)
    .bind(json(&p.immutable_patterns))
    .bind(now())
    .execute(&db.pool)
    .await?;
    Ok(())
}

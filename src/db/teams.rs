//! Teams and their members.

use super::{Db, DbError, now};

#[derive(Clone, Debug)]
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub owner: String,
}

pub async fn insert(db: &Db, name: &str, owner_id: i64) -> Result<i64, DbError> {
    sqlx::query_scalar("INSERT INTO teams (name, owner_id, created_at) VALUES ($1, $2, $3) RETURNING id")
        .bind(name)
        .bind(owner_id)
        .bind(now())
        .fetch_one(&db.pool)
        .await
}

pub async fn by_name(db: &Db, name: &str) -> Result<Option<TeamRow>, DbError> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT t.id, t.name, u.username FROM teams t JOIN users u ON u.id = t.owner_id WHERE t.name = $1",
    )
    .bind(name)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(id, name, owner)| TeamRow { id, name, owner }))
}

/// Teams after `last`, at most `n`; with `member`, only those the user owns or belongs to.
pub async fn list(db: &Db, member: Option<i64>, last: &str, n: i64) -> Result<Vec<TeamRow>, DbError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT t.id, t.name, u.username FROM teams t JOIN users u ON u.id = t.owner_id \
         WHERE t.name > $1 AND ($3 IS NULL OR t.owner_id = $3 \
               OR EXISTS (SELECT 1 FROM team_members tm WHERE tm.team_id = t.id AND tm.user_id = $3)) \
         ORDER BY t.name LIMIT $2",
    )
    .bind(last)
    .bind(n)
    .bind(member)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(id, name, owner)| TeamRow { id, name, owner }).collect())
}

pub async fn members(db: &Db, team_id: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar(
        "SELECT u.username FROM team_members tm JOIN users u ON u.id = tm.user_id WHERE tm.team_id = $1 ORDER BY u.username",
    )
    .bind(team_id)
    .fetch_all(&db.pool)
    .await
}

pub async fn add_member(db: &Db, team_id: i64, user_id: i64) -> Result<(), DbError> {
    sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(team_id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn remove_member(db: &Db, team_id: i64, user_id: i64) -> Result<bool, DbError> {
    let r = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
        .bind(team_id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn set_owner(db: &Db, team_id: i64, owner_id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE teams SET owner_id = $2 WHERE id = $1").bind(team_id).bind(owner_id).execute(&db.pool).await?;
    Ok(())
}

pub async fn delete(db: &Db, team_id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM collection_members WHERE team_id = $1").bind(team_id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM team_members WHERE team_id = $1").bind(team_id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM teams WHERE id = $1").bind(team_id).execute(&mut *tx).await?;
    tx.commit().await
}

/// Collections where removing this team would leave no owner.
pub async fn sole_owner_of(db: &Db, team_id: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar(
        "SELECT c.name FROM collections c JOIN collection_members m ON m.collection_id = c.id \
         WHERE m.team_id = $1 AND m.role = 'owner' \
           AND (SELECT COUNT(*) FROM collection_members o WHERE o.collection_id = c.id AND o.role = 'owner') = 1",
    )
    .bind(team_id)
    .fetch_all(&db.pool)
    .await
}

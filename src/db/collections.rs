//! Collections and their membership, as the permission rules need them.

use super::{Db, DbError, is_unique_violation, now};
use crate::auth::rules::Membership;

/// A collection as seen by one user.
#[derive(Clone, Debug)]
pub struct CollectionView {
    pub id: i64,
    pub private: bool,
    pub created_at: i64,
    /// The user's strongest role, directly or through a team.
    pub membership: Option<Membership>,
}

/// Looks up a collection and the given user's role in it, in one query.
pub async fn view(
    db: &Db,
    name: &str,
    user_id: Option<i64>,
) -> Result<Option<CollectionView>, DbError> {
    let row: Option<(i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT c.id, c.private, c.created_at, \
           (SELECT MIN(CASE m.role WHEN 'owner' THEN 0 ELSE 1 END) FROM collection_members m \
             WHERE m.collection_id = c.id \
               AND (m.user_id = $2 OR m.team_id IN (SELECT tm.team_id FROM team_members tm WHERE tm.user_id = $2))) \
         FROM collections c WHERE c.name = $1",
    )
    .bind(name)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(id, private, created_at, rank)| CollectionView {
        id,
        private: private != 0,
        created_at,
        membership: match rank {
            Some(0) => Some(Membership::Owner),
            Some(_) => Some(Membership::Contributor),
            None => None,
        },
    }))
}

/// Creates a collection with `owner` as its only owner, atomically. Returns false when
/// the name was taken (a lost race), in which case nothing was written.
pub async fn create_with_owner(
    db: &Db,
    name: &str,
    private: bool,
    auto: bool,
    owner: i64,
) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let inserted: Result<Option<i64>, DbError> = sqlx::query_scalar(
        "INSERT INTO collections (name, private, auto_created, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(private as i64)
    .bind(auto as i64)
    .bind(now())
    .fetch_optional(&mut *tx)
    .await;
    let id = match inserted {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(false),
        Err(e) if is_unique_violation(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    sqlx::query(
        "INSERT INTO collection_members (collection_id, user_id, role) VALUES ($1, $2, 'owner')",
    )
    .bind(id)
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

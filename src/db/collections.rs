//! Collections and their membership, as the permission rules need them.

use super::{
    Db, DbError, is_unique_violation, now,
    repos::{CatalogScope, user_can_pull},
};
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
pub async fn view(db: &Db, name: &str, user_id: Option<i64>) -> Result<Option<CollectionView>, DbError> {
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
pub async fn create_with_owner(db: &Db, name: &str, private: bool, auto: bool, owner: i64) -> Result<bool, DbError> {
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
    sqlx::query("INSERT INTO collection_members (collection_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// A collection in a listing.
#[derive(Clone, Debug)]
pub struct CollectionListed {
    pub name: String,
    pub private: bool,
}

/// Collections after `last` that the scope may see, by name.
pub async fn list(db: &Db, scope: &CatalogScope, last: &str, n: i64) -> Result<Vec<CollectionListed>, DbError> {
    let base = "SELECT c.name, c.private FROM collections c WHERE c.name > $1";
    let tail = "ORDER BY c.name LIMIT $2";
    let rows: Vec<(String, i64)> = match scope {
        CatalogScope::Nothing => vec![],
        CatalogScope::All => sqlx::query_as(&format!("{base} {tail}")).bind(last).bind(n).fetch_all(&db.pool).await?,
        CatalogScope::Public => {
            sqlx::query_as(&format!("{base} AND c.private = 0 {tail}")).bind(last).bind(n).fetch_all(&db.pool).await?
        }
        CatalogScope::User(uid) => {
            let visible = user_can_pull("$3");
            sqlx::query_as(&format!("{base} AND ({visible}) {tail}"))
                .bind(last)
                .bind(n)
                .bind(uid)
                .fetch_all(&db.pool)
                .await?
        }
    };
    Ok(rows.into_iter().map(|(name, p)| CollectionListed { name, private: p != 0 }).collect())
}

/// Whether a member is a user or a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Team,
}

impl MemberKind {
    /// Its name on the wire (`{"user": …}` or `{"team": …}`).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Team => "team",
        }
    }
}

/// A collection member as listed.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub kind: MemberKind,
    pub name: String,
    pub role: Membership,
}

/// A collection's members: users first, then teams, each by name.
pub async fn members(db: &Db, id: i64) -> Result<Vec<MemberRow>, DbError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT 'user', u.username, m.role FROM collection_members m JOIN users u ON u.id = m.user_id WHERE m.collection_id = $1 \
         UNION ALL \
         SELECT 'team', t.name, m.role FROM collection_members m JOIN teams t ON t.id = m.team_id WHERE m.collection_id = $1 \
         ORDER BY 1 DESC, 2",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, name, role)| MemberRow {
            kind: if kind == "team" { MemberKind::Team } else { MemberKind::User },
            name,
            role: Membership::parse(&role).unwrap_or(Membership::Contributor),
        })
        .collect())
}

pub async fn set_private(db: &Db, id: i64, private: bool) -> Result<(), DbError> {
    sqlx::query("UPDATE collections SET private = $2, auto_created = 0 WHERE id = $1")
        .bind(id)
        .bind(private as i64)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Deletes a collection and, by cascade, its repositories, manifests, tags and links.
/// Blob bytes stay for garbage collection.
pub async fn delete(db: &Db, id: i64, name: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM uploads WHERE repo_name = $1 OR repo_name LIKE $2")
        .bind(name)
        .bind(format!("{name}/%"))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM collections WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    db.note_removal();
    Ok(())
}

/// Which kind of member a membership row names.
#[derive(Clone, Copy, Debug)]
pub enum Member {
    User(i64),
    Team(i64),
}

impl Member {
    fn column(self) -> (&'static str, i64) {
        match self {
            Member::User(id) => ("user_id", id),
            Member::Team(id) => ("team_id", id),
        }
    }
}

/// Sets a member's role, refusing (false) when that would leave the collection without
/// an owner. Runs in one transaction so two concurrent demotions cannot both pass.
pub async fn put_member(db: &Db, coll: i64, member: Member, role: Membership) -> Result<bool, DbError> {
    let (col, id) = member.column();
    let mut tx = db.begin().await?;
    lock_collection(&mut tx, coll).await?;
    sqlx::query(&format!("DELETE FROM collection_members WHERE collection_id = $1 AND {col} = $2"))
        .bind(coll)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("INSERT INTO collection_members (collection_id, {col}, role) VALUES ($1, $2, $3)"))
        .bind(coll)
        .bind(id)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
    if owner_count(&mut tx, coll).await? == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Removes a member. `Ok(None)` if not a member, `Ok(Some(false))` if it is the last owner.
pub async fn remove_member(db: &Db, coll: i64, member: Member) -> Result<Option<bool>, DbError> {
    let (col, id) = member.column();
    let mut tx = db.begin().await?;
    lock_collection(&mut tx, coll).await?;
    let r = sqlx::query(&format!("DELETE FROM collection_members WHERE collection_id = $1 AND {col} = $2"))
        .bind(coll)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    if owner_count(&mut tx, coll).await? == 0 {
        tx.rollback().await?;
        return Ok(Some(false));
    }
    tx.commit().await?;
    Ok(Some(true))
}

/// Serialises membership changes of one collection: a no-op write takes the row lock on
/// PostgreSQL (and the write lock on SQLite), so the owner count cannot race.
async fn lock_collection(tx: &mut super::Tx<'_>, coll: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE collections SET id = id WHERE id = $1").bind(coll).execute(&mut **tx).await?;
    Ok(())
}

async fn owner_count(tx: &mut super::Tx<'_>, coll: i64) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM collection_members WHERE collection_id = $1 AND role = 'owner'")
        .bind(coll)
        .fetch_one(&mut **tx)
        .await
}

//! Users and teams that come from a directory (`directory_users`, `directory_teams`): the
//! local copy of a directory account, and the teams made from its groups, whose
//! membership is written only here, at each login of a member.

use std::collections::HashSet;

use sqlx::Row;

use super::{
    Db, DbError, Tx, is_unique_violation, now,
    users::{USER_COLS, UserRow, user_from_row},
};
use crate::auth::rules::AccountRole;

/// How the `password_hash` of a directory user starts: not a PHC string, so no password
/// matches it. A random suffix makes it unique, so the credential cache (which checks
/// the hash an entry was verified against) never mistakes one such user for another.
pub const NO_LOCAL_PASSWORD: &str = "!directory";

/// A directory account as the last sync saw it.
#[derive(Clone, Debug)]
pub struct Account<'a> {
    /// The directory kind (`ldap`, `oidc:{provider}`).
    pub source: &'a str,
    pub username: &'a str,
    /// The entry's DN, or the OpenID subject.
    pub external_id: &'a str,
    /// The external id never changes for an account (an OpenID `sub`; a DN may be
    /// renamed): another one under the same user name is another person.
    pub stable_id: bool,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub role: AccountRole,
}

/// What the database knows of a directory user.
#[derive(Clone, Debug)]
pub struct Link {
    pub source: String,
    pub external_id: String,
    pub checked_at: i64,
}

pub async fn link(db: &Db, user_id: i64) -> Result<Option<Link>, DbError> {
    let row = sqlx::query("SELECT source, external_id, checked_at FROM directory_users WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| Ok(Link { source: r.try_get(0)?, external_id: r.try_get(1)?, checked_at: r.try_get(2)? })).transpose()
}

/// A directory group the user is in, and the team name it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupTeam {
    pub external_id: String,
    pub name: String,
}

/// What a sync did.
#[derive(Debug)]
pub enum Synced {
    /// The local user as it is now, and the groups skipped because a hand-made team (or
    /// another group's team) holds their team name.
    User(UserRow, Vec<String>),
    /// A local (non-directory) account holds the name: it is never taken over.
    LocalAccount,
    /// Another directory or provider (or, for a stable id, another account of the same
    /// one) holds the name: it is never taken over either.
    OtherAccount,
}

/// Creates or updates the local user of a directory account, stamps it checked now, and
/// makes its membership of `source`'s managed teams exactly `groups` (creating the teams
/// not seen before, owned by this user), all in one transaction.
pub async fn sync(db: &Db, a: &Account<'_>, groups: &[GroupTeam]) -> Result<Synced, DbError> {
    // Two first logins of one user may race on the unique name (PostgreSQL); the loser
    // finds the winner's row on its next try.
    for _ in 0..2 {
        match try_sync(db, a, groups).await {
            Err(e) if is_unique_violation(&e) => continue,
            Ok(None) => continue,
            Ok(Some(done)) => return Ok(done),
            Err(e) => return Err(e),
        }
    }
    try_sync(db, a, groups).await?.ok_or_else(|| DbError::Protocol("directory user sync kept racing".into()))
}

/// One attempt; `None` when another login created the user meanwhile. The first statement
/// writes, so on SQLite the transaction holds the write lock from its start (a transaction
/// that reads first and writes later fails with SQLITE_BUSY when another wrote between).
async fn try_sync(db: &Db, a: &Account<'_>, groups: &[GroupTeam]) -> Result<Option<Synced>, DbError> {
    let t = now();
    let mut tx = db.begin().await?;
    let updated: Option<i64> =
        sqlx::query_scalar("UPDATE users SET role = $2 WHERE username = $1 AND password_hash LIKE $3 RETURNING id")
            .bind(a.username)
            .bind(a.role.as_str())
            .bind(format!("{NO_LOCAL_PASSWORD}%"))
            .fetch_optional(&mut *tx)
            .await?;
    let id = match updated {
        Some(id) => {
            let linked = sqlx::query("SELECT source, external_id FROM directory_users WHERE user_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = linked {
                let (source, external_id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                if source != a.source || (a.stable_id && external_id != a.external_id) {
                    // Dropping the transaction undoes the role update.
                    return Ok(Some(Synced::OtherAccount));
                }
            }
            id
        }
        None => {
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, role, active, created_at, password_changed_at) \
                 VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (username) DO NOTHING RETURNING id",
            )
            .bind(a.username)
            .bind(format!("{NO_LOCAL_PASSWORD}:{}", uuid::Uuid::new_v4().simple()))
            .bind(a.role.as_str())
            .bind(t)
            .fetch_optional(&mut *tx)
            .await?;
            match inserted {
                Some(id) => id,
                None => {
                    let hash: Option<String> =
                        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
                            .bind(a.username)
                            .fetch_optional(&mut *tx)
                            .await?;
                    return Ok(match hash {
                        Some(h) if !h.starts_with(NO_LOCAL_PASSWORD) => Some(Synced::LocalAccount),
                        _ => None,
                    });
                }
            }
        }
    };
    sqlx::query(
        "INSERT INTO directory_users (user_id, source, external_id, email, display_name, checked_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (user_id) DO UPDATE SET source = $2, external_id = $3, email = $4, display_name = $5, \
         checked_at = $6",
    )
    .bind(id)
    .bind(a.source)
    .bind(a.external_id)
    .bind(a.email)
    .bind(a.display_name)
    .bind(t)
    .execute(&mut *tx)
    .await?;
    let skipped = set_teams(&mut tx, a.source, id, groups).await?;
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1")).bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some(Synced::User(user_from_row(&row)?, skipped)))
}

/// The managed team of a group: found by the group's DN, else created under its name;
/// `None` when that name is taken by a team of no (or another) group.
async fn group_team(tx: &mut Tx<'static>, source: &str, user_id: i64, g: &GroupTeam) -> Result<Option<i64>, DbError> {
    let find = "SELECT team_id FROM directory_teams WHERE source = $1 AND external_id = $2";
    if let Some(id) = sqlx::query_scalar(find).bind(source).bind(&g.external_id).fetch_optional(&mut **tx).await? {
        return Ok(Some(id));
    }
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO teams (name, owner_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(&g.name)
    .bind(user_id)
    .bind(now())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = created else {
        // Another login may have made this group's team meanwhile (PostgreSQL: the insert
        // waited for it); a fresh statement sees it.
        return sqlx::query_scalar(find).bind(source).bind(&g.external_id).fetch_optional(&mut **tx).await;
    };
    sqlx::query("INSERT INTO directory_teams (team_id, source, external_id) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(source)
        .bind(&g.external_id)
        .execute(&mut **tx)
        .await?;
    Ok(Some(id))
}

/// Sets the user's membership of `source`'s managed teams to exactly `groups`.
async fn set_teams(
    tx: &mut Tx<'static>,
    source: &str,
    user_id: i64,
    groups: &[GroupTeam],
) -> Result<Vec<String>, DbError> {
    let mut keep = HashSet::new();
    let mut skipped = Vec::new();
    for g in groups {
        let Some(id) = group_team(tx, source, user_id, g).await? else {
            skipped.push(g.name.clone());
            continue;
        };
        sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        keep.insert(id);
    }
    let current: Vec<i64> = sqlx::query_scalar(
        "SELECT tm.team_id FROM team_members tm JOIN directory_teams d ON d.team_id = tm.team_id \
         WHERE tm.user_id = $1 AND d.source = $2",
    )
    .bind(user_id)
    .bind(source)
    .fetch_all(&mut **tx)
    .await?;
    for id in current.into_iter().filter(|id| !keep.contains(id)) {
        sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(skipped)
}

/// The directory that manages a team's members, if any.
pub async fn team_source(db: &Db, team_id: i64) -> Result<Option<String>, DbError> {
    sqlx::query_scalar("SELECT source FROM directory_teams WHERE team_id = $1")
        .bind(team_id)
        .fetch_optional(&db.pool)
        .await
}

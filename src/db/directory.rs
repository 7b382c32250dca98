//! Users and teams that come from a directory (`directory_users`, `directory_teams`): the
//! local copy of a directory account, and the teams made from its groups, whose
//! membership is written only here, at each login of a member.

use std::collections::HashSet;

use sqlx::Row;

use super::{
    Db, DbError, is_unique_violation, now,
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
    /// The directory kind (`ldap`).
    pub source: &'a str,
    pub username: &'a str,
    /// The entry's DN.
    pub external_id: &'a str,
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

/// Creates or updates the local user of a directory account and stamps it checked now.
/// `None` when a local (non-directory) account holds the name: it is never taken over.
pub async fn upsert_user(db: &Db, a: &Account<'_>) -> Result<Option<UserRow>, DbError> {
    // Two first logins of one user race on the unique name; the loser updates.
    for _ in 0..2 {
        match try_upsert_user(db, a).await {
            Err(e) if is_unique_violation(&e) => continue,
            other => return other,
        }
    }
    try_upsert_user(db, a).await
}

async fn try_upsert_user(db: &Db, a: &Account<'_>) -> Result<Option<UserRow>, DbError> {
    let t = now();
    let mut tx = db.pool.begin().await?;
    let existing = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE username = $1"))
        .bind(a.username)
        .fetch_optional(&mut *tx)
        .await?;
    let id = match existing.as_ref().map(user_from_row).transpose()? {
        Some(u) if !u.password_hash.starts_with(NO_LOCAL_PASSWORD) => return Ok(None),
        Some(u) => {
            sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
                .bind(u.id)
                .bind(a.role.as_str())
                .execute(&mut *tx)
                .await?;
            u.id
        }
        None => {
            sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, role, active, created_at, password_changed_at) \
                 VALUES ($1, $2, $3, 1, $4, $4) RETURNING id",
            )
            .bind(a.username)
            .bind(format!("{NO_LOCAL_PASSWORD}:{}", uuid::Uuid::new_v4().simple()))
            .bind(a.role.as_str())
            .bind(t)
            .fetch_one(&mut *tx)
            .await?
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
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1")).bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    user_from_row(&row).map(Some)
}

/// A directory group the user is in, and the team name it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupTeam {
    pub external_id: String,
    pub name: String,
}

/// Makes the user's membership of `source`'s managed teams exactly `groups`, creating the
/// teams that do not exist yet (owned by this user). A group whose team name a hand-made
/// team (or another group's team) already holds is skipped; its name is returned.
pub async fn set_teams(db: &Db, source: &str, user_id: i64, groups: &[GroupTeam]) -> Result<Vec<String>, DbError> {
    let mut tx = db.pool.begin().await?;
    let mut keep = HashSet::new();
    let mut skipped = Vec::new();
    for g in groups {
        let mut team: Option<i64> =
            sqlx::query_scalar("SELECT team_id FROM directory_teams WHERE source = $1 AND external_id = $2")
                .bind(source)
                .bind(&g.external_id)
                .fetch_optional(&mut *tx)
                .await?;
        if team.is_none() {
            team = sqlx::query_scalar(
                "INSERT INTO teams (name, owner_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(&g.name)
            .bind(user_id)
            .bind(now())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = team else {
                skipped.push(g.name.clone());
                continue;
            };
            sqlx::query("INSERT INTO directory_teams (team_id, source, external_id) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(source)
                .bind(&g.external_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(id) = team {
            sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            keep.insert(id);
        }
    }
    let current: Vec<i64> = sqlx::query_scalar(
        "SELECT tm.team_id FROM team_members tm JOIN directory_teams d ON d.team_id = tm.team_id \
         WHERE tm.user_id = $1 AND d.source = $2",
    )
    .bind(user_id)
    .bind(source)
    .fetch_all(&mut *tx)
    .await?;
    for id in current.into_iter().filter(|id| !keep.contains(id)) {
        sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(skipped)
}

/// The directory that manages a team's members, if any.
pub async fn team_source(db: &Db, team_id: i64) -> Result<Option<String>, DbError> {
    sqlx::query_scalar("SELECT source FROM directory_teams WHERE team_id = $1")
        .bind(team_id)
        .fetch_optional(&db.pool)
        .await
}

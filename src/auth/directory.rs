//! Signing in through a directory (`auth.ldap`) and keeping its users and groups in step:
//! a valid directory login creates or updates the local user (role from the configured
//! groups, else `user`; no usable local password), and the user's groups that match
//! `auth.ldap.team_groups` become directory-managed teams whose membership is set at each
//! login, added and removed. `auth.local_logins` decides whether local passwords count.
//!
//! A directory user's verified password is remembered by the credential cache like a
//! local one, but counts only while the directory's last word on the user (a stamp in the
//! database) is younger than `auth.ldap.cache_secs` (default `auth.credential_cache_secs`),
//! so a removal from the directory takes effect within that. API and refresh tokens of a
//! directory user re-check the entry (by DN) once the stamp is older, so they stop working
//! as soon.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use globset::{Glob, GlobSet, GlobSetBuilder};

use super::{
    credentials::{Authenticated, CredentialError},
    ldap::{Entry, Group, Ldap, Unavailable},
    login_cache::CACHE,
    rules::{AccountRole, Role},
    users::valid_username,
};
use crate::{
    config::AuthConfig,
    db::{
        self, Db,
        directory::{Account, GroupTeam, NO_LOCAL_PASSWORD, Synced},
        users::UserRow,
    },
    names::CollectionName,
};

/// The `source` of LDAP users and teams in the database.
const SOURCE: &str = "ldap";

/// The credential cache's key of a login (an HMAC of name and password).
type Key = [u8; 32];
/// A directory check several logins wait for (the error as text, to be shareable).
type Check = Shared<BoxFuture<'static, Result<Option<Entry>, String>>>;

/// Directory checks in progress: concurrent logins with the same name and password (a
/// client pushing layers in parallel) share one bind, as they share one argon2 run for
/// local accounts.
#[derive(Default)]
struct Flights(Mutex<HashMap<Key, Check>>);

/// Removes its flight however the waiting login ends (also when its request is dropped).
struct FlightGuard<'a> {
    flights: &'a Flights,
    key: Key,
    check: Check,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.flights.0.lock()
            && map.get(&self.key).is_some_and(|c| c.ptr_eq(&self.check))
        {
            map.remove(&self.key);
        }
    }
}

/// How berth signs people in: the directory if one is configured, and whether local
/// passwords count.
pub struct Directory {
    ldap: Option<Arc<Ldap>>,
    flights: Flights,
    local_logins: bool,
    /// Seconds a directory check stays good: for a remembered password, and for API and
    /// refresh tokens (`auth.ldap.cache_secs`, else `auth.credential_cache_secs`).
    recheck_secs: i64,
    rules: GroupRules,
}

/// What a directory's or provider's groups mean here: which become directory-managed
/// teams (globs on the name), and which grant the roles `admin` and `superuser`.
pub struct GroupRules {
    team_groups: GlobSet,
    admin_groups: Vec<String>,
    superuser_groups: Vec<String>,
}

/// No secrets: the LDAP settings (with the bind password) are left out.
impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("ldap", &self.ldap.is_some())
            .field("local_logins", &self.local_logins)
            .field("recheck_secs", &self.recheck_secs)
            .finish_non_exhaustive()
    }
}

impl Directory {
    pub fn new(auth: &AuthConfig) -> anyhow::Result<Directory> {
        let l = &auth.ldap;
        Ok(Directory {
            ldap: Ldap::new(l)?.map(Arc::new),
            flights: Flights::default(),
            local_logins: auth.local_logins,
            recheck_secs: i64::try_from(l.cache_secs.unwrap_or(auth.credential_cache_secs)).unwrap_or(i64::MAX),
            rules: GroupRules::new(&l.team_groups, &l.admin_groups, &l.superuser_groups)?,
        })
    }

    /// Local accounts only, local passwords accepted.
    pub fn local() -> Directory {
        Directory {
            ldap: None,
            flights: Flights::default(),
            local_logins: true,
            recheck_secs: 0,
            rules: GroupRules::none(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.ldap.is_some()
    }

    pub fn local_logins(&self) -> bool {
        self.local_logins
    }

    /// Checks a password against the directory and syncs the local user and teams.
    pub async fn login(&self, db: &Db, username: &str, password: &str) -> Result<Authenticated, CredentialError> {
        let Some(ldap) = &self.ldap else { return Err(CredentialError::Invalid) };
        let key = CACHE.key(username, password);
        let entry = self.check_once(ldap, key, username, password).await?.ok_or(CredentialError::Invalid)?;
        let user = self.sync(db, &entry).await?;
        CACHE.insert(key, user.id, &user.password_hash);
        authenticated(user)
    }

    /// `ldap.login`, shared by the concurrent logins with the same key.
    async fn check_once(
        &self,
        ldap: &Arc<Ldap>,
        key: Key,
        username: &str,
        password: &str,
    ) -> Result<Option<Entry>, CredentialError> {
        let check = {
            let Ok(mut map) = self.flights.0.lock() else { return Err(CredentialError::Unavailable) };
            map.entry(key)
                .or_insert_with(|| {
                    let (ldap, username, password) = (Arc::clone(ldap), username.to_owned(), password.to_owned());
                    async move {
                        let started = Instant::now();
                        let found = ldap.login(&username, &password).await.map_err(|e| e.0);
                        record("login", &found, started);
                        found
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        let _guard = FlightGuard { flights: &self.flights, key, check: check.clone() };
        check.await.map_err(|e| unavailable(Unavailable(e)))
    }

    /// Whether the directory vouched for this user within the cache lifetime (so a
    /// remembered password still counts).
    pub async fn fresh(&self, db: &Db, user: &UserRow) -> Result<bool, CredentialError> {
        let link = db::directory::link(db, user.id).await?;
        Ok(link.is_some_and(|l| db::now() - l.checked_at < self.recheck_secs))
    }

    /// For a directory user signing in with an API or refresh token: the user as the
    /// directory has it now, re-checked once the last check is older than the cache
    /// lifetime. A local user comes back unchanged.
    pub async fn recheck(&self, db: &Db, user: UserRow) -> Result<UserRow, CredentialError> {
        if !is_directory_user(&user) {
            return Ok(user);
        }
        let Some(link) = db::directory::link(db, user.id).await? else { return Err(CredentialError::Invalid) };
        // An OpenID provider cannot be asked about a user without them (no refresh token
        // is kept): their tokens and sessions count until they expire, are revoked, or the
        // user is deactivated here (docs/oidc.md).
        if link.source.starts_with(super::oidc::SOURCE_PREFIX) {
            return Ok(user);
        }
        if db::now() - link.checked_at < self.recheck_secs {
            return Ok(user);
        }
        let Some(ldap) = self.ldap.as_ref().filter(|_| link.source == SOURCE) else {
            return Err(CredentialError::Invalid);
        };
        let started = Instant::now();
        let found = ldap.lookup(&link.external_id, &user.username).await.map_err(|e| e.0);
        record("recheck", &found, started);
        match found.map_err(|e| unavailable(Unavailable(e)))? {
            Some(entry) => self.sync(db, &entry).await,
            None => {
                tracing::info!(user = user.username, dn = link.external_id, "directory entry is gone; token refused");
                Err(CredentialError::Invalid)
            }
        }
    }

    /// Writes the entry to the local user and its teams.
    async fn sync(&self, db: &Db, entry: &Entry) -> Result<UserRow, CredentialError> {
        sync_entry(db, SOURCE, false, &self.rules, entry).await
    }
}

impl GroupRules {
    pub fn new(team_groups: &[String], admin_groups: &[String], superuser_groups: &[String]) -> anyhow::Result<Self> {
        let mut globs = GlobSetBuilder::new();
        for g in team_groups {
            globs.add(Glob::new(g)?);
        }
        Ok(GroupRules {
            team_groups: globs.build()?,
            admin_groups: admin_groups.to_vec(),
            superuser_groups: superuser_groups.to_vec(),
        })
    }

    /// No teams, no roles.
    pub fn none() -> Self {
        GroupRules { team_groups: GlobSet::empty(), admin_groups: Vec::new(), superuser_groups: Vec::new() }
    }

    /// The highest role the user's groups grant.
    fn role(&self, groups: &[Group]) -> AccountRole {
        let member = |names: &[String]| {
            groups
                .iter()
                .any(|g| names.iter().any(|n| n.eq_ignore_ascii_case(&g.name) || n.eq_ignore_ascii_case(&g.dn)))
        };
        if member(&self.superuser_groups) {
            AccountRole::Superuser
        } else if member(&self.admin_groups) {
            AccountRole::Admin
        } else {
            AccountRole::User
        }
    }

    /// The teams the user's groups map to: those matching `team_groups`, named after the
    /// group in lower case (groups whose name is no valid team name are left out).
    fn teams(&self, groups: &[Group]) -> Vec<GroupTeam> {
        groups
            .iter()
            .filter(|g| self.team_groups.is_match(&g.name))
            .filter_map(|g| {
                let name = g.name.to_lowercase().replace(' ', "-");
                if name.parse::<CollectionName>().is_ok() {
                    Some(GroupTeam { external_id: g.dn.clone(), name })
                } else {
                    tracing::warn!(group = g.dn, "directory group name is not a valid team name; not a team");
                    None
                }
            })
            .collect()
    }
}

/// Writes a directory entry (or an OpenID identity: `dn` is its subject) of `source` to
/// the local user and its teams. `stable_id`: the entry's id never changes, so another id
/// under a known name is another person, refused.
pub async fn sync_entry(
    db: &Db,
    source: &str,
    stable_id: bool,
    rules: &GroupRules,
    entry: &Entry,
) -> Result<UserRow, CredentialError> {
    let username = entry.username.to_lowercase();
    if !valid_username(&username) {
        tracing::warn!(source, id = entry.dn, username, "directory user name is not a valid berth user name; refused");
        return Err(CredentialError::Invalid);
    }
    let account = Account {
        source,
        username: &username,
        external_id: &entry.dn,
        stable_id,
        email: entry.email.as_deref(),
        display_name: entry.display_name.as_deref(),
        role: rules.role(&entry.groups),
    };
    let (user, skipped) = match db::directory::sync(db, &account, &rules.teams(&entry.groups)).await? {
        Synced::User(user, skipped) => (user, skipped),
        Synced::LocalAccount => {
            tracing::warn!(source, username, "a local account holds this directory user's name; login refused");
            return Err(CredentialError::Invalid);
        }
        Synced::OtherAccount => {
            tracing::warn!(source, username, "another directory or account holds this user name; login refused");
            return Err(CredentialError::Invalid);
        }
    };
    if !skipped.is_empty() {
        tracing::warn!(teams = skipped.join(", "), "directory groups whose team name a hand-made team holds");
    }
    Ok(user)
}

/// Whether the user signs in through a directory (and has no local password).
pub fn is_directory_user(user: &UserRow) -> bool {
    user.password_hash.starts_with(NO_LOCAL_PASSWORD)
}

/// Counts a directory check and its duration (`berth_directory_checks_total`).
fn record(kind: &'static str, found: &Result<Option<Entry>, String>, started: Instant) {
    let result = match found {
        Ok(Some(_)) => "ok",
        Ok(None) => "refused",
        Err(_) => "unavailable",
    };
    crate::ops::metrics::directory_check(kind, result, started.elapsed().as_secs_f64());
}

fn unavailable(e: Unavailable) -> CredentialError {
    tracing::error!(error = %e, "directory unavailable");
    CredentialError::Unavailable
}

fn authenticated(user: UserRow) -> Result<Authenticated, CredentialError> {
    if !user.active {
        return Err(CredentialError::Invalid);
    }
    let role = Role::from(user.role);
    Ok(Authenticated { user, role, read_only: false, api_token_id: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> Group {
        Group { dn: format!("cn={name},ou=groups,dc=example,dc=org"), name: name.into() }
    }

    fn directory(team_groups: &[&str], admin: &[&str], superuser: &[&str]) -> GroupRules {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        GroupRules::new(&owned(team_groups), &owned(admin), &owned(superuser)).unwrap()
    }

    #[test]
    fn roles_come_from_groups_by_name_or_dn() {
        let d = directory(&["*"], &["Admins"], &["cn=root,ou=groups,dc=example,dc=org"]);
        assert_eq!(d.role(&[group("devs")]), AccountRole::User);
        assert_eq!(d.role(&[group("devs"), group("admins")]), AccountRole::Admin);
        assert_eq!(d.role(&[group("admins"), group("root")]), AccountRole::Superuser);
        assert_eq!(d.role(&[]), AccountRole::User);
    }

    #[test]
    fn teams_follow_the_globs_and_the_name_grammar() {
        let d = directory(&["team-*", "Ops"], &[], &[]);
        let names: Vec<String> = d
            .teams(&[group("team-a"), group("Ops"), group("other"), group("team-b c"), group("team-Ä")])
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["team-a", "ops", "team-b-c"]);
        assert!(directory(&[], &[], &[]).teams(&[group("a")]).is_empty());
    }
}

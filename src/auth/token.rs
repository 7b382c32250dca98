//! Issuing access tokens: each requested scope is judged by the permission rules against
//! the collection as it stands, creating the collection first when a permitted principal
//! asks to push into one that does not exist (DESIGN §3).

use super::{
    credentials::Authenticated,
    jwt::{AccessEntry, Claims, ISSUER, ResourceType},
    rules::{self, Actions, Collection, Principal, Role},
    scope::Scope,
    service::TokenService,
};
use crate::{
    db::{self, collections},
    names::RepoName,
};

/// A signed token and its claims.
pub struct Issued {
    pub token: String,
    pub claims: Claims,
}

impl TokenService {
    /// The actions granted on `name`, creating its collection when asked to push into a
    /// missing one by someone allowed to create collections. A lost creation race is
    /// judged against the collection that now exists.
    async fn grant_repo(
        &self,
        who: Option<&Authenticated>,
        p: Principal,
        name: &RepoName,
        wanted: Actions,
    ) -> anyhow::Result<Actions> {
        let coll = name.collection();
        let user_id = who.map(|w| w.user.id);
        let mut view = collections::view(&self.db, coll.as_str(), user_id).await?;
        if view.is_none()
            && wanted.contains(Actions::PUSH)
            && rules::may_create_collection(p, self.settings.rules())
            && let Some(w) = who
        {
            collections::create_with_owner(&self.db, coll.as_str(), self.settings.default_private, true, w.user.id)
                .await?;
            view = collections::view(&self.db, coll.as_str(), user_id).await?;
        }
        let c = view.map_or(Collection::ABSENT, |v| Collection {
            exists: true,
            private: v.private,
            membership: v.membership,
        });
        Ok(rules::grant(p, c, self.settings.rules(), wanted))
    }

    /// Issues a token for the principal and scopes. Asking for more than the rules grant
    /// is not an error: the token simply lists less.
    pub async fn issue(&self, who: Option<&Authenticated>, scopes: &[Scope]) -> anyhow::Result<Issued> {
        let p = who.map_or(Principal { role: Role::Anonymous, read_only: false }, Authenticated::principal);
        let mut access: Vec<AccessEntry> = Vec::new();
        for scope in scopes {
            let entry = match scope {
                Scope::Catalog => {
                    AccessEntry { kind: ResourceType::Registry, name: "catalog".into(), actions: vec!["*".into()] }
                }
                Scope::Repository { raw_name, name: None, .. } => {
                    AccessEntry { kind: ResourceType::Repository, name: raw_name.clone(), actions: vec![] }
                }
                Scope::Repository { name: Some(n), actions, .. } => AccessEntry {
                    kind: ResourceType::Repository,
                    name: n.to_string(),
                    actions: self.grant_repo(who, p, n, *actions).await?.names(),
                },
            };
            // One entry per resource: merge repeated scopes for the same name.
            match access.iter_mut().find(|a| a.kind == entry.kind && a.name == entry.name) {
                Some(e) if e.kind == ResourceType::Registry => {}
                Some(e) => e.actions = e.granted().union(entry.granted()).names(),
                None => access.push(entry),
            }
        }
        // Issued after any collection it created, so `iat` is never older than those.
        let now = db::now();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: who.map(|w| w.user.username.clone()).unwrap_or_default(),
            aud: self.settings.service.clone(),
            exp: now + self.settings.token_ttl_secs as i64,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
        };
        let token = self.keys.sign(&claims)?;
        Ok(Issued { token, claims })
    }
}

/// RFC 3339 UTC time for a unix timestamp (for `issued_at`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_779_045), "2026-11-27T11:30:45Z");
    }
}

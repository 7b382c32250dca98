//! Authorizing a Distribution API request from its bearer token alone (DESIGN §4), once,
//! for the needs its [`Endpoint`](super::endpoint::Endpoint) declares: no token or a bad
//! one is 401 with a challenge; a missing entry is 401 `insufficient_scope`; an entry
//! without the action is 403 `DENIED` for a named user and the same 401 for anonymous (so
//! clients prompt for login). What passes becomes an [`Access`], the proof handlers take.

use axum::http::{HeaderMap, header};

use super::{
    endpoint::{Need, Resource, Rule},
    error::OciError,
};
use crate::{
    auth::{
        jwt::{Claims, ResourceType},
        rules::Actions,
    },
    registry::Caller,
    state::App,
};

/// Proof that a request's token grants what its endpoint needs. Only [`Access::authorize`]
/// constructs one, so a handler that takes it cannot have skipped the check.
#[derive(Debug)]
pub struct Access {
    caller: Caller,
    /// Whether every [`Rule::Entry`] need was also granted its actions (a mount's source).
    entries_granted: bool,
}

impl Access {
    /// Who is acting, for the registry.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Whether the token grants the actions of the needs it only had to name (a mount's
    /// source: `pull` there, so the blob may be mounted from it).
    pub fn entries_granted(&self) -> bool {
        self.entries_granted
    }

    /// Checks the request's token against `needs`: the one authorization of the API.
    pub(super) async fn authorize(app: &App, headers: &HeaderMap, needs: &[Need]) -> Result<Access, OciError> {
        let scopes: Vec<String> = needs.iter().map(|n| n.resource.scope(n.actions)).collect();
        let verified = match bearer(headers) {
            Some(t) => app.tokens.verify(t).await,
            None => None,
        };
        let claims = verified.ok_or_else(|| OciError::unauthorized(&challenge(app, &scopes, false)))?;
        crate::ops::context::set_principal(&claims.sub);
        let mut entries_granted = true;
        for need in needs {
            let Some(granted) = granted(&claims, &need.resource) else {
                return Err(OciError::unauthorized(&challenge(app, &scopes, true)));
            };
            let ok = granted.contains(need.actions) || need.or.is_some_and(|alt| granted.contains(alt));
            match need.rule {
                _ if ok => {}
                Rule::Entry => entries_granted = false,
                Rule::Grant if claims.sub.is_empty() => {
                    return Err(OciError::unauthorized(&challenge(app, &scopes, true)));
                }
                Rule::Grant => {
                    return Err(OciError::denied(format!(
                        "{} access to {} denied",
                        need.actions,
                        name(&need.resource)
                    )));
                }
            }
        }
        Ok(Access { caller: Caller { sub: claims.sub.clone(), iat: claims.iat }, entries_granted })
    }
}

fn name(r: &Resource) -> &str {
    match r {
        Resource::Repository(n) => n.as_str(),
        Resource::Catalog => "the catalog",
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn challenge(app: &App, scopes: &[String], insufficient: bool) -> String {
    app.tokens.challenge(scopes, insufficient)
}

/// The actions the token grants on a resource; `None` when it has no entry for it.
fn granted(claims: &Claims, resource: &Resource) -> Option<Actions> {
    let (kind, name) = match resource {
        Resource::Repository(r) => (ResourceType::Repository, r.as_str()),
        Resource::Catalog => (ResourceType::Registry, "catalog"),
    };
    let mut found = None;
    for a in claims.access.iter().filter(|a| a.kind == kind && a.name == name) {
        found = Some(found.unwrap_or(Actions::NONE).union(a.granted()));
    }
    found
}

//! Authorizing a Distribution API request from its bearer token alone (DESIGN §4):
//! no token or a bad one is 401 with a challenge; a missing scope entry is 401
//! `insufficient_scope`; an entry without the action is 403 `DENIED` for a named user and
//! the same 401 for anonymous (so clients prompt for login).

use axum::http::{HeaderMap, header};

use super::error::OciError;
use crate::{
    auth::{jwt::Claims, rules::Actions},
    names::RepoName,
    registry::Caller,
    server::App,
};

/// One resource a request needs.
pub struct Need<'a> {
    pub repo: &'a RepoName,
    pub actions: Actions,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl App {
    fn challenge(&self, scopes: &[String], insufficient: bool) -> String {
        let mut c = format!("Bearer realm=\"{}\",service=\"{}\"", self.realm, self.config.auth.service);
        if !scopes.is_empty() {
            c.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
        }
        if insufficient {
            c.push_str(",error=\"insufficient_scope\"");
        }
        c
    }

    /// The verified claims, or 401 with a challenge for `scopes`.
    pub fn claims(&self, headers: &HeaderMap, scopes: &[String]) -> Result<Claims, OciError> {
        bearer(headers)
            .and_then(|t| self.keys.verify(t))
            .ok_or_else(|| OciError::unauthorized(&self.challenge(scopes, false)))
    }

    /// Checks that the token grants every need; returns the caller.
    pub fn authorize(&self, headers: &HeaderMap, needs: &[Need<'_>]) -> Result<Caller, OciError> {
        let scopes: Vec<String> = needs.iter().map(|n| format!("repository:{}:{}", n.repo, n.actions)).collect();
        let claims = self.claims(headers, &scopes)?;
        self.check(&claims, needs, &scopes)
    }

    /// Checks verified claims against the needs; `scopes` go into a challenge.
    pub fn check(&self, claims: &Claims, needs: &[Need<'_>], scopes: &[String]) -> Result<Caller, OciError> {
        for need in needs {
            match granted(claims, "repository", need.repo.as_str()) {
                None => return Err(self.insufficient(scopes)),
                Some(g) if g.contains(need.actions) => {}
                Some(_) if claims.sub.is_empty() => return Err(self.insufficient(scopes)),
                Some(_) => return Err(OciError::denied(format!("{} access to {} denied", need.actions, need.repo))),
            }
        }
        Ok(Caller { sub: claims.sub.clone(), iat: claims.iat })
    }

    pub fn insufficient(&self, scopes: &[String]) -> OciError {
        OciError::unauthorized(&self.challenge(scopes, true))
    }

    /// For `_catalog`: the token must carry `registry:catalog:*`.
    pub fn authorize_catalog(&self, headers: &HeaderMap) -> Result<Claims, OciError> {
        let scopes = ["registry:catalog:*".to_owned()];
        let claims = self.claims(headers, &scopes)?;
        if claims.access.iter().any(|a| a.kind == "registry" && a.name == "catalog") {
            Ok(claims)
        } else {
            Err(self.insufficient(&scopes))
        }
    }
}

/// The actions the token grants on a resource; `None` when it has no entry for it.
pub fn granted(claims: &Claims, kind: &str, name: &str) -> Option<Actions> {
    let mut found = None;
    for a in claims.access.iter().filter(|a| a.kind == kind && a.name == name) {
        let acts = a.actions.iter().fold(Actions::NONE, |acc, x| acc.union(Actions::parse_list(x)));
        found = Some(found.unwrap_or(Actions::NONE).union(acts));
    }
    found
}

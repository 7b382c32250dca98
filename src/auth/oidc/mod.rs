//! Signing in to the web interface with OpenID Connect providers (`[[auth.oidc]]`,
//! docs/oidc.md): the authorization code flow with PKCE (S256), `state` and `nonce`, the
//! code exchanged at the token endpoint with the client secret, and the ID token verified
//! against the provider's JWKS (signature with an asymmetric algorithm the provider
//! announces, `iss`, `aud`, `azp`, `exp`, `nonce`). The identity then goes through the
//! same sync as an LDAP login ([`super::directory::sync_entry`]): the local user, its role
//! from the groups claim, and its provider-managed teams.
//!
//! The pending sign-in (`state`, `nonce`, PKCE verifier, where to go next, expiry) lives
//! in an HttpOnly, SameSite=Lax cookie scoped to `/ui/oidc/{name}`, authenticated with an
//! HMAC keyed by the provider's client secret. So it is bound to the browser that started
//! it (a callback whose `state` is not the cookie's is refused: no login CSRF), works on
//! every replica (they share the configuration, nothing else), and cannot be forged by a
//! browser's owner either. The callback clears it; the provider accepts each code once.
//!
//! What is asked of the provider (discovery, JWKS, the token endpoint) and the ID token's
//! verification are in [`remote`].

mod remote;

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

pub use remote::JWKS_REFETCH_GAP;
use remote::{Cached, Keys, Metadata};

use super::{
    credentials::CredentialError,
    directory::{GroupRules, sync_entry},
    ldap::{Entry, Group},
    password::random_secret,
};
use crate::{
    config::OidcConfig,
    db::{self, Db, users::UserRow},
};

/// How the `source` of OIDC users and teams starts (`oidc:{name}`).
pub const SOURCE_PREFIX: &str = "oidc:";
/// The pending sign-in's cookie.
pub const COOKIE: &str = "berth_oidc";
/// Seconds a started sign-in may take.
pub const PENDING_SECS: u64 = 600;
/// Time for each request to the provider.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The sign-in is refused (a 400 page): a bad or replayed callback, an invalid token.
    #[error("{0}")]
    Refused(String),
    /// The provider does not answer, or answers nonsense (a 503 page).
    #[error("{0}")]
    Unavailable(String),
}

fn refused(m: impl Into<String>) -> OidcError {
    OidcError::Refused(m.into())
}

/// The configured providers.
#[derive(Default)]
pub struct Oidc {
    providers: Vec<Arc<Provider>>,
}

impl Oidc {
    /// Providers redirecting back to `{public_url}/ui/oidc/{name}/callback`.
    pub fn new(configs: &[OidcConfig], public_url: &str) -> anyhow::Result<Oidc> {
        let http = s3_http::Client::builder().timeout(TIMEOUT).build()?;
        let providers = configs
            .iter()
            .map(|cfg| Provider::new(cfg.clone(), public_url, http.clone()).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        Ok(Oidc { providers })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.cfg.name == name)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter().map(AsRef::as_ref)
    }
}

/// A started sign-in, kept in the browser's [`COOKIE`].
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    exp: i64,
}

/// Where to send the browser, and the cookie to set.
pub struct Started {
    pub url: String,
    pub cookie: String,
}

/// The callback's query.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// One configured provider.
pub struct Provider {
    cfg: OidcConfig,
    source: String,
    redirect_uri: String,
    rules: GroupRules,
    http: s3_http::Client,
    state_key: hmac::Key,
    metadata: Mutex<Option<Cached<Metadata>>>,
    keys: Mutex<Option<Cached<Keys>>>,
}

impl Provider {
    fn new(cfg: OidcConfig, public_url: &str, http: s3_http::Client) -> anyhow::Result<Provider> {
        let key_material = format!("berth oidc pending sign-in\0{}\0{}", cfg.name, cfg.client_secret);
        Ok(Provider {
            source: format!("{SOURCE_PREFIX}{}", cfg.name),
            redirect_uri: format!("{}/ui/oidc/{}/callback", public_url.trim_end_matches('/'), cfg.name),
            rules: GroupRules::new(&cfg.team_groups, &cfg.admin_groups, &cfg.superuser_groups)?,
            http,
            state_key: hmac::Key::new(hmac::HMAC_SHA256, key_material.as_bytes()),
            metadata: Mutex::new(None),
            keys: Mutex::new(None),
            cfg,
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn display_name(&self) -> &str {
        self.cfg.shown_name()
    }

    /// The path the pending sign-in's cookie is scoped to.
    pub fn cookie_path(&self) -> String {
        format!("/ui/oidc/{}", self.cfg.name)
    }

    /// Starts a sign-in: the provider's authorization URL, and the pending sign-in's cookie.
    pub async fn start(&self, next: &str) -> Result<Started, OidcError> {
        let meta = self.metadata().await?;
        let pending = Pending {
            provider: self.cfg.name.clone(),
            state: random_secret(""),
            nonce: random_secret(""),
            verifier: random_secret(""),
            next: next.to_owned(),
            exp: db::now().saturating_add(PENDING_SECS.cast_signed()),
        };
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.cfg.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.cfg.scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let sep = if meta.authorization_endpoint.contains('?') { '&' } else { '?' };
        Ok(Started { url: format!("{}{sep}{query}", meta.authorization_endpoint), cookie: self.seal(&pending) })
    }

    /// Ends a sign-in at the callback: checks the pending sign-in and `state`, exchanges
    /// the code, verifies the ID token. Returns the identity and where to go next.
    pub async fn finish(&self, cookie: Option<&str>, q: &Callback) -> Result<(Entry, String), OidcError> {
        let pending = cookie
            .and_then(|c| self.open(c))
            .ok_or_else(|| refused("This sign-in was not started in this browser, or took too long. Start again."))?;
        if q.state.as_deref() != Some(pending.state.as_str()) {
            return Err(refused("This sign-in's state does not match the one started here. Start again."));
        }
        if let Some(e) = &q.error {
            let detail = q.error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            return Err(refused(format!("The provider refused the sign-in ({e}{detail}).")));
        }
        let code = q.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| refused("The provider sent no code."))?;
        let meta = self.metadata().await?;
        let id_token = self.exchange(&meta, code, &pending.verifier).await?;
        let claims = self.verify(&meta, &id_token, &pending.nonce).await?;
        Ok((self.entry(&claims)?, pending.next))
    }

    /// Writes the identity to the local user and its teams; a user deactivated here is
    /// refused.
    pub async fn sync(&self, db: &Db, entry: &Entry) -> Result<UserRow, CredentialError> {
        let user = sync_entry(db, &self.source, true, &self.rules, entry).await?;
        if !user.active {
            return Err(CredentialError::Invalid);
        }
        Ok(user)
    }

    fn seal(&self, p: &Pending) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(p).unwrap_or_default());
        let tag = hmac::sign(&self.state_key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn open(&self, cookie: &str) -> Option<Pending> {
        let (body, tag) = cookie.split_once('.')?;
        hmac::verify(&self.state_key, body.as_bytes(), &URL_SAFE_NO_PAD.decode(tag).ok()?).ok()?;
        let p: Pending = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (p.provider == self.cfg.name && p.exp > db::now()).then_some(p)
    }

    /// The identity in the claims: `sub`, the user name and groups claims, `email`, `name`.
    fn entry(&self, claims: &Map<String, Value>) -> Result<Entry, OidcError> {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let sub = text("sub").ok_or_else(|| refused("The provider's ID token has no subject."))?;
        let username = text(&self.cfg.username_claim).ok_or_else(|| {
            refused(format!(
                "The provider's ID token has no {:?} claim for the user name (auth.oidc username_claim).",
                self.cfg.username_claim
            ))
        })?;
        let groups: Vec<String> = match claims.get(&self.cfg.groups_claim) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        Ok(Entry {
            dn: sub,
            username,
            email: text("email"),
            display_name: text("name"),
            groups: groups.into_iter().map(|g| Group { dn: g.clone(), name: g }).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(secret: &str) -> Provider {
        let cfg = OidcConfig {
            name: "corp".into(),
            issuer: "http://127.0.0.1:1".into(),
            client_id: "berth".into(),
            client_secret: secret.into(),
            ..OidcConfig::default()
        };
        Provider::new(cfg, "https://registry.example/", s3_http::Client::new()).unwrap()
    }

    fn pending(exp_in: i64) -> Pending {
        Pending {
            provider: "corp".into(),
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            next: "/ui/".into(),
            exp: db::now() + exp_in,
        }
    }

    #[test]
    fn pending_cookie_is_authenticated_and_expires() {
        let p = provider("secret");
        assert_eq!(p.redirect_uri, "https://registry.example/ui/oidc/corp/callback");
        let sealed = p.seal(&pending(60));
        assert_eq!(p.open(&sealed).map(|p| p.state), Some("s".into()));
        // Another secret (another deployment), an edited body, an expired one: refused.
        assert!(provider("other").open(&sealed).is_none());
        let (body, tag) = sealed.split_once('.').unwrap();
        let mut forged: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        forged["state"] = "attacker".into();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(p.open(&format!("{forged_body}.{tag}")).is_none());
        assert!(p.open(&p.seal(&pending(-1))).is_none());
        assert!(p.open("garbage").is_none());
    }

    #[test]
    fn identity_comes_from_the_configured_claims() {
        let p = provider("secret");
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "sub": "abc", "preferred_username": "Alice", "email": "a@example.org", "groups": ["devs", "ops"]
        }))
        .unwrap();
        let e = p.entry(&claims).unwrap();
        assert_eq!((e.dn.as_str(), e.username.as_str(), e.email.as_deref()), ("abc", "Alice", Some("a@example.org")));
        assert_eq!(e.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["devs", "ops"]);
        let mut no_name = claims.clone();
        no_name.remove("preferred_username");
        assert!(matches!(p.entry(&no_name), Err(OidcError::Refused(_))));
    }
}

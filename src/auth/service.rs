//! The token service as one value: the database it checks credentials against, the signing
//! keys, and the settings the permission rules read. The HTTP layers hold one (cheap to
//! clone) and ask it who a credential is, what a token grants, and what a challenge says;
//! nothing here knows the server that carries it.

use std::{net::IpAddr, sync::Arc};

use super::{
    credentials::{self, Authenticated, CredentialError},
    jwt::Claims,
    keys::Keys,
    rules::Settings,
    throttle::{self, LoginError},
};
use crate::{config::AuthConfig, db::Db};

/// What the token service needs of the configuration.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// Token `aud` and the challenge's `service`.
    pub service: String,
    pub token_ttl_secs: u64,
    pub user_collections: bool,
    pub private_registry: bool,
    pub default_private: bool,
    /// `<public_url>/token`, the challenge's realm.
    pub realm: String,
}

impl TokenSettings {
    pub fn new(auth: &AuthConfig, realm: String) -> TokenSettings {
        TokenSettings {
            service: auth.service.clone(),
            token_ttl_secs: auth.token_ttl_secs,
            user_collections: auth.user_collections,
            private_registry: auth.private_registry,
            default_private: auth.default_private,
            realm,
        }
    }

    pub(super) fn rules(&self) -> Settings {
        Settings { user_collections: self.user_collections, private_registry: self.private_registry }
    }
}

/// Checks credentials and issues and verifies access tokens.
#[derive(Clone, Debug)]
pub struct TokenService {
    pub(super) db: Db,
    pub(super) keys: Keys,
    pub(super) settings: Arc<TokenSettings>,
}

impl TokenService {
    pub fn new(db: Db, keys: Keys, settings: TokenSettings) -> TokenService {
        TokenService { db, keys, settings: Arc::new(settings) }
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// A username with a password or an API token, throttled per account and address.
    pub async fn login(&self, username: &str, secret: &str, ip: Option<IpAddr>) -> Result<Authenticated, LoginError> {
        throttle::login(&self.db, username, secret, ip).await
    }

    /// A bare API token (Bearer on the management API).
    pub async fn api_token(&self, secret: &str) -> Result<Authenticated, CredentialError> {
        credentials::authenticate_api_token(&self.db, secret).await
    }

    /// A refresh token (OAuth2 `grant_type=refresh_token`).
    pub async fn refresh_token(&self, secret: &str) -> Result<Authenticated, CredentialError> {
        credentials::from_refresh_token(&self.db, secret).await
    }

    /// A new refresh token bound to this credential.
    pub async fn mint_refresh_token(&self, who: &Authenticated) -> Result<String, CredentialError> {
        credentials::mint_refresh_token(&self.db, who).await
    }

    /// Whether anonymous may get a token at all.
    pub fn anonymous_allowed(&self) -> bool {
        !self.settings.private_registry
    }

    /// The claims of a token this service (or a replica sharing its keys) signed, if it is
    /// valid now.
    pub async fn verify(&self, token: &str) -> Option<Arc<Claims>> {
        self.keys.verify_shared(token).await
    }

    /// The `WWW-Authenticate` value sending a client to get a token for `scopes`.
    pub fn challenge(&self, scopes: &[String], insufficient: bool) -> String {
        let s = &self.settings;
        let mut c = format!("Bearer realm=\"{}\",service=\"{}\"", s.realm, s.service);
        if !scopes.is_empty() {
            c.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
        }
        if insufficient {
            c.push_str(",error=\"insufficient_scope\"");
        }
        c
    }

    /// The public keys, as `/token/jwks.json` serves them.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }
}

//! The state every request handler shares: the registry (domain), the token service, the
//! configuration and the operational state. [`crate::server`] builds it; the HTTP layers
//! (`oci`, `api`, `ops`) read it.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::{auth::TokenService, config::Config, db::Db, ops::Ops, registry::Registry};

/// Shared state of a running server.
pub struct App {
    pub registry: Registry,
    pub tokens: TokenService,
    /// The metadata database, for the management API (the registry keeps its own handle
    /// private).
    pub db: Db,
    pub config: Config,
    /// The OpenID Connect providers of the web interface's sign-in.
    pub oidc: crate::auth::oidc::Oidc,
    pub ops: Ops,
}

pub type AppState = Arc<App>;

impl FromRef<AppState> for TokenService {
    fn from_ref(app: &AppState) -> TokenService {
        app.tokens.clone()
    }
}

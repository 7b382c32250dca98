//! The operational surface around the registry: the listener (TLS, header limits, drain on
//! shutdown), per-request context (request id, client address, principal), the access log
//! and request metrics, limits (body idle timeout, request timeout, uploads per principal),
//! `/healthz`, `/readyz` and `/metrics`. Nothing here knows the Distribution API beyond
//! classifying a path into an endpoint family.

pub mod access;
pub mod addr;
pub mod context;
pub mod health;
pub mod limits;
pub mod listen;
pub mod logout;
pub mod metrics;
pub mod tls;

use std::{collections::HashMap, sync::Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Per-server operational state, part of [`crate::state::App`].
pub struct Ops {
    pub limits: crate::config::LimitsConfig,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub access_log: bool,
    /// Cancelled when the shutdown drain deadline passes: request bodies then end with an
    /// error, so uploads record what arrived and stay resumable.
    pub cut_bodies: CancellationToken,
    /// Upload requests in flight per principal.
    uploads: Mutex<HashMap<String, usize>>,
}

impl Ops {
    pub fn new(config: &Config) -> Ops {
        Ops {
            limits: config.limits.clone(),
            trusted_proxies: config.auth.trusted_proxies.clone(),
            access_log: config.log.access,
            cut_bodies: CancellationToken::new(),
            uploads: Mutex::new(HashMap::new()),
        }
    }
}

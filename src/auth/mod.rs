//! Authentication and authorization: the token service (`/token`), JWT signing and
//! verification, the permission rules, and credential checks.

pub mod credentials;
pub mod directory;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod ldap;
pub mod login_cache;
pub mod oidc;
pub mod password;
pub mod rules;
pub mod scope;
pub mod service;
pub mod sessions;
pub mod throttle;
pub mod token;
pub mod users;

pub use http::routes;
pub use service::{TokenService, TokenSettings};

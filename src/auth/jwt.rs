//! ES256 access tokens: their claims, and the cache of tokens whose signature was already
//! checked. The keys that sign and verify them are in [`super::keys`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use super::rules::Actions;

pub use super::keys::Keys;

/// Every token's `iss`.
pub const ISSUER: &str = "berth";

/// The `type` of an access entry (Docker token auth): a repository, or the registry
/// itself (only its `catalog`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    Repository,
    Registry,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: ResourceType,
    pub name: String,
    /// Action names as the wire carries them (`pull`, `push`, `delete`, `*`).
    pub actions: Vec<String>,
}

impl AccessEntry {
    /// The actions this entry grants.
    pub fn granted(&self) -> Actions {
        self.actions.iter().fold(Actions::NONE, |acc, a| acc.union(Actions::parse(a)))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<AccessEntry>,
}

/// Tokens whose signature was already checked, so each token costs one ES256
/// verification, not one per request: a client sends the same token on every request of a
/// pull or push. Keyed by the SHA-256 of the token; an entry is good until the token's
/// `exp`. Bounded: past [`VERIFIED_CAPACITY`] entries the expired ones go, then all.
#[derive(Default)]
pub(crate) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Arc<Claims>>>,
}

/// Verified tokens remembered at most (about 1 KiB each).
pub const VERIFIED_CAPACITY: usize = 8192;

impl VerifiedTokens {
    pub(crate) fn get(&self, key: &[u8; 32], now: i64) -> Option<Arc<Claims>> {
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|c| c.exp > now).cloned()
    }

    pub(crate) fn insert(&self, key: [u8; 32], claims: Arc<Claims>, now: i64) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= VERIFIED_CAPACITY {
            entries.retain(|_, c| c.exp > now);
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, claims);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::db;

    pub(crate) fn claims(aud: &str, exp_in: i64) -> Claims {
        let now = db::now();
        Claims {
            iss: ISSUER.into(),
            sub: "alice".into(),
            aud: aud.into(),
            exp: now + exp_in,
            nbf: now,
            iat: now,
            jti: "x".into(),
            access: vec![AccessEntry {
                kind: ResourceType::Repository,
                name: "a/b".into(),
                actions: vec!["pull".into()],
            }],
        }
    }

    #[test]
    fn verified_tokens_expire_and_are_bounded() {
        let cache = VerifiedTokens::default();
        let now = db::now();
        cache.insert([1; 32], Arc::new(claims("berth", -1)), now);
        assert!(cache.get(&[1; 32], now).is_none(), "an expired entry is never served");
        cache.insert([2; 32], Arc::new(claims("berth", 60)), now);
        assert!(cache.get(&[2; 32], now).is_some());
        for i in 0..VERIFIED_CAPACITY + 10 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            cache.insert(key, Arc::new(claims("berth", 60)), now);
        }
        assert!(cache.len() <= VERIFIED_CAPACITY);
    }
}

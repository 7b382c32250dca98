//! ES256 access tokens. The signing key is created once and kept in the database so every
//! replica signs and verifies with the same keys; JWKS lists them all.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::db::{self, Db};

/// Every token's `iss`.
pub const ISSUER: &str = "berth";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
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

struct VerifyKey {
    key: DecodingKey,
    jwk: serde_json::Value,
}

/// Signing and verification keys.
pub struct Keys {
    kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, VerifyKey>,
    validation: Validation,
    verified: VerifiedTokens,
}

/// Tokens whose signature was already checked, so each token costs one ES256
/// verification, not one per request: a client sends the same token on every request of a
/// pull or push. Keyed by the SHA-256 of the token; an entry is good until the token's
/// `exp`. Bounded: past [`VERIFIED_CAPACITY`] entries the expired ones go, then all.
#[derive(Default)]
struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Arc<Claims>>>,
}

/// Verified tokens remembered at most (about 1 KiB each).
pub const VERIFIED_CAPACITY: usize = 8192;

impl VerifiedTokens {
    fn get(&self, key: &[u8; 32], now: i64) -> Option<Arc<Claims>> {
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|c| c.exp > now).cloned()
    }

    fn insert(&self, key: [u8; 32], claims: Arc<Claims>, now: i64) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= VERIFIED_CAPACITY {
            entries.retain(|_, c| c.exp > now);
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, claims);
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads the keys, creating the first one if the database has none. Replicas racing on
    /// a first start each insert one; the oldest signs and all verify.
    pub async fn load_or_create(db: &Db, service: &str) -> anyhow::Result<Keys> {
        let mut rows = db::keys::all(db).await?;
        if rows.is_empty() {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| anyhow::anyhow!("generating a signing key failed"))?;
            let kid = kid_of(&public_key(pkcs8.as_ref())?);
            db::keys::insert(db, &kid, pkcs8.as_ref()).await?;
            rows = db::keys::all(db).await?;
        }
        let mut verifying = HashMap::new();
        for (kid, pkcs8) in &rows {
            let public = public_key(pkcs8)?;
            let x = URL_SAFE_NO_PAD.encode(&public[1..33]);
            let y = URL_SAFE_NO_PAD.encode(&public[33..65]);
            let key = DecodingKey::from_ec_components(&x, &y)?;
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
            verifying.insert(kid.clone(), VerifyKey { key, jwk });
        }
        let (kid, pkcs8) = rows.into_iter().next().ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[service]);
        validation.set_issuer(&[ISSUER]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        Ok(Keys {
            kid,
            signing: EncodingKey::from_ec_der(&pkcs8),
            verifying,
            validation,
            verified: VerifiedTokens::default(),
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing)
    }

    /// The claims of a valid, unexpired token for this service; `None` otherwise.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.verify_shared(token).map(|c| Claims::clone(&c))
    }

    /// [`Keys::verify`] without copying the claims.
    pub fn verify_shared(&self, token: &str) -> Option<Arc<Claims>> {
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = db::now();
        if let Some(claims) = self.verified.get(&key, now) {
            return Some(claims);
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let verifying = self.verifying.get(header.kid.as_deref()?)?;
        let claims = Arc::new(jsonwebtoken::decode::<Claims>(token, &verifying.key, &self.validation).ok()?.claims);
        // Remembered only once `nbf` has passed, so a hit never skips that check either.
        if claims.nbf <= now {
            self.verified.insert(key, Arc::clone(&claims), now);
        }
        Some(claims)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<_> = self.verifying.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        serde_json::json!({ "keys": keys.into_iter().map(|(_, k)| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

/// The uncompressed P-256 public point (65 bytes) of a PKCS#8 key.
fn public_key(pkcs8: &[u8]) -> anyhow::Result<Vec<u8>> {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("stored signing key is invalid"))?;
    let public = pair.public_key().as_ref().to_vec();
    anyhow::ensure!(public.len() == 65, "unexpected public key length");
    Ok(public)
}

fn kid_of(public: &[u8]) -> String {
    hex::encode(&sha2::Sha256::digest(public)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn keys(service: &str) -> (Keys, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        db.migrate().await.unwrap();
        (Keys::load_or_create(&db, service).await.unwrap(), dir)
    }

    fn claims(aud: &str, exp_in: i64) -> Claims {
        let now = db::now();
        Claims {
            iss: ISSUER.into(),
            sub: "alice".into(),
            aud: aud.into(),
            exp: now + exp_in,
            nbf: now,
            iat: now,
            jti: "x".into(),
            access: vec![AccessEntry { kind: "repository".into(), name: "a/b".into(), actions: vec!["pull".into()] }],
        }
    }

    #[tokio::test]
    async fn sign_verify_round_trip() {
        let (k, _d) = keys("berth").await;
        let t = k.sign(&claims("berth", 60)).unwrap();
        let c = k.verify(&t).expect("valid");
        assert_eq!(c.sub, "alice");
        assert_eq!(c.access[0].name, "a/b");
        assert_eq!(k.jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn verified_tokens_are_remembered_until_exp_and_bounded() {
        let (k, _d) = keys("berth").await;
        let t = k.sign(&claims("berth", 60)).unwrap();
        let first = k.verify_shared(&t).unwrap();
        // The second verification is the remembered one (same allocation).
        assert!(Arc::ptr_eq(&first, &k.verify_shared(&t).unwrap()));
        let cache = VerifiedTokens::default();
        let now = db::now();
        let mut old = claims("berth", -1);
        old.exp = now - 1;
        cache.insert([1; 32], Arc::new(old), now);
        assert!(cache.get(&[1; 32], now).is_none(), "an expired entry is never served");
        for i in 0..VERIFIED_CAPACITY + 10 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            cache.insert(key, Arc::new(claims("berth", 60)), now);
        }
        assert!(cache.entries.lock().unwrap().len() <= VERIFIED_CAPACITY);
    }

    #[tokio::test]
    async fn rejects_wrong_audience_expired_and_tampered() {
        let (k, _d) = keys("berth").await;
        assert!(k.verify(&k.sign(&claims("other", 60)).unwrap()).is_none());
        assert!(k.verify(&k.sign(&claims("berth", -60)).unwrap()).is_none());
        let t = k.sign(&claims("berth", 60)).unwrap();
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            br#"{"iss":"berth","sub":"root","aud":"berth","exp":9999999999,"nbf":0,"iat":0,"jti":"x","access":[]}"#,
        );
        parts[1] = &forged;
        assert!(k.verify(&parts.join(".")).is_none());
        // A key from another database does not verify.
        let (other, _d2) = keys("berth").await;
        assert!(other.verify(&t).is_none());
    }
}

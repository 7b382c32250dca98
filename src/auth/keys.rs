//! Token signing keys. They are kept in the database, so every replica signs and verifies
//! with the same ones, and rotated with `berth keys rotate`.
//!
//! Each key has a generation. The newest one signs. An older key keeps verifying (and
//! stays in the JWKS) until every token it may have signed has expired. That is its
//! successor's creation, plus the time replicas take to notice the successor, plus the
//! token lifetime. Every replica re-reads the keys every [`REFRESH`]. It also re-reads them
//! at once (at most once a second) when a token names a key it does not know. So a token
//! signed on a replica that already uses a new key is accepted everywhere. The unique
//! generation settles races: replicas that start together for the first time agree on one
//! key.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock, Weak},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use sha2::Digest as _;

use super::jwt::{Claims, ISSUER, VerifiedTokens};
use crate::db::{
    self, Db,
    keys::{Generation, KeyRow},
};

/// How often a running server re-reads the keys.
pub const REFRESH: Duration = Duration::from_secs(60);
/// A token naming an unknown key triggers at most one re-read this often.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(1);
/// Clock leeway on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

struct VerifyKey {
    key: DecodingKey,
    jwk: serde_json::Value,
}

/// The keys as last read from the database.
struct KeySet {
    kid: String,
    /// The newest key, parsed once per key generation: jsonwebtoken's `EncodingKey` would
    /// re-parse the PKCS#8 document on every token it signs.
    signing: Arc<EcdsaKeyPair>,
    verifying: HashMap<String, VerifyKey>,
}

struct Inner {
    db: Db,
    /// Tokens live this long (what an old key must outlive).
    token_ttl_secs: i64,
    validation: Validation,
    set: RwLock<Arc<KeySet>>,
    verified: VerifiedTokens,
    /// When an unknown `kid` last made this replica re-read the keys.
    last_unknown_reload: Mutex<Option<Instant>>,
}

/// Signing and verification keys of a running server (cheap to clone).
#[derive(Clone)]
pub struct Keys {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.signing_kid()).finish_non_exhaustive()
    }
}

/// A new P-256 key: `(kid, pkcs8)`.
fn generate() -> anyhow::Result<(String, Vec<u8>)> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating a signing key failed"))?;
    Ok((kid_of(&public_key(pkcs8.as_ref())?), pkcs8.as_ref().to_vec()))
}

/// Adds a new signing key (the next generation); returns its `kid`. Running servers sign
/// with it from their next refresh, and accept tokens signed with it at once.
pub async fn rotate(db: &Db) -> anyhow::Result<String> {
    for _ in 0..10 {
        let (kid, pkcs8) = generate()?;
        if db::keys::insert(db, &kid, &pkcs8, Generation::Next).await? {
            return Ok(kid);
        }
    }
    anyhow::bail!("could not add a signing key: other rotations kept winning")
}

/// The keys still able to verify an unexpired token, and the signing one (the newest),
/// reusing `previous`'s parsed signing key when the newest key is still the same.
fn key_set(rows: &[KeyRow], now: i64, token_ttl_secs: i64, previous: Option<&KeySet>) -> anyhow::Result<KeySet> {
    let newest = rows.last().ok_or_else(|| anyhow::anyhow!("no signing key"))?;
    // A replica may sign with a superseded key until it refreshes (twice, for margin).
    let outlive = token_ttl_secs + 2 * REFRESH.as_secs() as i64 + LEEWAY_SECS as i64;
    let mut verifying = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let superseded = rows.get(i + 1).map(|next| next.created_at);
        if superseded.is_some_and(|at| at + outlive < now) {
            continue;
        }
        let public = public_key(&row.pkcs8)?;
        let (x, y) = (URL_SAFE_NO_PAD.encode(&public[1..33]), URL_SAFE_NO_PAD.encode(&public[33..65]));
        let key = DecodingKey::from_ec_components(&x, &y)?;
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": row.kid, "use": "sig", "alg": "ES256"});
        verifying.insert(row.kid.clone(), VerifyKey { key, jwk });
    }
    let signing = match previous {
        Some(p) if p.kid == newest.kid => Arc::clone(&p.signing),
        _ => Arc::new(key_pair(&newest.pkcs8)?),
    };
    Ok(KeySet { kid: newest.kid.clone(), signing, verifying })
}

impl Keys {
    /// Loads the keys, creating the first one if the database has none.
    pub async fn load_or_create(db: &Db, service: &str, token_ttl_secs: u64) -> anyhow::Result<Keys> {
        let mut rows = db::keys::all(db).await?;
        if rows.is_empty() {
            let (kid, pkcs8) = generate()?;
            // A replica starting at the same moment may win; then its key is the one.
            db::keys::insert(db, &kid, &pkcs8, Generation::First).await?;
            rows = db::keys::all(db).await?;
        }
        let token_ttl_secs = i64::try_from(token_ttl_secs).unwrap_or(i64::MAX / 4);
        let set = key_set(&rows, db::now(), token_ttl_secs, None)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[service]);
        validation.set_issuer(&[ISSUER]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        Ok(Keys {
            inner: Arc::new(Inner {
                db: db.clone(),
                token_ttl_secs,
                validation,
                set: RwLock::new(Arc::new(set)),
                verified: VerifiedTokens::default(),
                last_unknown_reload: Mutex::new(None),
            }),
        })
    }

    fn set(&self) -> Arc<KeySet> {
        match self.inner.set.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The `kid` new tokens are signed with.
    pub fn signing_kid(&self) -> String {
        self.set().kid.clone()
    }

    /// Re-reads the keys from the database.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let rows = db::keys::all(&self.inner.db).await?;
        let set = Arc::new(key_set(&rows, db::now(), self.inner.token_ttl_secs, Some(&self.set()))?);
        if let Ok(mut s) = self.inner.set.write() {
            *s = set;
        }
        Ok(())
    }

    /// Re-reads the keys every [`REFRESH`] while this server runs (the task holds only a
    /// weak reference, so it ends with the server).
    pub fn spawn_refresh(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                let Some(inner) = weak.upgrade() else { return };
                if let Err(e) = (Keys { inner }).reload().await {
                    tracing::warn!(error = format!("{e:#}"), "re-reading the signing keys failed");
                }
            }
        });
    }

    /// A compact JWS (ES256) of `claims`, as `jsonwebtoken::encode` would make it, signed
    /// with the already parsed key.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let set = self.set();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(set.kid.clone());
        let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);
        let signature = set
            .signing
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing a token failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }

    /// The claims of a valid, unexpired token for this service; `None` otherwise.
    pub async fn verify_shared(&self, token: &str) -> Option<Arc<Claims>> {
        let cache_key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = db::now();
        if let Some(claims) = self.inner.verified.get(&cache_key, now) {
            return Some(claims);
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let mut set = self.set();
        if !set.verifying.contains_key(&kid) && self.may_reload() {
            // Perhaps another replica rotated: look once more before refusing.
            if let Err(e) = self.reload().await {
                tracing::warn!(error = format!("{e:#}"), "re-reading the signing keys failed");
            }
            set = self.set();
        }
        let key = &set.verifying.get(&kid)?.key;
        let claims = Arc::new(jsonwebtoken::decode::<Claims>(token, key, &self.inner.validation).ok()?.claims);
        // Remembered only once `nbf` has passed, so a hit never skips that check either.
        if claims.nbf <= now {
            self.inner.verified.insert(cache_key, Arc::clone(&claims), now);
        }
        Some(claims)
    }

    /// Whether an unknown `kid` may trigger a re-read now (at most one a second, so
    /// made-up key ids cannot turn every request into a database query).
    fn may_reload(&self) -> bool {
        let Ok(mut at) = self.inner.last_unknown_reload.lock() else { return false };
        if at.is_some_and(|t| t.elapsed() < UNKNOWN_KID_RELOAD) {
            return false;
        }
        *at = Some(Instant::now());
        true
    }

    /// Every key that may still verify an unexpired token, as a JWKS.
    pub fn jwks(&self) -> serde_json::Value {
        let set = self.set();
        let mut keys: Vec<_> = set.verifying.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        serde_json::json!({ "keys": keys.into_iter().map(|(_, k)| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

fn key_pair(pkcs8: &[u8]) -> anyhow::Result<EcdsaKeyPair> {
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("stored signing key is invalid"))
}

/// The uncompressed P-256 public point (65 bytes) of a PKCS#8 key.
fn public_key(pkcs8: &[u8]) -> anyhow::Result<Vec<u8>> {
    let public = key_pair(pkcs8)?.public_key().as_ref().to_vec();
    anyhow::ensure!(public.len() == 65, "unexpected public key length");
    Ok(public)
}

fn kid_of(public: &[u8]) -> String {
    hex::encode(&sha2::Sha256::digest(public)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::tests::claims;

    async fn fresh_db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }

    #[tokio::test]
    async fn sign_verify_round_trip() {
        let (db, _d) = fresh_db().await;
        let k = Keys::load_or_create(&db, "berth", 900).await.unwrap();
        let t = k.sign(&claims("berth", 60)).unwrap();
        let c = k.verify_shared(&t).await.expect("valid");
        assert_eq!(c.sub, "alice");
        assert_eq!(c.access[0].name, "a/b");
        // The second verification is the remembered one (same allocation).
        assert!(Arc::ptr_eq(&k.verify_shared(&t).await.unwrap(), &k.verify_shared(&t).await.unwrap()));
        assert_eq!(k.jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn rejects_wrong_audience_expired_and_tampered() {
        let (db, _d) = fresh_db().await;
        let k = Keys::load_or_create(&db, "berth", 900).await.unwrap();
        assert!(k.verify_shared(&k.sign(&claims("other", 60)).unwrap()).await.is_none());
        assert!(k.verify_shared(&k.sign(&claims("berth", -60)).unwrap()).await.is_none());
        let t = k.sign(&claims("berth", 60)).unwrap();
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            br#"{"iss":"berth","sub":"root","aud":"berth","exp":9999999999,"nbf":0,"iat":0,"jti":"x","access":[]}"#,
        );
        parts[1] = &forged;
        assert!(k.verify_shared(&parts.join(".")).await.is_none());
        // A key from another database does not verify.
        let (db2, _d2) = fresh_db().await;
        let other = Keys::load_or_create(&db2, "berth", 900).await.unwrap();
        assert!(other.verify_shared(&t).await.is_none());
    }

    #[tokio::test]
    async fn first_start_agrees_on_one_key() {
        let (db, _d) = fresh_db().await;
        let starts = (0..8).map(|_| Keys::load_or_create(&db, "berth", 900));
        let kids: Vec<String> =
            futures_util::future::join_all(starts).await.into_iter().map(|k| k.unwrap().signing_kid()).collect();
        assert!(kids.iter().all(|k| k == &kids[0]), "{kids:?}");
        assert_eq!(db::keys::all(&db).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_rotated_key_signs_on_one_replica_and_verifies_on_another() {
        let (db, _d) = fresh_db().await;
        let a = Keys::load_or_create(&db, "berth", 900).await.unwrap();
        let b = Keys::load_or_create(&db, "berth", 900).await.unwrap();
        let old = a.sign(&claims("berth", 60)).unwrap();
        let kid = rotate(&db).await.unwrap();
        a.reload().await.unwrap();
        assert_eq!(a.signing_kid(), kid);
        // B has not refreshed yet: the unknown kid makes it look again, once.
        let new = a.sign(&claims("berth", 60)).unwrap();
        assert_eq!(b.verify_shared(&new).await.expect("accepted on B").sub, "alice");
        // Both keys verify and are published while tokens of the old one may live.
        assert!(b.verify_shared(&old).await.is_some());
        assert_eq!(b.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn superseded_keys_retire_after_every_token_they_signed_expired() {
        let rows: Vec<KeyRow> = (1..=3)
            .map(|g| {
                let (kid, pkcs8) = generate().unwrap();
                KeyRow { kid, pkcs8, generation: g, created_at: g * 10_000 }
            })
            .collect();
        let ttl = 900;
        // Just after the third key: the second may still have signed live tokens.
        let set = key_set(&rows, 30_000 + ttl, ttl, None).unwrap();
        assert_eq!(set.kid, rows[2].kid);
        assert!(!set.verifying.contains_key(&rows[0].kid));
        assert!(set.verifying.contains_key(&rows[1].kid) && set.verifying.contains_key(&rows[2].kid));
        // Long after: only the newest.
        let set = key_set(&rows, 100_000, ttl, None).unwrap();
        assert_eq!(set.verifying.len(), 1);
    }

    #[tokio::test]
    async fn made_up_key_ids_cost_at_most_one_reload_a_second() {
        let (db, _d) = fresh_db().await;
        let k = Keys::load_or_create(&db, "berth", 900).await.unwrap();
        assert!(k.may_reload());
        assert!(!k.may_reload(), "a second re-read within the second");
    }
}

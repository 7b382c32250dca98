//! Remembering verified passwords, so a correct password costs one argon2 verification per
//! (user, password) every few minutes instead of one per token request (docker, podman,
//! skopeo and containerd send Basic credentials on every token request).
//!
//! An entry is keyed by an HMAC of the username and password under a secret that lives
//! only in this process's memory: the password itself is never stored. It remembers the
//! user's id and the PHC string the password matched. A hit counts only while the user
//! row, read from the database on every login anyway, still has that id and that PHC
//! string and is active, so a password change (on any replica) or a deactivation makes the
//! entry useless at once; such entries are dropped when met.
//!
//! Concurrent logins with the same credentials share one verification (single flight):
//! 64 parallel `docker pull`s with a cold cache cost one argon2, not 64.

use std::{
    collections::HashMap,
    sync::{
        LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use ring::{hmac, rand::SystemRandom};

use super::password::{self, Busy};

/// How long a verified password is remembered, unless configured.
pub const TTL: Duration = Duration::from_secs(300);

/// The configured lifetime of [`CACHE`]'s entries in seconds (0: nothing is remembered).
static CACHE_SECS: AtomicU64 = AtomicU64::new(TTL.as_secs());

/// Sets how long [`CACHE`] remembers a verified password (`auth.credential_cache_secs`).
pub fn set_cache_secs(secs: u64) {
    CACHE_SECS.store(secs, Ordering::Relaxed);
}
/// Entries kept at most; beyond, expired ones go, then the whole map (a bound, not an LRU).
pub const CAPACITY: usize = 4096;

type Key = [u8; 32];
type Verification = Shared<BoxFuture<'static, Result<bool, Busy>>>;

struct Entry {
    user_id: i64,
    phc: String,
    until: Instant,
}

struct FlightGuard<'a> {
    map: &'a Mutex<HashMap<(Key, String), Verification>>,
    flight: (Key, String),
    shared: Verification,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && map.get(&self.flight).is_some_and(|v| v.ptr_eq(&self.shared))
        {
            map.remove(&self.flight);
        }
    }
}

/// The process's verified-credential cache.
pub struct LoginCache {
    secret: hmac::Key,
    entries: Mutex<HashMap<Key, Entry>>,
    /// Keyed by the credential and the hash it is checked against, so a verification
    /// against a password hash that has since changed is never shared with a login that
    /// read the new one.
    in_flight: Mutex<HashMap<(Key, String), Verification>>,
    /// Entry lifetime; `None` follows `auth.credential_cache_secs`.
    ttl: Option<Duration>,
}

/// The cache every login of this process goes through.
pub static CACHE: LazyLock<LoginCache> = LazyLock::new(|| LoginCache::with_ttl(None));

impl LoginCache {
    pub fn new(ttl: Duration) -> LoginCache {
        LoginCache::with_ttl(Some(ttl))
    }

    fn with_ttl(ttl: Option<Duration>) -> LoginCache {
        // Only fails if the OS RNG is unavailable, which is unrecoverable.
        let secret = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .unwrap_or_else(|_| panic!("operating system random number generator unavailable"));
        LoginCache { secret, entries: Mutex::default(), in_flight: Mutex::default(), ttl }
    }

    /// The key for a username and password (length-prefixed, so no two pairs collide).
    pub fn key(&self, username: &str, password: &str) -> Key {
        let mut ctx = hmac::Context::with_key(&self.secret);
        ctx.update(&(username.len() as u64).to_be_bytes());
        ctx.update(username.as_bytes());
        ctx.update(password.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.sign().as_ref());
        key
    }

    /// Whether `key` was verified for this user as it stands (same id, same password hash).
    pub fn hit(&self, key: &Key, user_id: i64, phc: &str) -> bool {
        let Ok(mut entries) = self.entries.lock() else { return false };
        match entries.get(key) {
            Some(e) if e.user_id == user_id && e.phc == phc && e.until > Instant::now() => true,
            Some(_) => {
                entries.remove(key);
                false
            }
            None => false,
        }
    }

    /// Remembers that `key` verified against this user's current password hash.
    pub fn insert(&self, key: Key, user_id: i64, phc: &str) {
        let ttl = self.ttl.unwrap_or_else(|| Duration::from_secs(CACHE_SECS.load(Ordering::Relaxed)));
        if ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        let now = Instant::now();
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, Entry { user_id, phc: phc.to_owned(), until: now + ttl });
    }

    /// Forgets every entry of a user verified against `phc`, the password hash the user
    /// had (password change, deactivation, deletion). Matching the hash too keeps another
    /// database's user of the same id (tests run many servers in one process) untouched.
    pub fn forget_user(&self, user_id: i64, phc: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, e| e.user_id != user_id || e.phc != phc);
        }
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies `password` against `phc` on the hashing pool; concurrent calls with the
    /// same key wait for one verification instead of each running their own.
    pub async fn verify_once(&self, key: Key, password: &str, phc: &str) -> Result<bool, Busy> {
        let flight = (key, phc.to_owned());
        let shared = {
            let Ok(mut in_flight) = self.in_flight.lock() else { return Err(Busy) };
            in_flight
                .entry(flight.clone())
                .or_insert_with(|| password::verify(password.to_owned(), phc.to_owned()).boxed().shared())
                .clone()
        };
        // Removed however this call ends (also when its request is dropped mid-way), so
        // the map holds only verifications someone still waits for.
        let _guard = FlightGuard { map: &self.in_flight, flight, shared: shared.clone() };
        shared.await
    }

    /// Verifications in progress (for tests: the map must not grow without bound).
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn keys_depend_on_both_halves_and_the_secret() {
        let c = LoginCache::new(TTL);
        assert_eq!(c.key("alice", "pw"), c.key("alice", "pw"));
        assert_ne!(c.key("alice", "pw"), c.key("alice", "pW"));
        assert_ne!(c.key("ab", "c"), c.key("a", "bc"));
        assert_ne!(c.key("alice", "pw"), LoginCache::new(TTL).key("alice", "pw"));
    }

    #[test]
    fn a_hit_needs_the_same_user_and_password_hash() {
        let c = LoginCache::new(TTL);
        let k = c.key("alice", "pw");
        assert!(!c.hit(&k, 1, "phc1"));
        c.insert(k, 1, "phc1");
        assert!(c.hit(&k, 1, "phc1"));
        // The password changed (new PHC string): the entry is useless and dropped.
        assert!(!c.hit(&k, 1, "phc2"));
        assert!(!c.hit(&k, 1, "phc1"));
        c.insert(k, 1, "phc1");
        // Another user of that name (deleted and recreated).
        assert!(!c.hit(&k, 2, "phc1"));
        c.insert(k, 1, "phc1");
        c.forget_user(1, "phc2");
        assert!(!c.is_empty());
        c.forget_user(1, "phc1");
        assert!(c.is_empty());
    }

    #[test]
    fn entries_expire() {
        let c = LoginCache::new(Duration::ZERO);
        let k = c.key("alice", "pw");
        c.insert(k, 1, "phc1");
        assert!(!c.hit(&k, 1, "phc1"));
    }

    #[test]
    fn the_map_is_bounded() {
        let c = LoginCache::new(TTL);
        for i in 0..CAPACITY * 2 {
            c.insert(c.key(&format!("u{i}"), "pw"), 1, "phc");
        }
        assert!(c.len() <= CAPACITY);
    }

    #[tokio::test]
    async fn concurrent_verifications_share_one() {
        let phc = password::hash("pw".into()).await.unwrap();
        let c = Arc::new(LoginCache::new(TTL));
        let k = c.key("alice", "pw");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (c, phc) = (Arc::clone(&c), phc.clone());
                tokio::spawn(async move { c.verify_once(k, "pw", &phc).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(true));
        }
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.verify_once(c.key("alice", "no"), "no", &phc).await, Ok(false));
    }
}

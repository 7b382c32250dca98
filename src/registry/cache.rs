//! The in-process cache of manifest reads, the hot path of every pull: manifest GET and
//! HEAD by tag or digest without a database round trip.
//!
//! Two maps under one lock:
//! - manifest bytes by digest. They are immutable (the digest names them), so an entry is
//!   never wrong, only evicted (oldest first) to keep the total under the configured bytes;
//! - repository + reference → digest, media type and the collection's creation time. This
//!   one can go stale, so an entry is used only while all of these hold:
//!   - it is younger than the TTL. That bounds how long a tag moved or deleted by another
//!     process (a replica on the same PostgreSQL, or the CLI) is still served here;
//!   - no removal outside the registry's writes (a repository or collection delete, GC,
//!     retention) was committed in this process since it was read ([`Db::removals`]);
//!   - no write of this process to its repository came after it: those drop the
//!     repository's entries at once.
//!
//! A read that overlaps any invalidation does not fill the cache ([`Ticket`]), so an entry
//! never outlives a change this process made. Access is not cached: the caller's token was
//! checked before, and the collection's creation time is compared with the token's `iat`
//! on every hit as on a miss. Absences are not cached either.
//!
//! [`Db::removals`]: crate::db::Db::removals

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use bytes::Bytes;

/// A cached manifest, as a read by reference returns it.
#[derive(Clone, Debug)]
pub struct Cached {
    pub collection_created: i64,
    pub digest: String,
    pub media_type: String,
    pub content: Bytes,
}

/// Taken before a database read; the read's result is cached only if nothing was
/// invalidated in between.
pub struct Ticket {
    writes: u64,
    removals: u64,
}

struct RefEntry {
    collection_created: i64,
    digest: String,
    media_type: String,
    read_at: Instant,
    removals: u64,
}

/// Bytes charged for a reference entry besides its strings (map slots, `Instant`, ids).
const REF_OVERHEAD: usize = 96;

#[derive(Default)]
struct Inner {
    /// Invalidations so far (any repository): a read that saw another number does not fill.
    writes: u64,
    refs: HashMap<String, HashMap<String, RefEntry>>,
    ref_bytes: usize,
    content: HashMap<String, Bytes>,
    /// Digests in `content`, oldest first, for eviction.
    order: VecDeque<String>,
    content_bytes: usize,
}

pub struct ManifestCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
    ttl: Duration,
}

impl ManifestCache {
    /// A cache of at most `max_bytes` (manifest bytes plus reference entries) whose
    /// reference entries live `ttl`. Either zero turns it off.
    pub fn new(max_bytes: usize, ttl: Duration) -> ManifestCache {
        ManifestCache { inner: Mutex::default(), max_bytes, ttl }
    }

    fn enabled(&self) -> bool {
        self.max_bytes > 0 && !self.ttl.is_zero()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The manifest `repo` has under `reference`, if cached and still current; `removals`
    /// is the database's [`crate::db::Db::removals`] now.
    pub fn get(&self, repo: &str, reference: &str, removals: u64) -> Option<Cached> {
        if !self.enabled() {
            return None;
        }
        let inner = self.lock();
        let e = inner.refs.get(repo)?.get(reference)?;
        if e.removals != removals || e.read_at.elapsed() >= self.ttl {
            return None;
        }
        let content = inner.content.get(&e.digest)?.clone();
        Some(Cached {
            collection_created: e.collection_created,
            digest: e.digest.clone(),
            media_type: e.media_type.clone(),
            content,
        })
    }

    /// To take before reading what [`ManifestCache::put`] will store.
    pub fn ticket(&self, removals: u64) -> Ticket {
        Ticket { writes: self.lock().writes, removals }
    }

    /// Remembers a read made under `ticket`, unless something was invalidated since.
    pub fn put(&self, ticket: &Ticket, repo: &str, reference: &str, m: &Cached) {
        let cost = repo.len() + reference.len() + m.digest.len() + m.media_type.len() + REF_OVERHEAD;
        if !self.enabled() || m.content.len() + cost > self.max_bytes / 4 {
            return;
        }
        let mut inner = self.lock();
        if inner.writes != ticket.writes {
            return;
        }
        if !inner.content.contains_key(&m.digest) {
            inner.content_bytes += m.content.len();
            inner.content.insert(m.digest.clone(), m.content.clone());
            inner.order.push_back(m.digest.clone());
        }
        let entry = RefEntry {
            collection_created: m.collection_created,
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
            read_at: Instant::now(),
            removals: ticket.removals,
        };
        let old = inner.refs.entry(repo.to_owned()).or_default().insert(reference.to_owned(), entry);
        if old.is_none() {
            inner.ref_bytes += cost;
        }
        self.evict(&mut inner);
    }

    /// Keeps the total under the budget: the oldest manifest bytes go first; reference
    /// entries, which cannot be ordered cheaply, all go once they take half the budget.
    fn evict(&self, inner: &mut Inner) {
        if inner.ref_bytes > self.max_bytes / 2 {
            inner.refs.clear();
            inner.ref_bytes = 0;
        }
        while inner.content_bytes + inner.ref_bytes > self.max_bytes {
            let Some(digest) = inner.order.pop_front() else { break };
            if let Some(b) = inner.content.remove(&digest) {
                inner.content_bytes -= b.len();
            }
        }
    }

    /// Drops what is cached about `repo`'s tags and manifests; to call after a write there
    /// was committed (or failed: it costs one re-read).
    pub fn invalidate(&self, repo: &str) {
        let mut inner = self.lock();
        inner.writes += 1;
        if let Some(refs) = inner.refs.remove(repo) {
            let freed: usize = refs
                .iter()
                .map(|(r, e)| repo.len() + r.len() + e.digest.len() + e.media_type.len() + REF_OVERHEAD)
                .sum();
            inner.ref_bytes = inner.ref_bytes.saturating_sub(freed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(digest: &str, len: usize) -> Cached {
        Cached {
            collection_created: 1,
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::from(vec![b'x'; len]),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_read_is_served_until_its_repository_is_written() {
        let c = ManifestCache::new(1 << 20, HOUR);
        let t = c.ticket(0);
        c.put(&t, "a/b", "latest", &manifest("sha256:1", 10));
        c.put(&t, "a/c", "latest", &manifest("sha256:1", 10));
        assert_eq!(c.get("a/b", "latest", 0).unwrap().digest, "sha256:1");
        c.invalidate("a/b");
        assert!(c.get("a/b", "latest", 0).is_none());
        // Another repository's entry stays.
        assert!(c.get("a/c", "latest", 0).is_some());
    }

    #[test]
    fn a_read_overlapping_a_write_is_not_cached() {
        let c = ManifestCache::new(1 << 20, HOUR);
        let t = c.ticket(0);
        c.invalidate("a/b");
        c.put(&t, "a/b", "latest", &manifest("sha256:1", 10));
        assert!(c.get("a/b", "latest", 0).is_none());
    }

    #[test]
    fn a_removal_elsewhere_voids_every_entry_read_before_it() {
        let c = ManifestCache::new(1 << 20, HOUR);
        c.put(&c.ticket(3), "a/b", "latest", &manifest("sha256:1", 10));
        assert!(c.get("a/b", "latest", 3).is_some());
        assert!(c.get("a/b", "latest", 4).is_none());
        // A read made before the removal but stored after it is void too.
        c.put(&c.ticket(3), "a/b", "v1", &manifest("sha256:1", 10));
        assert!(c.get("a/b", "v1", 4).is_none());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = ManifestCache::new(1 << 20, Duration::from_millis(1));
        c.put(&c.ticket(0), "a/b", "latest", &manifest("sha256:1", 10));
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get("a/b", "latest", 0).is_none());
    }

    #[test]
    fn the_total_stays_under_the_budget() {
        let c = ManifestCache::new(4096, HOUR);
        for i in 0..100 {
            c.put(&c.ticket(0), "a/b", &format!("t{i}"), &manifest(&format!("sha256:{i}"), 500));
            let inner = c.lock();
            assert!(inner.content_bytes + inner.ref_bytes <= 4096);
            assert_eq!(inner.content_bytes, inner.content.values().map(Bytes::len).sum::<usize>());
        }
        // The newest is still there; the first was evicted.
        assert!(c.get("a/b", "t99", 0).is_some());
        assert!(c.get("a/b", "t0", 0).is_none());
        // Too big for the budget: never stored.
        c.put(&c.ticket(0), "a/b", "big", &manifest("sha256:big", 2048));
        assert!(c.get("a/b", "big", 0).is_none());
    }

    #[test]
    fn zero_turns_it_off() {
        for c in [ManifestCache::new(0, HOUR), ManifestCache::new(1 << 20, Duration::ZERO)] {
            c.put(&c.ticket(0), "a/b", "latest", &manifest("sha256:1", 10));
            assert!(c.get("a/b", "latest", 0).is_none());
        }
    }
}

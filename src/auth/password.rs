//! Password hashing (argon2id) and random secrets.
//!
//! argon2 is deliberately slow and memory-hard (12 MiB per hash with berth's
//! parameters), so it runs on a small pool of its own threads, about one per core, and
//! never on the async workers or tokio's unbounded blocking pool. Each pool thread keeps
//! one argon2 working buffer and reuses it, so a flood of logins costs a fixed amount of
//! memory, not 19 MiB per request in flight. Jobs wait in a bounded queue; when it is full
//! the caller gets [`Busy`] at once (the HTTP layers answer 429 with `Retry-After`).

use std::sync::{
    OnceLock,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;

use flume::{Receiver, RecvTimeoutError, Sender, TrySendError};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Digest as _;
use tokio::sync::oneshot;

/// The hashing pool is saturated: try again shortly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is saturated; retry shortly")]
pub struct Busy;

/// Seconds a caller refused with [`Busy`] is told to wait.
pub const BUSY_RETRY_SECS: u64 = 1;

/// Sizing of the hashing pool.
#[derive(Clone, Copy, Debug)]
pub struct PoolSize {
    /// Threads hashing at once (each holds one argon2 buffer, 12 MiB, while busy).
    pub workers: usize,
    /// Jobs that may wait for a thread; more are refused with [`Busy`].
    pub queue: usize,
}

impl Default for PoolSize {
    fn default() -> Self {
        let cores = crate::cores();
        // Waiting costs a job only its two strings, so the queue is long enough for a CI
        // farm's burst of first logins (64 per core), and short enough to bound the wait.
        PoolSize { workers: cores, queue: 64 * cores }
    }
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

struct Pool {
    jobs: Sender<Job>,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Sizes the pool; effective only before the first hash of the process (`serve` calls it
/// at start). Returns whether this call decided the size.
pub fn configure(size: PoolSize) -> bool {
    let mut decided = false;
    POOL.get_or_init(|| {
        decided = true;
        Pool::start(size)
    });
    decided
}

impl Pool {
    fn get() -> &'static Pool {
        POOL.get_or_init(|| Pool::start(PoolSize::default()))
    }

    fn start(size: PoolSize) -> Pool {
        let (tx, rx) = flume::bounded::<Job>(size.queue.max(1));
        for i in 0..size.workers.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("berth-argon2-{i}")).spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a password hashing thread failed");
            }
        }
        Pool { jobs: tx }
    }

    /// Runs `f` on a pool thread with its argon2 buffer.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> Result<T, Busy> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |mem| {
            // The caller may have gone away; its answer is simply dropped.
            let _ = tx.send(f(mem));
        });
        match self.jobs.try_send(job) {
            Ok(()) => rx.await.map_err(|_| Busy),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

/// A pool thread gives its argon2 buffer back after this long without a job, so an idle
/// server holds none of it.
const KEEP_BUFFER: Duration = Duration::from_secs(2);

/// Pool threads holding an argon2 buffer.
static BUFFERS_HELD: AtomicUsize = AtomicUsize::new(0);

/// Each thread waits on the shared queue on its own (a multi-consumer channel), so each
/// one's `KEEP_BUFFER` runs out whatever the others do. With one receiver behind a mutex,
/// a thread holding a buffer waited for the lock, untimed, while an idle one waited for
/// jobs under it: a 12 MiB buffer stayed for the life of an idle server.
fn worker(rx: &Receiver<Job>) {
    let mut mem: Vec<Block> = Vec::new();
    loop {
        let job = if mem.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(KEEP_BUFFER)
        };
        match job {
            Ok(job) => {
                let had = !mem.is_empty();
                job(&mut mem);
                if !had && !mem.is_empty() {
                    BUFFERS_HELD.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Large enough to be its own mapping, so freeing it returns it to the system.
            Err(RecvTimeoutError::Timeout) => {
                mem = Vec::new();
                BUFFERS_HELD.fetch_sub(1, Ordering::Relaxed);
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Hashes `password` into `out` with `argon`, in `mem` (grown to fit, then reused).
fn hash_into(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    mem: &mut Vec<Block>,
) -> bool {
    let blocks = params.block_count();
    if mem.len() < blocks {
        mem.resize(blocks, Block::default());
    }
    mem.get_mut(..blocks).is_some_and(|m| argon.hash_password_into_with_memory(password, salt, out, m).is_ok())
}

/// Whether `password` matches the PHC string, computed in `mem`. A malformed hash never
/// matches; the comparison is constant-time.
fn verify_in(password: &[u8], phc: &str, mem: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else { return false };
    let Ok(version) = hash.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&hash) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    hash_into(&argon, &params, password, salt, &mut out, mem) && Output::new(&out).is_ok_and(|o| o == expected)
}

/// The parameters of new hashes: argon2id with 12 MiB and 3 passes, one of OWASP's
/// equivalent argon2id settings (the crate's default is 19 MiB and 2 passes). It costs
/// about the same time and keeps the hashing pool's memory at 12 MiB per thread. Hashes
/// made with other parameters verify as before: the PHC string carries them.
fn new_hash_params() -> Params {
    Params::new(12 * 1024, 3, 1, None).unwrap_or_default()
}

/// An argon2id PHC string for the password (random salt).
pub async fn hash(password: String) -> anyhow::Result<String> {
    Pool::get()
        .run(move |mem| {
            let salt = SaltString::generate(&mut OsRng);
            let params = new_hash_params();
            let argon = Argon2::new(Algorithm::Argon2id, Version::default(), params.clone());
            let mut salt_buf = [0u8; 64];
            let raw_salt = salt.decode_b64(&mut salt_buf).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            anyhow::ensure!(hash_into(&argon, &params, password.as_bytes(), raw_salt, &mut out, mem), "hashing failed");
            let output = Output::new(&out).map_err(|e| anyhow::anyhow!("hash output: {e}"))?;
            let encoded = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::default().into()),
                params: (&params).try_into().map_err(|e| anyhow::anyhow!("params: {e}"))?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            };
            Ok(encoded.to_string())
        })
        .await?
}

/// Whether the password matches the PHC string. A malformed hash never matches.
pub async fn verify(password: String, phc: String) -> Result<bool, Busy> {
    Pool::get().run(move |mem| verify_in(password.as_bytes(), &phc, mem)).await
}

/// The PHC string an unknown user's login is checked against, so that it costs exactly
/// what a known user's does and timing does not tell which usernames exist.
pub async fn dummy_hash() -> Result<String, Busy> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(p) = DUMMY.get() {
        return Ok(p.clone());
    }
    let p = hash(random_secret("")).await.map_err(|_| Busy)?;
    Ok(DUMMY.get_or_init(|| p).clone())
}

/// A random secret: `prefix` + 32 random bytes, base64url.
pub fn random_secret(prefix: &str) -> String {
    let mut buf = [0u8; 32];
    // SystemRandom only fails if the OS RNG is unavailable, which is unrecoverable.
    if SystemRandom::new().fill(&mut buf).is_err() {
        panic!("operating system random number generator unavailable");
    }
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf))
}

/// How tokens (API and refresh) are stored: hex SHA-256 of the secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    /// After a burst that gives every pool thread a buffer, an idle pool gives them all
    /// back (the old shared-receiver pool kept one for good). Other tests of this binary
    /// may hash meanwhile, so this waits for the count to reach zero, well past
    /// `KEEP_BUFFER`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_pool_gives_every_buffer_back() {
        let burst: Vec<_> = (0..8).map(|i| tokio::spawn(hash(format!("burst {i}")))).collect();
        for h in burst {
            h.await.unwrap().unwrap();
        }
        assert!(BUFFERS_HELD.load(Ordering::Relaxed) > 0, "the burst left buffers to give back");
        let deadline = std::time::Instant::now() + KEEP_BUFFER * 8;
        while BUFFERS_HELD.load(Ordering::Relaxed) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} argon2 buffers still held",
                BUFFERS_HELD.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("s3cret".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{h}");
        assert_eq!(verify("s3cret".into(), h.clone()).await, Ok(true));
        assert_eq!(verify("wrong".into(), h).await, Ok(false));
        assert_eq!(verify("x".into(), "not a hash".into()).await, Ok(false));
    }

    #[tokio::test]
    async fn verifies_hashes_made_by_the_argon2_crate() {
        // Hashes stored before the pool existed were made by `hash_password`.
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default().hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(verify("pw".into(), phc.clone()).await, Ok(true));
        assert_eq!(verify("pW".into(), phc).await, Ok(false));
        // Other parameters (more memory than the default) verify too.
        let params = Params::new(32 * 1024, 1, 1, None).unwrap();
        let phc =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(verify("pw".into(), phc).await, Ok(true));
    }

    use std::sync::{Arc, Mutex, mpsc::Receiver};

    #[tokio::test]
    async fn a_full_pool_refuses_at_once() {
        let pool = Arc::new(Pool::start(PoolSize { workers: 1, queue: 1 }));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let blocked = |hold: Arc<Mutex<Receiver<()>>>, pool: Arc<Pool>| {
            tokio::spawn(async move {
                pool.run(move |_| {
                    let _ = hold.lock().map(|h| h.recv());
                })
                .await
            })
        };
        // One job runs (held), one waits in the queue, and a third is refused at once.
        let first = blocked(Arc::clone(&hold), Arc::clone(&pool));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let second = blocked(Arc::clone(&hold), Arc::clone(&pool));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(pool.run(|_| ()).await, Err(Busy));
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(()));
        assert_eq!(second.await.unwrap(), Ok(()));
        assert_eq!(pool.run(|_| 7).await, Ok(7));
    }

    #[test]
    fn secrets_are_random() {
        let a = random_secret("t_");
        assert!(a.starts_with("t_") && a.len() > 40);
        assert_ne!(a, random_secret("t_"));
        assert_eq!(secret_hash("abc").len(), 64);
    }
}

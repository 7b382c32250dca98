//! Registry semantics on top of storage and the database: which blob is visible through
//! which repository, upload sessions, manifests and tags. Nothing here sees HTTP types;
//! callers pass validated identifiers and get [`RegistryError`]s back.

mod blobs;
mod cache;
mod catalog;
mod fsck;
mod gc;
mod hashing;
mod manifests;
mod mark;
pub mod policy;
mod uploads;

pub use blobs::BlobData;
pub use fsck::FsckReport;
pub use gc::{Checkpoint, GcOptions, GcReport, PauseHook};
pub use manifests::{ManifestOut, PutOutcome};
pub use uploads::UploadState;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{
    db::{
        Db,
        repos::{self, Resolved},
        writer::{AfterCommit, Writer},
    },
    names::RepoName,
    storage::{BlobStore, StorageBusy},
};

/// Who is acting, from a verified token: its subject and issue time (a token older than a
/// collection grants nothing in it).
#[derive(Clone, Debug)]
pub struct Caller {
    pub sub: String,
    pub iat: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("repository unknown")]
    NameUnknown,
    /// The token's grants are void here (its collection was recreated after it was issued).
    #[error("access denied")]
    Denied,
    #[error("manifest unknown")]
    ManifestUnknown,
    #[error("blob unknown")]
    BlobUnknown,
    #[error("upload unknown")]
    UploadUnknown,
    #[error("digest invalid: {0}")]
    DigestInvalid(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    /// A push would move, or a delete remove, a tag its collection's policy makes immutable.
    #[error("tag {0} is immutable")]
    TagImmutable(String),
    #[error("manifest references unknown blob {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest larger than {0} bytes")]
    ManifestTooLarge(usize),
    #[error("chunk out of order; upload is at {offset}")]
    RangeInvalid { offset: u64 },
    #[error("size invalid: {0}")]
    SizeInvalid(String),
    #[error("reading request body: {0}")]
    BodyRead(BoxError),
    /// The store cannot take the request now (no upload buffer space): retry after this
    /// many seconds.
    #[error("storage busy; retry after {0} s")]
    Busy(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> Self {
        RegistryError::Internal(e.into())
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        match StorageBusy::find(&e) {
            Some(busy) => RegistryError::Busy(busy.retry_after),
            None => RegistryError::Internal(e.into()),
        }
    }
}

pub type Result<T> = std::result::Result<T, RegistryError>;

/// The registry: metadata plus blob storage, reached only through its methods.
pub struct Registry {
    db: Db,
    store: BlobStore,
    pub max_manifest_bytes: usize,
    /// Upload sessions with a request in flight in this process; a second concurrent
    /// writer to the same session is refused rather than interleaved.
    busy_uploads: Mutex<HashSet<String>>,
    manifest_cache: Arc<cache::ManifestCache>,
    /// Every manifest and tag write goes through it (group commit).
    writer: Writer,
}

impl Registry {
    /// The repository's id for reading.
    pub(crate) async fn repo_id(&self, caller: &Caller, repo: &RepoName) -> Result<i64> {
        match repos::resolve_for(&self.db, repo.as_str(), caller.iat).await? {
            Resolved::Found(id) => Ok(id),
            Resolved::Absent => Err(RegistryError::NameUnknown),
            Resolved::TooNew => Err(RegistryError::Denied),
        }
    }

    /// The repository's id for writing, creating it inside its (existing) collection.
    pub(crate) async fn ensure_repo(&self, caller: &Caller, repo: &RepoName) -> Result<i64> {
        match repos::ensure(&self.db, repo.as_str(), repo.collection().as_str(), caller.iat).await? {
            Resolved::Found(id) => Ok(id),
            Resolved::Absent => Err(RegistryError::NameUnknown),
            Resolved::TooNew => Err(RegistryError::Denied),
        }
    }

    /// A registry without a manifest cache (see [`Registry::with_manifest_cache`]).
    pub fn new(db: Db, store: BlobStore, max_manifest_bytes: usize) -> Registry {
        Registry {
            store,
            max_manifest_bytes,
            busy_uploads: Mutex::new(HashSet::new()),
            manifest_cache: Arc::new(cache::ManifestCache::new(0, Duration::ZERO)),
            writer: Writer::new(db.clone()),
            db,
        }
    }

    /// Serves manifest reads from memory (`max_bytes` in all), trusting a tag read from the
    /// database for at most `ttl` (see `cache.rs`).
    #[must_use]
    pub fn with_manifest_cache(mut self, max_bytes: usize, ttl: Duration) -> Registry {
        self.manifest_cache = Arc::new(cache::ManifestCache::new(max_bytes, ttl));
        self
    }

    /// Drops the cached reads of `repo` once a write there was committed (or failed).
    fn invalidate_after(&self, repo: &RepoName) -> AfterCommit {
        let (cache, repo) = (Arc::clone(&self.manifest_cache), repo.to_string());
        Box::new(move || cache.invalidate(&repo))
    }

    /// The smallest chunk clients should send (`OCI-Chunk-Min-Length`), if the store has one.
    pub fn chunk_min_length(&self) -> Option<usize> {
        self.store.chunk_min_length()
    }

    /// Whether the database answers (readiness).
    pub async fn database_ready(&self) -> std::result::Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.db.pool).await.map(drop)
    }

    /// Whether the blob store answers (readiness).
    pub async fn storage_ready(&self) -> std::io::Result<()> {
        self.store.ready().await
    }
}

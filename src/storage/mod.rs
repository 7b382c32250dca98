//! Blob storage behind one interface, [`BlobStore`], in terms of what the registry needs:
//! open a session and append to it ([`UploadWriter`]), seal and [`commit`](BlobStore::commit)
//! it under its digest, [`open`](BlobStore::open) a stored blob at a [`Location`],
//! [`remove`](BlobStore::remove) one, and list what lies around for GC and fsck. Each
//! backend owns its keys and its publish protocol; the registry never asks which backend
//! it talks to. The database records a [`Location`] as an opaque string (or nothing).
//!
//! One function ([`Key::path`]) formats every storage key:
//!
//! ```text
//! <root or bucket prefix>/
//! ├── blobs/<alg>/<first 2 hex>/<hex>   filesystem: verified, immutable content
//! ├── uploads/<uuid>/data               filesystem: bytes of an upload session in progress
//! ├── uploads/<uuid>                    S3: the session's multipart upload, and after
//! │                                     completion the blob itself (no copy)
//! ├── uploads/<uuid>.tails/<nonce>      S3: bytes not yet in a part (see `s3`)
//! └── trash/<alg>-<hex>-<nonce>         filesystem: a blob a collection pass is deleting
//! ```
//!
//! Storage only maps keys to bytes; which blob is visible where, and upload offsets and
//! hash states, live in the database (see `crate::registry`).

mod fs;
mod inventory;
mod keys;
mod s3;
mod session;

use std::{future::Future, io};

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::{
    config::{Config, StorageKind},
    digest::Digest,
};
use fs::FsStore;
pub use inventory::{ObjectKind, StaleSession, StoredFile, StoredObject, TrashFile};
pub use keys::Key;
use s3::{S3Error, S3Store};
pub use session::{Sealed, SessionLock, UploadWriter};

/// The store has no room for this request now (all of `storage.s3.buffer_budget_mib` is in
/// use, and none came free within `storage.s3.buffer_wait_secs`): try again later.
#[derive(Debug, thiserror::Error)]
#[error("storage is busy: no upload buffer space came free; retry in {retry_after} s")]
pub struct StorageBusy {
    pub retry_after: u64,
}

impl StorageBusy {
    /// The [`StorageBusy`] somewhere in an error's chain of sources, if any.
    pub fn find(e: &io::Error) -> Option<&StorageBusy> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
        while let Some(c) = cause {
            if let Some(busy) = c.downcast_ref::<StorageBusy>() {
                return Some(busy);
            }
            cause = c.source();
        }
        None
    }
}

/// A stream of a blob's bytes.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// The configured blob store.
///
/// A closed set of backends behind a private enum rather than a `dyn` trait: async methods
/// are not object-safe without boxing every call, and the dispatch stays in this file.
#[derive(Clone, Debug)]
pub struct BlobStore {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Fs(FsStore),
    S3(S3Store),
}

/// Where a committed blob's bytes are. The database keeps [`Location::record`] beside the
/// digest and gives it back to [`Location::from_record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location(Place);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    /// Filesystem: the digest names the file.
    File(Digest),
    /// S3: the object key (without the configured prefix).
    Object(String),
}

impl Location {
    /// The location of a blob row: its digest and what [`Self::record`] gave.
    pub fn from_record(digest: &Digest, record: Option<String>) -> Location {
        Location(match record {
            Some(key) => Place::Object(key),
            None => Place::File(digest.clone()),
        })
    }

    /// What the database records for this location (nothing where the digest suffices).
    pub fn record(&self) -> Option<&str> {
        match &self.0 {
            Place::File(_) => None,
            Place::Object(key) => Some(key),
        }
    }
}

/// What [`BlobStore::remove`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// The bytes are gone (or were not there).
    Removed,
    /// A push put the blob back meanwhile: the bytes stay.
    Kept,
    /// The bytes may still be read by a request that found them first; hand the record to
    /// [`BlobStore::purge`] later. (An S3 object is never written again, so a late delete
    /// cannot hit a newer push.)
    Deferred(String),
}

fn s3_io(e: S3Error) -> io::Error {
    io::Error::other(e)
}

fn other(what: &str) -> io::Error {
    io::Error::other(format!("storage: {what}"))
}

impl BlobStore {
    pub async fn open_configured(config: &Config) -> anyhow::Result<BlobStore> {
        let backend = match config.storage.kind {
            StorageKind::Filesystem => Backend::Fs(FsStore::open(&config.data_dir).await?),
            StorageKind::S3 => Backend::S3(S3Store::open(&config.storage.s3).await?),
        };
        Ok(BlobStore { backend })
    }

    /// The smallest chunk clients should send (`OCI-Chunk-Min-Length`), if any.
    pub fn chunk_min_length(&self) -> Option<usize> {
        match &self.backend {
            Backend::Fs(_) => None,
            Backend::S3(_) => Some(s3::MIN_PART),
        }
    }

    /// Whether the store answers (readiness): the blob directory is there, or the bucket
    /// answers (and, with `check_on_start`, passed the write check).
    pub async fn ready(&self) -> io::Result<()> {
        match &self.backend {
            Backend::Fs(fs) => fs.ready().await,
            Backend::S3(s3) => s3.ready().await,
        }
    }

    // ----- stored blobs -----

    /// Whether a recorded blob has its bytes in place (on the filesystem the row is written
    /// just before the file moves in; an S3 object is complete before its row exists).
    pub async fn contains(&self, location: &Location) -> io::Result<bool> {
        match (&self.backend, &location.0) {
            (Backend::Fs(fs), Place::File(digest)) => fs.blob_exists(digest).await,
            (Backend::S3(_), Place::Object(_)) => Ok(true),
            _ => Ok(false),
        }
    }

    /// `len` bytes of a blob from `start`; `None` if it is not stored.
    pub async fn open(&self, location: &Location, start: u64, len: u64) -> io::Result<Option<ByteStream>> {
        match (&self.backend, &location.0) {
            (Backend::Fs(fs), Place::File(digest)) => fs.read_blob(digest, start, len).await,
            (Backend::S3(s3), Place::Object(key)) => match s3.read(key, start, len).await {
                Ok(stream) => Ok(Some(stream)),
                Err(S3Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3_io(e)),
            },
            _ => Ok(None),
        }
    }

    /// A blob's stored bytes for fsck: on the filesystem one byte more than recorded, to
    /// see a file that grew.
    pub async fn open_for_check(&self, location: &Location, size: u64) -> io::Result<Option<ByteStream>> {
        let len = if let Backend::Fs(_) = &self.backend { size + 1 } else { size };
        self.open(location, 0, len).await
    }

    /// A short-lived URL a client may fetch the blob from directly, if the store is set to
    /// redirect (S3 with `redirect = true`); `None` otherwise.
    pub async fn redirect_url(&self, location: &Location) -> io::Result<Option<String>> {
        match (&self.backend, &location.0) {
            (Backend::S3(s3), Place::Object(key)) => s3.redirect_url(key).await.map_err(s3_io),
            _ => Ok(None),
        }
    }

    /// Removes a blob whose row is gone. `pushed_again` says whether a push recreated the
    /// row meanwhile; on the filesystem (one file per digest) the bytes are first moved
    /// aside, then restored if it says so. On S3 the removal is deferred.
    pub async fn remove<F, Fut, E>(&self, location: &Location, pushed_again: F) -> Result<Removal, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<bool, E>>,
        E: From<io::Error>,
    {
        match (&self.backend, &location.0) {
            (Backend::Fs(fs), Place::File(digest)) => {
                // The nonce keeps two collectors (or a collector and fsck) apart.
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                if !fs.trash_blob(digest, &nonce).await? {
                    return Ok(Removal::Removed);
                }
                if pushed_again().await? {
                    fs.restore_blob(digest, &nonce).await?;
                    return Ok(Removal::Kept);
                }
                fs.delete_trash(digest, &nonce).await?;
                Ok(Removal::Removed)
            }
            (_, Place::Object(key)) => Ok(Removal::Deferred(key.clone())),
            (Backend::S3(_), Place::File(_)) => Ok(Removal::Removed),
        }
    }

    /// Finishes a [`Removal::Deferred`].
    pub async fn purge(&self, record: &str) -> io::Result<()> {
        match &self.backend {
            Backend::Fs(_) => Ok(()),
            Backend::S3(s3) => s3.delete(record).await.map_err(s3_io),
        }
    }

    /// Drops bytes fsck found corrupt, so that a new push of the blob can publish its own
    /// (on S3 every push has its own object: nothing to do).
    pub async fn drop_corrupt(&self, location: &Location) -> io::Result<()> {
        match (&self.backend, &location.0) {
            (Backend::Fs(fs), Place::File(digest)) => fs.remove_stray(&Key::Blob(digest).path()).await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_round_trips_through_its_record() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        let file = Location::from_record(&d, None);
        assert_eq!(file.record(), None);
        assert_eq!(Location::from_record(&d, file.record().map(str::to_owned)), file);
        let object = Location::from_record(&d, Some("uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11".into()));
        assert_eq!(object.record(), Some("uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11"));
        assert_ne!(object, file);
    }
}

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
mod keys;
mod s3;

use std::{future::Future, io, time::Duration};

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::{
    config::{Config, StorageKind},
    digest::Digest,
    names::UploadId,
};
use fs::{FsLock, FsStore, FsWriter};
pub use keys::Key;
use s3::{S3Error, S3Store, S3Writer};

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

/// A session taken for one request (see [`BlobStore::take_session`]).
pub struct SessionLock(Option<FsLock>);

/// Appends to one upload session.
pub struct UploadWriter(Writer);

enum Writer {
    Fs(FsWriter, UploadId),
    S3(S3Writer),
}

/// A session whose bytes are complete and readable, not yet visible under a digest:
/// [`BlobStore::commit`] publishes it, [`BlobStore::discard`] drops it.
pub struct Sealed(Seal);

enum Seal {
    File(UploadId),
    Object(String),
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

/// Session storage untouched for a while; the caller knows whether a session owns it.
#[derive(Debug)]
pub struct StaleSession {
    pub id: UploadId,
    /// The S3 multipart upload id (none on the filesystem).
    multipart: Option<String>,
}

/// A file under the blob tree (fsck).
#[derive(Debug)]
pub struct StoredFile {
    /// Relative to the store's root.
    pub path: String,
    /// The blob whose place it is in, if it is where one would be.
    pub blob: Option<(Digest, Location)>,
}

/// A blob a collection pass set aside and did not finish with (fsck).
#[derive(Debug)]
pub struct TrashFile {
    pub path: String,
    /// The blob it was, if its name is one the collector makes.
    pub blob: Option<Digest>,
    nonce: Option<String>,
}

fn s3_io(e: S3Error) -> io::Error {
    io::Error::other(e)
}

fn other(what: &str) -> io::Error {
    io::Error::other(format!("storage: {what}"))
}

impl UploadWriter {
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.0 {
            Writer::Fs(w, _) => w.write(data).await,
            Writer::S3(w) => w.write(data).await.map_err(s3_io),
        }
    }

    /// Makes everything written so far durable; returns the store's session state to
    /// record with the offset (`None`: nothing beyond the offset).
    pub async fn checkpoint(&mut self) -> io::Result<Option<String>> {
        match &mut self.0 {
            Writer::Fs(w, _) => w.sync().await.map(|()| None),
            Writer::S3(w) => {
                let state = w.checkpoint().await.map_err(s3_io)?;
                serde_json::to_string(&state).map(Some).map_err(io::Error::other)
            }
        }
    }

    /// After the state of the last checkpoint was recorded: drops what it superseded.
    pub async fn committed(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Writer::Fs(..) => Ok(()),
            Writer::S3(w) => w.committed().await.map_err(s3_io),
        }
    }
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

    // ----- upload sessions -----

    /// Starts a session's storage; returns its initial state to record.
    pub async fn create_session(&self, id: &UploadId) -> io::Result<Option<String>> {
        match &self.backend {
            Backend::Fs(fs) => fs.upload_create(id).await.map(|()| None),
            Backend::S3(s3) => {
                let state = s3.upload_create(id).await.map_err(s3_io)?;
                serde_json::to_string(&state).map(Some).map_err(io::Error::other)
            }
        }
    }

    /// Takes the session's storage for one request, before its offset is read: on the
    /// filesystem an exclusive `flock` on its file (`WouldBlock` if another request, in any
    /// process, holds it), creating the file if it is missing. On S3 the registry's
    /// per-process guard and the conditional offset update stand in for a lock.
    pub async fn take_session(&self, id: &UploadId) -> io::Result<SessionLock> {
        match &self.backend {
            Backend::Fs(fs) => fs.upload_lock(id).await.map(|l| SessionLock(Some(l))),
            Backend::S3(_) => Ok(SessionLock(None)),
        }
    }

    /// A writer continuing the session at its recorded `offset` and `state`; `None` when
    /// the store holds less than the recorded offset (the session's bytes are lost).
    pub async fn resume(
        &self,
        lock: SessionLock,
        id: &UploadId,
        offset: u64,
        state: Option<&str>,
    ) -> io::Result<Option<UploadWriter>> {
        match (&self.backend, lock.0) {
            (Backend::Fs(_), Some(lock)) => {
                Ok(lock.into_writer(offset).await?.map(|w| UploadWriter(Writer::Fs(w, id.clone()))))
            }
            (Backend::Fs(_), None) => Err(other("filesystem upload without its lock")),
            (Backend::S3(s3), _) => match s3.upload_writer(id, s3::state_of(state)?).await {
                Ok(w) => Ok(Some(UploadWriter(Writer::S3(w)))),
                // The recorded tail is gone: the session completed, or its bytes are lost.
                Err(S3Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3_io(e)),
            },
        }
    }

    /// Whether the store still holds the session's first `offset` bytes.
    pub async fn session_holds(&self, id: &UploadId, offset: u64) -> io::Result<bool> {
        match &self.backend {
            Backend::Fs(fs) => fs.upload_holds(id, offset).await,
            // Parts and tail are recorded with the offset; a lost one shows when written.
            Backend::S3(_) => Ok(true),
        }
    }

    /// Drops a session's bytes (`state` as recorded; `None` if no state is known).
    pub async fn drop_session(&self, id: &UploadId, state: Option<&str>) -> io::Result<()> {
        match &self.backend {
            Backend::Fs(fs) => fs.upload_delete(id).await,
            Backend::S3(s3) => match s3::state_of(state) {
                Ok(state) => s3.upload_abort(id, &state).await.map_err(s3_io),
                Err(_) => Ok(()),
            },
        }
    }

    /// Session storage untouched for `age` (upload directories; S3 multipart uploads under
    /// the prefix). The caller drops, with [`Self::drop_stale`], those no session owns.
    pub async fn stale_sessions(&self, age: Duration) -> io::Result<Vec<StaleSession>> {
        match &self.backend {
            Backend::Fs(fs) => Ok(fs
                .stale_upload_dirs(age)
                .await?
                .into_iter()
                .map(|id| StaleSession { id, multipart: None })
                .collect()),
            Backend::S3(s3) => s3.stale_multiparts(age).await.map_err(s3_io),
        }
    }

    pub async fn drop_stale(&self, stale: &StaleSession) -> io::Result<()> {
        match (&self.backend, &stale.multipart) {
            (Backend::Fs(fs), _) => fs.upload_delete(&stale.id).await,
            (Backend::S3(s3), Some(multipart)) => s3.abort_stale(&stale.id, multipart).await.map_err(s3_io),
            (Backend::S3(_), None) => Ok(()),
        }
    }

    // ----- publishing -----

    /// Makes the session's bytes complete and readable, not yet under a digest: on the
    /// filesystem the buffer goes to the file; on S3 the last part is sent and the multipart
    /// upload completed. `None` if the session was completed before (a crash between
    /// completing and removing the session).
    pub async fn seal(&self, writer: UploadWriter) -> io::Result<Option<Sealed>> {
        match writer.0 {
            Writer::Fs(mut w, id) => {
                // Not fsynced here: committing fsyncs the file before its rename.
                w.flush().await?;
                Ok(Some(Sealed(Seal::File(id))))
            }
            Writer::S3(w) => match w.finish().await {
                Ok(key) => Ok(Some(Sealed(Seal::Object(key)))),
                Err(S3Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3_io(e)),
            },
        }
    }

    /// The sealed bytes, to hash again with another algorithm (the only re-read).
    pub async fn read_sealed(&self, sealed: &Sealed, size: u64) -> io::Result<ByteStream> {
        match (&self.backend, &sealed.0) {
            (Backend::Fs(fs), Seal::File(id)) => fs.upload_stream(id).await,
            (Backend::S3(s3), Seal::Object(key)) => s3.read(key, 0, size).await.map_err(s3_io),
            _ => Err(other("sealed upload of another store")),
        }
    }

    /// Drops sealed bytes whose digest did not verify.
    pub async fn discard(&self, sealed: Sealed) -> io::Result<()> {
        match (&self.backend, sealed.0) {
            (Backend::Fs(fs), Seal::File(id)) => fs.upload_delete(&id).await,
            (Backend::S3(s3), Seal::Object(key)) => s3.delete(&key).await.map_err(s3_io),
            _ => Err(other("sealed upload of another store")),
        }
    }

    /// Publishes verified bytes under `digest`. `record` writes the blob's row with the
    /// location it is given and returns the location the row holds (the first row for a
    /// digest wins). Each backend orders the two writes so that a crash or a racing
    /// collection pass in between leaves nothing wrong:
    /// - filesystem: the row first, then the rename into place. A collection pass then either
    ///   sees the row and keeps the blob, or has already trashed the old copy and this
    ///   upload's bytes move in. Until the file is there, reads answer unknown.
    /// - S3: the object is complete before its row exists; a duplicate (another upload of the
    ///   same blob recorded first) is deleted at once.
    pub async fn commit<F, Fut, E>(&self, sealed: Sealed, digest: &Digest, record: F) -> Result<Location, E>
    where
        F: FnOnce(Location) -> Fut,
        Fut: Future<Output = Result<Location, E>>,
        E: From<io::Error>,
    {
        match (&self.backend, sealed.0) {
            (Backend::Fs(fs), Seal::File(id)) => {
                let winner = record(Location(Place::File(digest.clone()))).await?;
                fs.upload_publish(&id, digest).await?;
                Ok(winner)
            }
            (Backend::S3(s3), Seal::Object(key)) => {
                let ours = Location(Place::Object(key.clone()));
                let winner = record(ours.clone()).await?;
                if winner != ours {
                    s3.delete(&key).await.map_err(s3_io)?;
                }
                Ok(winner)
            }
            _ => Err(other("sealed upload of another store").into()),
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

    // ----- inventory (fsck) -----

    /// Every file under the blob tree (filesystem; S3 objects are not listed).
    pub async fn blob_files(&self) -> io::Result<Vec<StoredFile>> {
        match &self.backend {
            Backend::Fs(fs) => Ok(fs
                .blob_files()
                .await?
                .into_iter()
                .map(|(path, digest)| StoredFile { path, blob: digest.map(|d| (d.clone(), Location(Place::File(d)))) })
                .collect()),
            Backend::S3(_) => Ok(vec![]),
        }
    }

    /// What collection passes set aside longer than `age` ago and left.
    pub async fn trash_files(&self, age: Duration) -> io::Result<Vec<TrashFile>> {
        match &self.backend {
            Backend::Fs(fs) => Ok(fs
                .trash_files(age)
                .await?
                .into_iter()
                .map(|(path, parsed)| {
                    let (blob, nonce) = parsed.map_or((None, None), |(d, n)| (Some(d), Some(n)));
                    TrashFile { path, blob, nonce }
                })
                .collect()),
            Backend::S3(_) => Ok(vec![]),
        }
    }

    /// Puts a trashed blob back (unless a push has put it in place again).
    pub async fn restore(&self, trash: &TrashFile) -> io::Result<()> {
        match (&self.backend, &trash.blob, &trash.nonce) {
            (Backend::Fs(fs), Some(digest), Some(nonce)) => fs.restore_blob(digest, nonce).await,
            _ => Err(other("not a restorable trash file")),
        }
    }

    /// Removes a file [`Self::blob_files`] or [`Self::trash_files`] found.
    pub async fn remove_file(&self, path: &str) -> io::Result<()> {
        match &self.backend {
            Backend::Fs(fs) => fs.remove_stray(path).await,
            Backend::S3(_) => Err(other("no files on S3")),
        }
    }
}

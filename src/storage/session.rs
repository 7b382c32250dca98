//! Upload sessions in the store: created, taken for one request, resumed at the recorded
//! offset, appended to and checkpointed, then sealed and committed under their digest
//! (each backend's publish protocol is in [`BlobStore::commit`]).

use std::{future::Future, io};

use super::fs::{FsLock, FsWriter};
use super::s3::{S3Error, S3Writer};
use super::{Backend, BlobStore, ByteStream, Location, Place, other, s3, s3_io};
use crate::{digest::Digest, names::UploadId};

/// A session taken for one request (see [`BlobStore::take_session`]).
pub struct SessionLock(Option<FsLock>);

/// Appends to one upload session.
pub struct UploadWriter(Writer);

enum Writer {
    Fs(FsWriter, UploadId),
    S3(Box<S3Writer>),
}

/// A session whose bytes are complete and readable, not yet visible under a digest:
/// [`BlobStore::commit`] publishes it, [`BlobStore::discard`] drops it.
pub struct Sealed(Seal);

enum Seal {
    /// The writer stays open: its `flock` keeps other processes off the session file until
    /// the file is published or dropped (they would cut it back to the recorded offset).
    File(UploadId, FsWriter),
    Object(String),
}

impl UploadWriter {
    /// Appends one frame of a body (on the filesystem kept without a copy until written).
    pub async fn write(&mut self, frame: bytes::Bytes) -> io::Result<()> {
        match &mut self.0 {
            Writer::Fs(w, _) => w.write_bytes(frame).await,
            Writer::S3(w) => w.write(&frame).await.map_err(s3_io),
        }
    }

    /// Makes everything written so far durable; returns the store's session state to
    /// record with the offset (`None`: nothing beyond the offset).
    pub async fn checkpoint(&mut self) -> io::Result<Option<String>> {
        match &mut self.0 {
            Writer::Fs(w, _) => w.checkpoint().await.map(|()| None),
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
    /// `coming`: the bytes this request will append, if known (S3 reserves buffer space for
    /// them, and may refuse with [`super::StorageBusy`]).
    pub async fn resume(
        &self,
        lock: SessionLock,
        id: &UploadId,
        offset: u64,
        state: Option<&str>,
        coming: Option<u64>,
    ) -> io::Result<Option<UploadWriter>> {
        match (&self.backend, lock.0) {
            (Backend::Fs(_), Some(lock)) => {
                Ok(lock.into_writer(offset).await?.map(|w| UploadWriter(Writer::Fs(w, id.clone()))))
            }
            (Backend::Fs(_), None) => Err(other("filesystem upload without its lock")),
            // Completed before (a crash between completing and recording the blob): no part
            // may go to a multipart upload that is no more.
            (Backend::S3(s3), _) if s3.upload_completed(id).await.map_err(s3_io)?.is_some() => Ok(None),
            (Backend::S3(s3), _) => match s3.upload_writer(id, s3::state_of(state)?, coming).await {
                Ok(w) => Ok(Some(UploadWriter(Writer::S3(Box::new(w))))),
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

    /// Makes the session's bytes complete and readable, not yet under a digest: on the
    /// filesystem the buffer goes to the file; on S3 the last part is sent and the multipart
    /// upload completed. `None` if the session was completed before (a crash between
    /// completing and removing the session).
    pub async fn seal(&self, writer: UploadWriter) -> io::Result<Option<Sealed>> {
        match writer.0 {
            Writer::Fs(mut w, id) => {
                // Not synced here: committing syncs the file before its rename (unless the
                // last checkpoint did and no byte came since).
                w.flush().await?;
                Ok(Some(Sealed(Seal::File(id, w))))
            }
            Writer::S3(w) => match w.finish().await {
                Ok(key) => Ok(Some(Sealed(Seal::Object(key)))),
                Err(S3Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3_io(e)),
            },
        }
    }

    /// A session whose storage was completed but whose blob was never recorded (S3: a crash
    /// between `CompleteMultipartUpload` and the row), sealed with its size. The filesystem
    /// never leaves one: its row is written before the file moves into place.
    pub async fn completed_session(&self, id: &UploadId) -> io::Result<Option<(Sealed, u64)>> {
        match &self.backend {
            Backend::Fs(_) => Ok(None),
            Backend::S3(s3) => {
                Ok(s3.upload_completed(id).await.map_err(s3_io)?.map(|(key, size)| (Sealed(Seal::Object(key)), size)))
            }
        }
    }

    /// The sealed bytes, to hash again with another algorithm (the only re-read).
    pub async fn read_sealed(&self, sealed: &Sealed, size: u64) -> io::Result<ByteStream> {
        match (&self.backend, &sealed.0) {
            (Backend::Fs(fs), Seal::File(id, _)) => fs.upload_stream(id).await,
            (Backend::S3(s3), Seal::Object(key)) => s3.read(key, 0, size).await.map_err(s3_io),
            _ => Err(other("sealed upload of another store")),
        }
    }

    /// Drops sealed bytes whose digest did not verify.
    pub async fn discard(&self, sealed: Sealed) -> io::Result<()> {
        match (&self.backend, sealed.0) {
            (Backend::Fs(fs), Seal::File(id, _lock)) => fs.upload_delete(&id).await,
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
            (Backend::Fs(fs), Seal::File(id, mut writer)) => {
                let winner = record(Location(Place::File(digest.clone()))).await?;
                fs.upload_publish(&id, digest, &mut writer).await?;
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
}

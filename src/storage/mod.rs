//! Blob storage. One function ([`Key::path`]) formats every storage key:
//!
//! ```text
//! <root>/
//! ├── blobs/<alg>/<first 2 hex>/<hex>   verified, immutable content
//! ├── uploads/<uuid>/data               bytes of an upload session in progress
//! └── trash/<alg>-<hex>-<nonce>         a blob garbage collection is about to delete
//! ```
//!
//! On S3 the same keys are used under the configured prefix, except that a completed blob
//! stays at its upload's key (`uploads/<uuid>`, no copy) and the database records it.
//!
//! Storage only maps keys to bytes; which blob is visible where, and upload offsets and
//! hash states, live in the database (see `crate::registry`).

mod fs;
pub mod s3;

use std::io;

use bytes::Bytes;
pub use fs::{FsLock, FsStore, FsWriter};
use futures_util::stream::BoxStream;
pub use s3::{S3Store, S3Upload, S3Writer};

use crate::{
    config::{Config, StorageKind},
    digest::Digest,
    names::UploadId,
};

/// The configured blob store.
#[derive(Clone, Debug)]
pub enum BlobStore {
    Fs(FsStore),
    S3(S3Store),
}

/// A session taken for one request (see [`BlobStore::upload_lock`]).
pub enum UploadLock {
    Fs(FsLock),
    /// On S3 the per-process guard and the conditional offset update stand in for a lock.
    S3,
}

/// Appends to one upload session.
pub enum UploadWriter {
    Fs(FsWriter),
    S3(S3Writer),
}

fn s3_io(e: s3::S3Error) -> io::Error {
    io::Error::other(e)
}

fn state_of(json: Option<&str>) -> io::Result<S3Upload> {
    serde_json::from_str(json.unwrap_or("")).map_err(|e| io::Error::other(format!("bad S3 upload state: {e}")))
}

impl UploadWriter {
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            UploadWriter::Fs(w) => w.write(data).await,
            UploadWriter::S3(w) => w.write(data).await.map_err(s3_io),
        }
    }

    /// After the state of the last checkpoint was recorded: drops what it superseded.
    pub async fn committed(&mut self) -> io::Result<()> {
        match self {
            UploadWriter::Fs(_) => Ok(()),
            UploadWriter::S3(w) => w.committed().await.map_err(s3_io),
        }
    }

    /// Makes everything written so far durable; returns the store's session state to
    /// record with the offset (`None`: nothing beyond the offset).
    pub async fn checkpoint(&mut self) -> io::Result<Option<String>> {
        match self {
            UploadWriter::Fs(w) => w.sync().await.map(|()| None),
            UploadWriter::S3(w) => {
                let state = w.checkpoint().await.map_err(s3_io)?;
                serde_json::to_string(&state).map(Some).map_err(io::Error::other)
            }
        }
    }
}

impl BlobStore {
    pub async fn open(config: &Config) -> anyhow::Result<BlobStore> {
        Ok(match config.storage.kind {
            StorageKind::Filesystem => BlobStore::Fs(FsStore::open(&config.data_dir).await?),
            StorageKind::S3 => BlobStore::S3(S3Store::new(&config.storage.s3)?),
        })
    }

    /// The smallest chunk clients should send (`OCI-Chunk-Min-Length`), if any.
    pub fn chunk_min_length(&self) -> Option<usize> {
        match self {
            BlobStore::Fs(_) => None,
            BlobStore::S3(_) => Some(s3::MIN_PART),
        }
    }

    /// Starts a session's storage; returns its initial state to record.
    pub async fn upload_create(&self, id: &UploadId) -> io::Result<Option<String>> {
        match self {
            BlobStore::Fs(fs) => fs.upload_create(id).await.map(|()| None),
            BlobStore::S3(s3) => {
                let state = s3.upload_create(id).await.map_err(s3_io)?;
                serde_json::to_string(&state).map(Some).map_err(io::Error::other)
            }
        }
    }

    /// Takes the session's storage for one request, before its offset is read: on the
    /// filesystem an exclusive `flock` on its file (`WouldBlock` if another request, in any
    /// process, holds it), creating the file if it is missing.
    pub async fn upload_lock(&self, id: &UploadId) -> io::Result<UploadLock> {
        match self {
            BlobStore::Fs(fs) => fs.upload_lock(id).await.map(UploadLock::Fs),
            BlobStore::S3(_) => Ok(UploadLock::S3),
        }
    }

    /// A writer continuing the session at its recorded `offset` and `state`; `None` when
    /// the store holds less than the recorded offset (the session's bytes are lost).
    pub async fn upload_writer(
        &self,
        lock: UploadLock,
        id: &UploadId,
        offset: u64,
        state: Option<&str>,
    ) -> io::Result<Option<UploadWriter>> {
        match (self, lock) {
            (BlobStore::Fs(_), UploadLock::Fs(lock)) => Ok(lock.into_writer(offset).await?.map(UploadWriter::Fs)),
            (BlobStore::S3(s3), _) => match s3.upload_writer(id, state_of(state)?).await {
                Ok(w) => Ok(Some(UploadWriter::S3(w))),
                // The recorded tail is gone: the session completed, or its bytes are lost.
                Err(s3::S3Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3_io(e)),
            },
            (BlobStore::Fs(_), UploadLock::S3) => Err(io::Error::other("filesystem upload without its lock")),
        }
    }

    /// Whether the store still holds the session's first `offset` bytes.
    pub async fn upload_holds(&self, id: &UploadId, offset: u64) -> io::Result<bool> {
        match self {
            BlobStore::Fs(fs) => fs.upload_holds(id, offset).await,
            // Parts and tail are recorded with the offset; a lost one shows when written.
            BlobStore::S3(_) => Ok(true),
        }
    }

    /// Drops a session's bytes.
    pub async fn upload_delete(&self, id: &UploadId, state: Option<&str>) -> io::Result<()> {
        match self {
            BlobStore::Fs(fs) => fs.upload_delete(id).await,
            BlobStore::S3(s3) => match state_of(state) {
                Ok(state) => s3.upload_abort(id, &state).await.map_err(s3_io),
                Err(_) => Ok(()),
            },
        }
    }

    /// Whether a blob recorded in the database has its bytes in place. On the filesystem
    /// the row is written just before the file is moved in; on S3 an object is complete
    /// before its row exists.
    pub async fn blob_in_place(&self, digest: &Digest, key: Option<&str>) -> io::Result<bool> {
        match self {
            BlobStore::Fs(fs) => fs.blob_exists(digest).await,
            BlobStore::S3(_) => Ok(key.is_some()),
        }
    }

    /// `len` bytes of a blob from `start`; `None` if it is not stored.
    pub async fn read_blob(
        &self,
        digest: &Digest,
        key: Option<&str>,
        start: u64,
        len: u64,
    ) -> io::Result<Option<BoxStream<'static, io::Result<Bytes>>>> {
        match (self, key) {
            (BlobStore::Fs(fs), _) => fs.read_blob(digest, start, len).await,
            (BlobStore::S3(s3), Some(key)) => match s3.read(key, start, len).await {
                Ok(stream) => Ok(Some(stream)),
                Err(s3::S3Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3_io(e)),
            },
            (BlobStore::S3(_), None) => Ok(None),
        }
    }

    /// Moves a verified filesystem upload into place under its digest (no-op on S3, where
    /// completing the multipart upload already placed it).
    pub async fn publish_file(&self, id: &UploadId, digest: &Digest) -> io::Result<()> {
        match self {
            BlobStore::Fs(fs) => fs.upload_publish(id, digest).await,
            BlobStore::S3(_) => Ok(()),
        }
    }

    /// The bytes of an upload to hash again: the session file, or the completed S3 object.
    pub async fn read_upload(
        &self,
        id: &UploadId,
        key: Option<&str>,
        size: u64,
    ) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        match (self, key) {
            (BlobStore::S3(s3), Some(key)) => s3.read(key, 0, size).await.map_err(s3_io),
            (BlobStore::Fs(fs), _) => fs.upload_stream(id).await,
            (BlobStore::S3(_), None) => Err(io::Error::other("S3 upload read before completion")),
        }
    }

    /// Deletes an S3 object (a blob that lost the race for its digest, or garbage).
    pub async fn delete_object(&self, key: &str) -> io::Result<()> {
        match self {
            BlobStore::Fs(_) => Ok(()),
            BlobStore::S3(s3) => s3.delete(key).await.map_err(s3_io),
        }
    }
}

/// A storage key.
pub enum Key<'a> {
    Blob(&'a Digest),
    UploadDir(&'a UploadId),
    UploadData(&'a UploadId),
    /// A blob set aside by garbage collection; the nonce keeps two collectors apart.
    Trash(&'a Digest, &'a str),
}

impl Key<'_> {
    /// The key as a relative, `/`-separated path. The only place keys are formatted.
    pub fn path(&self) -> String {
        match self {
            Key::Blob(d) => {
                let hex = d.hex();
                format!("blobs/{}/{}/{}", d.algorithm().as_str(), &hex[..2], hex)
            }
            Key::UploadDir(id) => format!("uploads/{id}"),
            Key::UploadData(id) => format!("uploads/{id}/data"),
            Key::Trash(d, nonce) => format!("trash/{}-{}-{nonce}", d.algorithm().as_str(), d.hex()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        assert_eq!(
            Key::Blob(&d).path(),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let id: UploadId = "6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11".parse().unwrap();
        assert_eq!(Key::UploadData(&id).path(), "uploads/6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11/data");
    }
}

//! What lies around in the store beside committed blobs, for garbage collection and fsck:
//! session storage no session may own any more, files under the blob tree, and trash a
//! collection pass left behind.

use std::{io, time::Duration};

use super::{Backend, BlobStore, Location, Place, other, s3_io};
use crate::{digest::Digest, names::UploadId};

/// Session storage untouched for a while; the caller knows whether a session owns it.
#[derive(Debug)]
pub struct StaleSession {
    pub id: UploadId,
    /// The S3 multipart upload id (none on the filesystem).
    pub(in crate::storage) multipart: Option<String>,
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

impl BlobStore {
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

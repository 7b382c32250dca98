//! What lies around in the store beside committed blobs, for garbage collection and fsck:
//! session storage no session may own any more, files under the blob tree, S3 objects,
//! and trash a collection pass left behind.

use std::{io, time::Duration};

use super::{Backend, BlobStore, Key, Location, Place, other, s3_io};
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

/// An S3 object, by what its key says it is (fsck).
#[derive(Debug)]
pub struct StoredObject {
    /// Relative to the bucket prefix.
    pub key: String,
    pub kind: ObjectKind,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `uploads/<id>`: a session's multipart object, and the blob once completed.
    Upload(UploadId),
    /// `uploads/<id>.tails/<nonce>` (or the older `uploads/<id>.tail`): a session's bytes
    /// not yet in a part.
    Tail(UploadId),
    /// A probe the bucket check writes and deletes.
    Probe,
    /// Any other key (none of berth's layouts).
    Other,
}

impl ObjectKind {
    fn of(key: &str) -> ObjectKind {
        if key.starts_with(&Key::Probe("").path()) {
            return ObjectKind::Probe;
        }
        let uploads = format!("{}/", Key::UploadsRoot.path());
        let Some(rest) = key.strip_prefix(&uploads) else { return ObjectKind::Other };
        let id = rest.split(['.', '/']).next().and_then(|id| id.parse::<UploadId>().ok());
        match id {
            Some(id) if key == Key::UploadObject(&id).path() => ObjectKind::Upload(id),
            Some(id)
                if key.starts_with(&format!("{}/", Key::UploadTails(&id).path()))
                    || key == Key::UploadLegacyTail(&id).path() =>
            {
                ObjectKind::Tail(id)
            }
            _ => ObjectKind::Other,
        }
    }
}

impl BlobStore {
    /// S3 objects last modified before `cutoff` (unix seconds), probes left out; none on the
    /// filesystem (see [`Self::blob_files`]).
    pub async fn objects_before(&self, cutoff: i64) -> io::Result<Vec<StoredObject>> {
        match &self.backend {
            Backend::Fs(_) => Ok(vec![]),
            Backend::S3(s3) => Ok(s3
                .objects_before(cutoff)
                .await
                .map_err(s3_io)?
                .into_iter()
                .map(|key| StoredObject { kind: ObjectKind::of(&key), key })
                .filter(|o| o.kind != ObjectKind::Probe)
                .collect()),
        }
    }

    /// Deletes an object [`Self::objects_before`] found (gone already is fine).
    pub async fn remove_object(&self, object: &StoredObject) -> io::Result<()> {
        match &self.backend {
            Backend::S3(s3) => s3.delete(&object.key).await.map_err(s3_io),
            Backend::Fs(_) => Err(other("no objects on the filesystem")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_kinds() {
        let id = "6f1c2a52-4e0a-4a53-9a8e-0d0a1f8b7c11";
        let parsed: UploadId = id.parse().unwrap();
        for (key, kind) in [
            (format!("uploads/{id}"), ObjectKind::Upload(parsed.clone())),
            (format!("uploads/{id}.tails/0af3"), ObjectKind::Tail(parsed.clone())),
            (format!("uploads/{id}.tail"), ObjectKind::Tail(parsed.clone())),
            ("probes/abc".to_owned(), ObjectKind::Probe),
            (format!("uploads/{id}/data"), ObjectKind::Other),
            (format!("uploads/{id}.other"), ObjectKind::Other),
            ("uploads/not-an-id".to_owned(), ObjectKind::Other),
            ("blobs/sha256/e3/e3b0".to_owned(), ObjectKind::Other),
        ] {
            assert_eq!(ObjectKind::of(&key), kind, "{key}");
        }
    }
}

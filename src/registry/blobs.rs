//! Reading and unlinking blobs through a repository.

use super::{Caller, Registry, RegistryError, Result};
use crate::{
    db::{blobs, manifests, repos},
    digest::Digest,
    names::RepoName,
    storage::{ByteStream, Location},
};

/// Where a blob readable through a repository is.
pub enum BlobData {
    /// In the blob store.
    Stored { size: u64, location: Location },
    /// A manifest's bytes, kept in the database.
    Bytes(Vec<u8>),
}

impl BlobData {
    pub fn size(&self) -> u64 {
        match self {
            BlobData::Stored { size, .. } => *size,
            BlobData::Bytes(b) => b.len() as u64,
        }
    }
}

impl Registry {
    /// Size of a blob linked in the repository. A manifest of the repository also reads
    /// as a blob under its digest, as in Distribution.
    pub async fn blob_size(&self, caller: &Caller, repo: &RepoName, digest: &Digest) -> Result<u64> {
        Ok(self.open_blob(caller, repo, digest).await?.size())
    }

    /// Finds a blob linked in the repository (or a manifest's bytes).
    pub async fn open_blob(&self, caller: &Caller, repo: &RepoName, digest: &Digest) -> Result<BlobData> {
        let id = self.repo_id(caller, repo).await?;
        if let Some(blobs::StoredBlob { size, record }) = blobs::stored_in_repo(&self.db, id, digest.as_str()).await? {
            let location = Location::from_record(digest, record);
            // A row may precede its bytes (see `BlobStore::commit`).
            if !self.store.contains(&location).await? {
                return Err(RegistryError::BlobUnknown);
            }
            return Ok(BlobData::Stored { size: size as u64, location });
        }
        match manifests::get(&self.db, id, digest.as_str()).await? {
            Some(m) => Ok(BlobData::Bytes(m.content)),
            None => Err(RegistryError::BlobUnknown),
        }
    }

    /// `len` bytes from `start` of a stored blob found by [`Self::open_blob`].
    pub async fn read_blob(&self, location: &Location, start: u64, len: u64) -> Result<ByteStream> {
        // Gone between lookup and read: a collection pass took it (or fsck found it lost).
        self.store.open(location, start, len).await?.ok_or(RegistryError::BlobUnknown)
    }

    /// Where a client may fetch a stored blob directly (a short-lived presigned URL), when
    /// the store is set to redirect; `None` to stream it.
    pub async fn blob_redirect(&self, location: &Location) -> Result<Option<String>> {
        Ok(self.store.redirect_url(location).await?)
    }

    /// Unlinks a blob from the repository; its bytes stay until garbage collection.
    pub async fn delete_blob(&self, caller: &Caller, repo: &RepoName, digest: &Digest) -> Result<()> {
        let id = self.repo_id(caller, repo).await?;
        if blobs::unlink(&self.db, id, digest.as_str()).await? { Ok(()) } else { Err(RegistryError::BlobUnknown) }
    }

    /// Links a blob into `repo` if it is linked in any repository `caller` may pull
    /// (anonymous: public ones, if `public`).
    pub async fn mount_visible_blob(
        &self,
        caller: &Caller,
        repo: &RepoName,
        digest: &Digest,
        public: bool,
    ) -> Result<bool> {
        let scope = self.visibility(caller, public).await?;
        if !blobs::linked_where_visible(&self.db, digest.as_str(), &scope).await? {
            return Ok(false);
        }
        let id = self.ensure_repo(caller, repo).await?;
        Ok(blobs::link(&self.db, digest.as_str(), id).await?)
    }

    /// Links a blob from `from` into `repo` if it is linked there. `Ok(false)` when it is
    /// not (the caller then opens an ordinary upload session).
    pub async fn mount_blob(&self, caller: &Caller, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<bool> {
        let Some(from_id) = repos::resolve(&self.db, from.as_str(), caller.iat).await? else {
            return Ok(false);
        };
        if blobs::size_in_repo(&self.db, from_id, digest.as_str()).await?.is_none() {
            return Ok(false);
        }
        let id = self.ensure_repo(caller, repo).await?;
        Ok(blobs::link(&self.db, digest.as_str(), id).await?)
    }
}

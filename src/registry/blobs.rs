//! Reading and unlinking blobs through a repository.

use tokio::fs::File;

use super::{Caller, Registry, RegistryError, Result};
use crate::{
    db::{blobs, manifests, repos},
    digest::Digest,
    names::RepoName,
};

/// A blob's content: a stored file with its size, or bytes kept in the database.
pub enum BlobData {
    File(File, u64),
    Bytes(Vec<u8>),
}

impl Registry {
    /// Size of a blob linked in the repository. A manifest of the repository also reads
    /// as a blob under its digest, as in Distribution.
    pub async fn blob_size(&self, caller: &Caller, repo: &RepoName, digest: &Digest) -> Result<u64> {
        Ok(match self.find_blob(caller, repo, digest).await? {
            (size, None) => size,
            (_, Some(content)) => content.len() as u64,
        })
    }

    /// `(size, None)` for a linked blob, `(0, Some(bytes))` for a manifest.
    async fn find_blob(&self, caller: &Caller, repo: &RepoName, digest: &Digest) -> Result<(u64, Option<Vec<u8>>)> {
        let id = self.repo_id(caller, repo).await?;
        if let Some(size) = blobs::size_in_repo(&self.db, id, digest.as_str()).await? {
            // The row is written just before the file is moved into place.
            if !self.store.blob_exists(digest).await? {
                return Err(RegistryError::BlobUnknown);
            }
            return Ok((size as u64, None));
        }
        match manifests::get(&self.db, id, digest.as_str()).await? {
            Some(m) => Ok((0, Some(m.content))),
            None => Err(RegistryError::BlobUnknown),
        }
    }

    /// Opens a blob linked in the repository (or a manifest's bytes).
    pub async fn open_blob(&self, caller: &Caller, repo: &RepoName, digest: &Digest) -> Result<BlobData> {
        let size = match self.find_blob(caller, repo, digest).await? {
            (_, Some(content)) => return Ok(BlobData::Bytes(content)),
            (size, None) => size,
        };
        let file = self.store.open_blob(digest).await?.ok_or_else(|| {
            RegistryError::Internal(anyhow::anyhow!("blob {digest} is recorded but missing from storage"))
        })?;
        Ok(BlobData::File(file, size))
    }

    /// Unlinks a blob from the repository; its bytes stay until garbage collection.
    pub async fn delete_blob(&self, caller: &Caller, repo: &RepoName, digest: &Digest) -> Result<()> {
        let id = self.repo_id(caller, repo).await?;
        if blobs::unlink(&self.db, id, digest.as_str()).await? { Ok(()) } else { Err(RegistryError::BlobUnknown) }
    }

    /// Links a blob into `repo` if it is linked in any repository `scope` may pull.
    pub async fn mount_visible_blob(
        &self,
        caller: &Caller,
        repo: &RepoName,
        digest: &Digest,
        scope: &repos::CatalogScope,
    ) -> Result<bool> {
        if !blobs::linked_where_visible(&self.db, digest.as_str(), scope).await? {
            return Ok(false);
        }
        let id = self.ensure_repo(caller, repo).await?;
        blobs::link(&self.db, digest.as_str(), id).await?;
        Ok(true)
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
        blobs::link(&self.db, digest.as_str(), id).await?;
        Ok(true)
    }
}

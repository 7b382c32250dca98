//! Reading and unlinking blobs through a repository.

use tokio::fs::File;

use super::{Caller, Registry, RegistryError, Result};
use crate::{
    db::{blobs, repos},
    digest::Digest,
    names::RepoName,
};

impl Registry {
    /// Resolves a repository for reading; `NameUnknown` if absent.
    pub(super) async fn repo_id(&self, caller: &Caller, repo: &RepoName) -> Result<i64> {
        repos::resolve(&self.db, repo.as_str(), caller.iat)
            .await?
            .ok_or(RegistryError::NameUnknown)
    }

    /// Size of a blob linked in the repository.
    pub async fn blob_size(
        &self,
        caller: &Caller,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<u64> {
        let id = self.repo_id(caller, repo).await?;
        let size = blobs::size_in_repo(&self.db, id, digest.as_str())
            .await?
            .ok_or(RegistryError::BlobUnknown)?;
        Ok(size as u64)
    }

    /// Opens a blob linked in the repository, with its size.
    pub async fn open_blob(
        &self,
        caller: &Caller,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(File, u64)> {
        let size = self.blob_size(caller, repo, digest).await?;
        let file = self.store.open_blob(digest).await?.ok_or_else(|| {
            RegistryError::Internal(anyhow::anyhow!(
                "blob {digest} is recorded but missing from storage"
            ))
        })?;
        Ok((file, size))
    }

    /// Unlinks a blob from the repository; its bytes stay until garbage collection.
    pub async fn delete_blob(
        &self,
        caller: &Caller,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<()> {
        let id = self.repo_id(caller, repo).await?;
        if blobs::unlink(&self.db, id, digest.as_str()).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown)
        }
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
        let Some(id) = repos::ensure(
            &self.db,
            repo.as_str(),
            repo.collection().as_str(),
            caller.iat,
        )
        .await?
        else {
            return Err(RegistryError::NameUnknown);
        };
        blobs::link(&self.db, digest.as_str(), id).await?;
        Ok(true)
    }

    /// Links a blob from `from` into `repo` if it is linked there. `Ok(false)` when it is
    /// not (the caller then opens an ordinary upload session).
    pub async fn mount_blob(
        &self,
        caller: &Caller,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> Result<bool> {
        let Some(from_id) = repos::resolve(&self.db, from.as_str(), caller.iat).await? else {
            return Ok(false);
        };
        if blobs::size_in_repo(&self.db, from_id, digest.as_str())
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let Some(id) = repos::ensure(
            &self.db,
            repo.as_str(),
            repo.collection().as_str(),
            caller.iat,
        )
        .await?
        else {
            return Err(RegistryError::NameUnknown);
        };
        blobs::link(&self.db, digest.as_str(), id).await?;
        Ok(true)
    }
}

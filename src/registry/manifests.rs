//! Manifests and tags through a repository.

use bytes::Bytes;

use super::{Caller, Registry, RegistryError, Result, cache::Cached, policy::Policy};
use crate::{
    db::{
        self, manifests,
        repos::{self, Resolved},
        writer::Write,
    },
    digest::{Algorithm, Digest},
    manifest,
    names::{Reference, RepoName, Tag},
};

/// A stored manifest.
pub struct ManifestOut {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
}

/// The result of a manifest PUT.
pub struct PutOutcome {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

impl Registry {
    pub async fn get_manifest(&self, caller: &Caller, repo: &RepoName, reference: &Reference) -> Result<ManifestOut> {
        // The cache key: a tag or a digest (they cannot be confused: a tag has no `:`).
        let (tag, digest, key) = match reference {
            Reference::Digest(d) => (None, Some(d.as_str()), d.as_str()),
            Reference::Tag(t) => (Some(t.as_str()), None, t.as_str()),
        };
        let removals = self.db.removals();
        let m = match self.manifest_cache.get(repo.as_str(), key, removals) {
            Some(m) => m,
            None => {
                let ticket = self.manifest_cache.ticket(removals);
                // One query resolves the repository and reads the manifest (what `repo_id`
                // and a manifest read would do in two).
                let (collection_created, row) = match manifests::lookup(&self.db, repo.as_str(), tag, digest).await? {
                    manifests::Lookup::NoRepository => return Err(RegistryError::NameUnknown),
                    manifests::Lookup::Repository { collection_created, manifest } => (collection_created, manifest),
                };
                if collection_created > caller.iat {
                    return Err(RegistryError::Denied);
                }
                let row = row.ok_or(RegistryError::ManifestUnknown)?;
                let m = Cached {
                    collection_created,
                    digest: row.digest,
                    media_type: row.media_type,
                    content: Bytes::from(row.content),
                };
                self.manifest_cache.put(&ticket, repo.as_str(), key, &m);
                m
            }
        };
        // Checked on a hit as on a miss: a token older than the collection grants nothing.
        if m.collection_created > caller.iat {
            return Err(RegistryError::Denied);
        }
        let digest = m.digest.parse().map_err(|e: crate::digest::DigestError| RegistryError::Internal(e.into()))?;
        Ok(ManifestOut { digest, media_type: m.media_type, content: m.content })
    }

    /// Validates and stores a manifest; every referenced blob and child manifest must be
    /// in this repository, else nothing is stored.
    pub async fn put_manifest(
        &self,
        caller: &Caller,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
        extra_tags: &[Tag],
    ) -> Result<PutOutcome> {
        if body.len() > self.max_manifest_bytes {
            return Err(RegistryError::ManifestTooLarge(self.max_manifest_bytes));
        }
        let parsed = manifest::parse(content_type, body).map_err(RegistryError::ManifestInvalid)?;
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), body);
                if &actual != d {
                    return Err(RegistryError::DigestInvalid(format!("manifest digest is {actual}, not {d}")));
                }
                actual
            }
            Reference::Tag(_) => Digest::of(Algorithm::Sha256, body),
        };
        // A refused manifest stores nothing: an absent repository holds none of the
        // references, so one with references is refused before the repository is created;
        // in an existing one the write itself checks every reference (each blob linked and
        // not lost, each child manifest stored) and rolls back on the first missing one.
        let existing = repos::resolve_for(&self.db, repo.as_str(), caller.iat).await?;
        let first_missing = parsed.blobs.first().or(parsed.manifests.first());
        let repo_id = match (existing, first_missing) {
            (Resolved::Found(id), _) => id,
            (Resolved::TooNew, _) => return Err(RegistryError::Denied),
            (Resolved::Absent, Some(d)) => return Err(RegistryError::ManifestBlobUnknown(d.to_string())),
            (Resolved::Absent, None) => self.ensure_repo(caller, repo).await?,
        };
        let mut tags: Vec<String> = extra_tags.iter().map(|t| t.as_str().to_owned()).collect();
        if let Reference::Tag(t) = reference {
            tags.push(t.as_str().to_owned());
        }
        let policy = self.policy(repo_id).await?;
        let immutable_tags: Vec<String> =
            tags.iter().filter(|t| policy.as_ref().is_some_and(|p| p.is_immutable(t))).cloned().collect();
        let put = self
            .writer
            .put(
                manifests::NewManifest {
                    repo_id,
                    digest: digest.to_string(),
                    media_type: parsed.media_type,
                    content: body.to_vec(),
                    artifact_type: parsed.artifact_type,
                    subject: parsed.subject.as_ref().map(std::string::ToString::to_string),
                    annotations: parsed.annotations,
                    blobs: parsed.blobs.iter().map(std::string::ToString::to_string).collect(),
                    manifests: parsed.manifests.iter().map(std::string::ToString::to_string).collect(),
                    tags,
                    immutable_tags,
                },
                self.invalidate_after(repo),
            )
            .await?;
        match put {
            manifests::Put::Stored => Ok(PutOutcome { digest, subject: parsed.subject }),
            // A collection pass removed a reference between the checks above and the write.
            manifests::Put::MissingReference(d) => Err(RegistryError::ManifestBlobUnknown(d)),
            manifests::Put::TagImmutable(tag) => Err(RegistryError::TagImmutable(tag)),
        }
    }

    /// The collection policy of a repository, if it has one that applies.
    async fn policy(&self, repo_id: i64) -> Result<Option<Policy>> {
        Ok(db::policies::for_repo(&self.db, repo_id).await?.and_then(|row| Policy::compile(&row).ok()))
    }

    /// Deletes a manifest (by digest: with its tags) or just a tag.
    pub async fn delete_manifest(&self, caller: &Caller, repo: &RepoName, reference: &Reference) -> Result<()> {
        let id = self.repo_id(caller, repo).await?;
        // An immutable tag goes neither by itself nor with its manifest.
        if let Some(policy) = self.policy(id).await? {
            let tags = match reference {
                Reference::Digest(d) => manifests::tags_of(&self.db, id, d.as_str()).await?,
                Reference::Tag(t) => vec![t.as_str().to_owned()],
            };
            if let Some(tag) = tags.into_iter().find(|t| policy.is_immutable(t)) {
                return Err(RegistryError::TagImmutable(tag));
            }
        }
        let write = match reference {
            Reference::Digest(d) => Write::DeleteManifest { repo_id: id, digest: d.to_string() },
            Reference::Tag(t) => Write::DeleteTag { repo_id: id, tag: t.to_string() },
        };
        if self.writer.delete(write, self.invalidate_after(repo)).await? {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown)
        }
    }

    /// Up to `n` tags after `last`, byte-sorted, joined by commas ("" for none).
    pub async fn list_tags(&self, caller: &Caller, repo: &RepoName, last: &str, n: u32) -> Result<String> {
        let id = self.repo_id(caller, repo).await?;
        Ok(manifests::tags(&self.db, id, last, i64::from(n)).await?)
    }

    /// Manifests in the repository whose `subject` is `subject`.
    pub async fn referrers(
        &self,
        caller: &Caller,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<manifests::ReferrerRow>> {
        let id = match self.repo_id(caller, repo).await {
            Ok(id) => id,
            Err(RegistryError::NameUnknown) => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        Ok(manifests::referrers(&self.db, id, subject.as_str()).await?)
    }
}

//! `berth fsck`: re-hashes every stored blob against its digest and compares database and
//! storage both ways. With `repair`, it marks blobs whose bytes are missing or corrupt as
//! lost (reads then answer BLOB_UNKNOWN, not 500 or wrong bytes, until the blob is pushed
//! again) and deletes their corrupt bytes, and removes orphans: blob files without a row,
//! upload directories without a session, sessions whose recorded bytes are gone, and files
//! a collection pass left in `trash/`. Orphan blob files go by the collector's protocol
//! (trash, check the row again, restore if a push recreated it), so fsck may run online.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::{GcOptions, Registry, Result};
use crate::{
    db::{self, fsck},
    digest::{Digest, Hasher},
    names::UploadId,
    storage::BlobStore,
};

/// Upload directories and trash files younger than this may belong to a request or a
/// collection pass in progress: they are left alone.
const LEFTOVER_AGE: Duration = Duration::from_secs(600);

#[derive(Debug, Default, Serialize)]
pub struct FsckReport {
    pub repaired: bool,
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    /// Blobs whose bytes do not hash to their digest (or have another size).
    pub corrupt: Vec<String>,
    /// Blobs recorded in the database whose bytes are gone.
    pub missing: Vec<String>,
    /// Blobs marked lost (by this or an earlier repair), until pushed again.
    pub lost: Vec<String>,
    /// Files under `blobs/` no row accounts for.
    pub orphan_files: Vec<String>,
    /// Upload directories without a session, sessions whose bytes are gone, trash files.
    pub leftovers: Vec<String>,
    /// Manifests referencing what the repository no longer has: `repo@manifest -> child`.
    pub dangling: Vec<String>,
}

impl FsckReport {
    /// How many things are wrong (the exit status of `berth fsck` is non-zero if any).
    pub fn problems(&self) -> usize {
        self.corrupt.len()
            + self.missing.len()
            + self.lost.len()
            + self.orphan_files.len()
            + self.leftovers.len()
            + self.dangling.len()
    }
}

impl Registry {
    pub async fn fsck(&self, repair: bool, now: i64, opts: GcOptions<'_>) -> Result<FsckReport> {
        let mut report = FsckReport { repaired: repair, ..FsckReport::default() };
        self.check_blobs(repair, now, opts, &mut report).await?;
        if let BlobStore::Fs(_) = &self.store {
            self.check_blob_files(repair, &mut report).await?;
        }
        self.check_uploads(repair, &mut report).await?;
        for (repo, manifest, child) in fsck::dangling_refs(&self.db).await? {
            report.dangling.push(format!("{repo}@{manifest} -> {child}"));
        }
        Ok(report)
    }

    /// Every blob row against its bytes.
    async fn check_blobs(&self, repair: bool, now: i64, opts: GcOptions<'_>, report: &mut FsckReport) -> Result<()> {
        let total = fsck::blob_count(&self.db).await?;
        let mut after = String::new();
        loop {
            let batch = fsck::blobs(&self.db, &after, 500).await?;
            let Some((last, ..)) = batch.last() else { return Ok(()) };
            after = last.clone();
            for (digest, size, key, lost_at) in batch {
                if let Some(progress) = opts.progress {
                    let mib = report.bytes_checked >> 20;
                    progress(&format!("blob {}/{total}, {mib} MiB hashed", report.blobs_checked + 1));
                }
                report.blobs_checked += 1;
                if lost_at.is_some() {
                    report.lost.push(digest);
                    continue;
                }
                let Ok(parsed) = digest.parse::<Digest>() else {
                    report.corrupt.push(digest);
                    continue;
                };
                let Some(intact) = self.rehash_blob(&parsed, key.as_deref(), size as u64, report).await? else {
                    report.missing.push(digest);
                    if repair && fsck::mark_lost(&self.db, parsed.as_str(), now).await? {
                        report.lost.push(parsed.to_string());
                    }
                    continue;
                };
                if intact {
                    continue;
                }
                report.corrupt.push(digest);
                if repair && fsck::mark_lost(&self.db, parsed.as_str(), now).await? {
                    // A push of the blob publishes only where no file is: the bad one goes.
                    if let BlobStore::Fs(fs) = &self.store {
                        fs.remove_stray(&crate::storage::Key::Blob(&parsed).path()).await?;
                    }
                    report.lost.push(parsed.to_string());
                }
            }
        }
    }

    /// Whether the stored bytes hash to `digest` and have `size`; `None` if they are gone.
    async fn rehash_blob(
        &self,
        digest: &Digest,
        key: Option<&str>,
        size: u64,
        report: &mut FsckReport,
    ) -> Result<Option<bool>> {
        // One byte more than recorded on a file, to see one that grew.
        let len = if let BlobStore::Fs(_) = &self.store { size + 1 } else { size };
        let Some(mut stream) = self.store.read_blob(digest, key, 0, len).await? else {
            return Ok(None);
        };
        let mut hasher = Hasher::new(digest.algorithm());
        let mut read = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                // An object that vanished mid-read is as gone as one that was never there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            hasher.update(&chunk);
            read += chunk.len() as u64;
        }
        report.bytes_checked += read;
        Ok(Some(read == size && hasher.finish() == *digest))
    }

    /// Files under `blobs/` without a row, and what collection passes left in `trash/`.
    async fn check_blob_files(&self, repair: bool, report: &mut FsckReport) -> Result<()> {
        let BlobStore::Fs(fs) = &self.store else { return Ok(()) };
        let nonce = format!("fsck{}", uuid::Uuid::new_v4().simple());
        for (rel, digest) in fs.blob_files().await? {
            let known = match &digest {
                Some(d) => db::blobs::size(&self.db, d.as_str()).await?.is_some(),
                None => false,
            };
            if known {
                continue;
            }
            report.orphan_files.push(rel.clone());
            match (repair, digest) {
                (false, _) => {}
                // As the collector does: a push that recreated the row meanwhile keeps it.
                (true, Some(d)) => {
                    if fs.trash_blob(&d, &nonce).await? {
                        if db::blobs::size(&self.db, d.as_str()).await?.is_some() {
                            fs.restore_blob(&d, &nonce).await?;
                        } else {
                            fs.delete_trash(&d, &nonce).await?;
                        }
                    }
                }
                (true, None) => fs.remove_stray(&rel).await?,
            }
        }
        for (rel, parsed) in fs.trash_files(LEFTOVER_AGE).await? {
            report.leftovers.push(rel.clone());
            match (repair, parsed) {
                (false, _) => {}
                (true, Some((d, nonce))) if db::blobs::size(&self.db, d.as_str()).await?.is_some() => {
                    fs.restore_blob(&d, &nonce).await?;
                }
                (true, _) => fs.remove_stray(&rel).await?,
            }
        }
        Ok(())
    }

    /// Upload directories without a session, and sessions whose recorded bytes are gone.
    async fn check_uploads(&self, repair: bool, report: &mut FsckReport) -> Result<()> {
        if let BlobStore::Fs(fs) = &self.store {
            for id in fs.stale_upload_dirs(LEFTOVER_AGE).await? {
                if !db::gc::upload_exists(&self.db, id.as_str()).await? {
                    report.leftovers.push(format!("uploads/{id}"));
                    if repair {
                        fs.upload_delete(&id).await?;
                    }
                }
            }
        }
        for (id, offset) in fsck::sessions(&self.db).await? {
            let Ok(id) = id.parse::<UploadId>() else { continue };
            if !self.store.upload_holds(&id, offset as u64).await? {
                report.leftovers.push(format!("upload session {id} (its {offset} recorded bytes are gone)"));
                if repair {
                    self.discard_upload(&id).await?;
                }
            }
        }
        Ok(())
    }
}

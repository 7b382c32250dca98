//! `berth fsck`: re-hashes every stored blob against its digest and compares database and
//! storage both ways. With `repair`, it marks blobs whose bytes are missing or corrupt as
//! lost (reads then answer BLOB_UNKNOWN, not 500 or wrong bytes, until the blob is pushed
//! again) and deletes their corrupt bytes, and removes orphans: blob files without a row,
//! upload directories without a session, sessions whose recorded bytes are gone, and files
//! a collection pass left in `trash/`. Orphan blob files go by the collector's protocol
//! (trash, check the row again, restore if a push recreated it), so fsck may run online.
//! On S3 it also lists the objects under the prefix: one no blob row, doomed object or
//! session accounts for is an orphan, a tail object of no session a leftover (both only
//! once older than [`LEFTOVER_AGE`], as a push writes its object before its row).

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::{GcOptions, Registry, RegistryError, Result};
use crate::{
    db::{self, fsck},
    digest::{Digest, Hasher},
    names::UploadId,
    storage::{Location, ObjectKind, Removal},
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
    /// Files under `blobs/` (S3: objects under the prefix) no row accounts for.
    pub orphan_files: Vec<String>,
    /// Upload directories (S3: multipart uploads, tail objects) without a session,
    /// sessions whose bytes are gone, trash files.
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
        self.check_blob_files(repair, &mut report).await?;
        self.check_objects(repair, now, &mut report).await?;
        self.check_uploads(repair, &mut report).await?;
        for d in fsck::dangling_refs(&self.db).await? {
            report.dangling.push(format!("{}@{} -> {}", d.repository, d.manifest, d.child));
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
            for (digest, size, record, lost_at) in batch {
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
                let location = Location::from_record(&parsed, record);
                let Some(intact) = self.rehash_blob(&parsed, &location, size as u64, report).await? else {
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
                    self.store.drop_corrupt(&location).await?;
                    report.lost.push(parsed.to_string());
                }
            }
        }
    }

    /// Whether the stored bytes hash to `digest` and have `size`; `None` if they are gone.
    async fn rehash_blob(
        &self,
        digest: &Digest,
        location: &Location,
        size: u64,
        report: &mut FsckReport,
    ) -> Result<Option<bool>> {
        let Some(mut stream) = self.store.open_for_check(location, size).await? else {
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
        for file in self.store.blob_files().await? {
            let known = match &file.blob {
                Some((d, _)) => db::blobs::size(&self.db, d.as_str()).await?.is_some(),
                None => false,
            };
            if known {
                continue;
            }
            report.orphan_files.push(file.path.clone());
            match (repair, &file.blob) {
                (false, _) => {}
                // As the collector does: a push that recreated the row meanwhile keeps it.
                (true, Some((d, location))) => {
                    let pushed_again =
                        || async { Ok::<_, RegistryError>(db::blobs::size(&self.db, d.as_str()).await?.is_some()) };
                    if let Removal::Deferred(record) = self.store.remove(location, pushed_again).await? {
                        self.store.purge(&record).await?;
                    }
                }
                (true, None) => self.store.remove_file(&file.path).await?,
            }
        }
        for trash in self.store.trash_files(LEFTOVER_AGE).await? {
            report.leftovers.push(trash.path.clone());
            if !repair {
                continue;
            }
            match &trash.blob {
                Some(d) if db::blobs::size(&self.db, d.as_str()).await?.is_some() => self.store.restore(&trash).await?,
                _ => self.store.remove_file(&trash.path).await?,
            }
        }
        Ok(())
    }

    /// S3 objects no row accounts for. Listed before the rows are read: an object that
    /// gets its row meanwhile is then known.
    async fn check_objects(&self, repair: bool, now: i64, report: &mut FsckReport) -> Result<()> {
        let objects = self.store.objects_before(now - LEFTOVER_AGE.as_secs() as i64).await?;
        if objects.is_empty() {
            return Ok(());
        }
        let known: HashSet<String> = fsck::object_keys(&self.db).await?.into_iter().collect();
        let sessions: HashSet<String> = fsck::sessions(&self.db).await?.into_iter().map(|s| s.id).collect();
        for object in objects {
            let list = match &object.kind {
                // A completed upload whose session is still open is the session's to finish.
                ObjectKind::Upload(id) if known.contains(&object.key) || sessions.contains(id.as_str()) => continue,
                ObjectKind::Tail(id) if sessions.contains(id.as_str()) => continue,
                ObjectKind::Tail(_) => &mut report.leftovers,
                _ if known.contains(&object.key) => continue,
                _ => &mut report.orphan_files,
            };
            list.push(object.key.clone());
            if repair {
                self.store.remove_object(&object).await?;
            }
        }
        Ok(())
    }

    /// Session storage without a session, and sessions whose recorded bytes are gone.
    async fn check_uploads(&self, repair: bool, report: &mut FsckReport) -> Result<()> {
        for stale in self.store.stale_sessions(LEFTOVER_AGE).await? {
            if !db::gc::upload_exists(&self.db, stale.id.as_str()).await? {
                report.leftovers.push(format!("uploads/{}", stale.id));
                if repair {
                    self.store.drop_stale(&stale).await?;
                }
            }
        }
        for fsck::SessionOffset { id, offset } in fsck::sessions(&self.db).await? {
            let Ok(id) = id.parse::<UploadId>() else { continue };
            if !self.store.session_holds(&id, offset as u64).await? {
                report.leftovers.push(format!("upload session {id} (its {offset} recorded bytes are gone)"));
                if repair {
                    self.discard_upload(&id).await?;
                }
            }
        }
        Ok(())
    }
}

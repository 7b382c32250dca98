//! Online garbage collection (no read-only mode). One pass:
//! 1. per repository, plans with [`mark::plan`] what goes: tags its collection's retention
//!    drops, manifests no longer reachable, links no surviving manifest references; then
//!    removes them with conditional statements that re-check the decision (`db::gc`);
//! 2. removes the bytes of blobs no repository links any more;
//! 3. expires stale upload sessions and empty auto-created collections.
//!
//! A dry run plans the same and removes nothing.
//!
//! Racing pushes, mounts and tag changes is safe because each side orders its writes:
//! - a manifest PUT refreshes, in its own transaction, every link and child manifest it
//!   references; the collector deletes a link or manifest only if it is still old and
//!   unreferenced (one conditional DELETE). Whichever comes second sees the other: the
//!   collector keeps the reference, or the PUT finds it gone and answers
//!   MANIFEST_BLOB_UNKNOWN, storing nothing;
//! - a push or mount of a blob (re)links it before anything else, and a blob push moves
//!   its own bytes in whenever the file is missing;
//! - the collector deletes a blob's row only while no link exists, then has the store remove
//!   the bytes (`BlobStore::remove`): on the filesystem the file goes to `trash/`, the row
//!   is checked again, and the file restored if a push recreated the row meanwhile (or
//!   dropped if that push already put its own copy in place). On S3 the object is only
//!   deleted a pass later, so a read that resolved it first still finds it.
//!
//! A read in the short window between trashing and restoring answers BLOB_UNKNOWN.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    Registry, RegistryError, Result,
    mark::{self, Rules},
    policy::Policy,
};
use crate::{
    config::{GcConfig, Untagged},
    db::{
        self,
        gc::{self, DeadManifest, RepoRow},
    },
    digest::Digest,
    names::UploadId,
    storage::{Location, Removal},
};

/// What one pass removed, or on a dry run would remove.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Tags the collections' retention policies dropped.
    pub tags_removed: Vec<TagItem>,
    pub manifests_removed: Vec<Item>,
    /// Links from repositories to blobs that no manifest there references any more.
    pub links_removed: Vec<Item>,
    /// Blobs whose bytes went, because no repository links them.
    pub blobs: Vec<BlobItem>,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub uploads_expired: u64,
    /// Session storage no session knew (upload directories, S3 multipart uploads).
    pub abandoned_sessions_removed: u64,
    pub collections_removed: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TagItem {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

#[derive(Debug, Serialize)]
pub struct Item {
    pub repository: String,
    pub digest: String,
    pub size: i64,
}

#[derive(Debug, Serialize)]
pub struct BlobItem {
    pub digest: String,
    pub size: i64,
}

/// How a pass runs.
#[derive(Clone, Copy, Default)]
pub struct GcOptions<'a> {
    /// Plan and report only.
    pub dry_run: bool,
    /// Called with a progress line now and then (the CLI shows it on a terminal).
    pub progress: Option<&'a (dyn Fn(&str) + Sync)>,
    /// Awaited at each [`Checkpoint`]: a pass holds there, its decisions taken and its
    /// deletes not yet run, until the future completes. Tests use it to race writers
    /// against a decision deterministically; the server and the CLI pass `None`.
    pub pause: Option<&'a PauseHook>,
}

/// A hook a pass awaits at each [`Checkpoint`].
pub type PauseHook = dyn Fn(Checkpoint<'_>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

/// Where a pass stands when it calls its [`GcOptions::pause`] hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpoint<'a> {
    /// The repository's plan is made (tags, manifests, links to remove); its conditional
    /// deletes come next.
    Planned { repository: &'a str },
    /// A batch of blobs no repository linked was read; their conditional deletes come next.
    BlobsListed,
}

/// Rows looked at per query; a pass repeats until none are left.
const BATCH: i64 = 500;
/// Links and blob rows deleted per statement (well under SQLite's limit on parameters).
const DELETE_BATCH: usize = 500;
/// Manifests deleted per transaction. Each is its own statement with cascades, so a
/// transaction holds SQLite's write lock for all of them: few enough that writers waiting
/// on it (up to `busy_timeout`) are not starved.
const MANIFEST_BATCH: usize = 50;
/// The longest pause after a batch of deletes (see [`paced`]).
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// At most this long between doom and deletion of an S3 object (less if the grace is).
const S3_DELETE_DELAY_SECS: u64 = 600;

/// Runs one batch of deletes, then waits as long as it took (at most [`MAX_PAUSE`]): SQLite's
/// write lock is not fair — writers waiting for it sleep and retry — so a pass firing batch
/// after batch would win it again and again and starve them past `busy_timeout` (a 500).
/// Waiting leaves a pass at most half the lock, and slows it down the more writers wait.
async fn paced<T, E>(batch: impl Future<Output = std::result::Result<T, E>>) -> std::result::Result<T, E> {
    let started = Instant::now();
    let out = batch.await;
    tokio::time::sleep(started.elapsed().min(MAX_PAUSE)).await;
    out
}

impl Registry {
    /// One collection pass with `cfg`'s ages, as of `now` (unix seconds).
    pub async fn collect_garbage(&self, cfg: &GcConfig, now: i64) -> Result<GcReport> {
        self.collect(cfg, now, GcOptions::default()).await
    }

    pub async fn collect(&self, cfg: &GcConfig, now: i64, opts: GcOptions<'_>) -> Result<GcReport> {
        let mut report = GcReport { dry_run: opts.dry_run, ..GcReport::default() };
        let grace_cutoff = now - cfg.blob_grace_secs as i64;
        // On a dry run: per digest, (links the plan removes, size).
        let mut unlinked: HashMap<String, (i64, i64)> = HashMap::new();
        let total = gc::repo_count(&self.db).await?;
        let mut policies: HashMap<i64, Option<Policy>> = HashMap::new();
        let (mut after, mut seen) = (0, 0);
        loop {
            let repos = gc::repositories(&self.db, after, BATCH).await?;
            let Some(last) = repos.last() else { break };
            after = last.id;
            for repo in repos {
                seen += 1;
                if let Some(progress) = opts.progress {
                    progress(&format!("repository {seen}/{total} {}", repo.name));
                }
                let policy = match policies.get(&repo.collection_id) {
                    Some(p) => p.clone(),
                    None => {
                        let p = self.policy_of(repo.collection_id).await?;
                        policies.insert(repo.collection_id, p.clone());
                        p
                    }
                };
                let untagged = match policy.as_ref().and_then(|p| p.untagged_after_secs) {
                    Some(secs) => Untagged::AfterSecs(secs),
                    None => cfg.untagged,
                };
                let rules = Rules {
                    grace_cutoff,
                    untagged_cutoff: match untagged {
                        Untagged::Keep => None,
                        Untagged::AfterSecs(s) => Some(now - s as i64),
                    },
                };
                self.sweep_repo(&repo, policy.as_ref(), rules, opts, &mut report, &mut unlinked).await?;
            }
        }
        if opts.dry_run {
            self.blobs_that_would_go(grace_cutoff, &unlinked, &mut report).await?;
        } else {
            self.collect_blobs(grace_cutoff, now, &mut report, opts).await?;
        }
        self.expire_uploads(cfg.upload_ttl_secs, now, opts.dry_run, &mut report).await?;
        let cutoff = now - cfg.empty_collection_secs as i64;
        report.collections_removed = if opts.dry_run {
            gc::empty_auto_collections(&self.db, cutoff).await?
        } else {
            gc::delete_empty_auto_collections(&self.db, cutoff).await?
        };
        Ok(report)
    }

    /// A collection's compiled policy; one that does not compile (it was validated when
    /// set, so only a hand-edited row) applies nothing.
    async fn policy_of(&self, collection_id: i64) -> Result<Option<Policy>> {
        Ok(db::policies::get(&self.db, collection_id).await?.and_then(|row| match Policy::compile(&row) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(collection_id, error = %e, "ignoring an invalid collection policy");
                None
            }
        }))
    }

    async fn sweep_repo(
        &self,
        repo: &RepoRow,
        policy: Option<&Policy>,
        rules: Rules,
        opts: GcOptions<'_>,
        report: &mut GcReport,
        unlinked: &mut HashMap<String, (i64, i64)>,
    ) -> Result<()> {
        let graph = gc::graph(&self.db, repo.id).await?;
        let dropped = policy.map(|p| p.retention_victims(&graph.tags)).unwrap_or_default();
        let plan = mark::plan(&graph, dropped, rules);
        if let Some(pause) = opts.pause {
            pause(Checkpoint::Planned { repository: &repo.name }).await;
        }
        let name = || repo.name.clone();
        for tag in plan.tags {
            if opts.dry_run || gc::delete_tag_if_unchanged(&self.db, repo.id, tag).await? {
                report.tags_removed.push(TagItem {
                    repository: name(),
                    tag: tag.name.clone(),
                    digest: tag.digest.clone(),
                });
            }
        }
        // Parents before children: a manifest is only deleted while nothing lists it as a
        // child, so repeat until a round deletes nothing.
        let mut pending = plan.manifests;
        while !pending.is_empty() {
            let mut deleted = HashSet::new();
            for chunk in pending.chunks(MANIFEST_BATCH) {
                if opts.dry_run {
                    deleted.extend(chunk.iter().map(|m| m.digest.clone()));
                    continue;
                }
                let batch: Vec<_> =
                    chunk.iter().map(|m| DeadManifest { digest: &m.digest, pushed_at: m.pushed_at }).collect();
                deleted.extend(paced(gc::delete_manifests_if_dead(&self.db, repo.id, &batch)).await?);
            }
            let (gone, kept): (Vec<_>, Vec<_>) = pending.into_iter().partition(|m| deleted.contains(&m.digest));
            for m in &gone {
                report.manifests_removed.push(Item { repository: name(), digest: m.digest.clone(), size: m.size });
            }
            if gone.is_empty() {
                break;
            }
            pending = kept;
        }
        for chunk in plan.links.chunks(DELETE_BATCH) {
            let digests: Vec<&str> = chunk.iter().map(|l| l.digest.as_str()).collect();
            let removed: HashSet<String> = if opts.dry_run {
                digests.iter().map(|d| (*d).to_owned()).collect()
            } else {
                paced(gc::unlink_unreferenced(&self.db, repo.id, &digests, rules.grace_cutoff))
                    .await?
                    .into_iter()
                    .collect()
            };
            for link in chunk.iter().filter(|l| removed.contains(&l.digest)) {
                report.links_removed.push(Item { repository: name(), digest: link.digest.clone(), size: link.size });
                let entry = unlinked.entry(link.digest.clone()).or_insert((0, link.size));
                entry.0 += 1;
            }
        }
        Ok(())
    }

    /// Dry run: blobs unlinked everywhere already, or by this plan, and old enough.
    async fn blobs_that_would_go(
        &self,
        cutoff: i64,
        unlinked: &HashMap<String, (i64, i64)>,
        report: &mut GcReport,
    ) -> Result<()> {
        let mut after = String::new();
        loop {
            let batch = gc::unreferenced_blobs(&self.db, cutoff, &after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.digest.clone();
            for b in batch {
                report.blobs.push(BlobItem { digest: b.digest, size: b.size });
            }
        }
        for (digest, (removed, size)) in unlinked {
            let old = gc::blob_created_at(&self.db, digest).await?.is_some_and(|t| t < cutoff);
            if old && gc::link_count(&self.db, digest).await? == *removed {
                report.blobs.push(BlobItem { digest: digest.clone(), size: *size });
            }
        }
        report.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        report.blobs_removed = report.blobs.len() as u64;
        report.bytes_freed = report.blobs.iter().map(|b| b.size as u64).sum();
        Ok(())
    }

    async fn collect_blobs(&self, cutoff: i64, now: i64, report: &mut GcReport, opts: GcOptions<'_>) -> Result<()> {
        let mut after = String::new();
        loop {
            let batch = gc::unreferenced_blobs(&self.db, cutoff, &after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.digest.clone();
            if let Some(progress) = opts.progress {
                progress(&format!("blobs: {} removed, {} bytes", report.blobs_removed, report.bytes_freed));
            }
            if let Some(pause) = opts.pause {
                pause(Checkpoint::BlobsListed).await;
            }
            let digests: Vec<&str> = batch.iter().map(|b| b.digest.as_str()).collect();
            let deleted: HashSet<String> =
                paced(gc::delete_unreferenced_blobs(&self.db, &digests, cutoff)).await?.into_iter().collect();
            for gc::BlobRow { digest, size, record } in batch {
                if !deleted.contains(&digest) {
                    continue;
                }
                // A row holds a digest it was stored under, so this parses; one that does not
                // has no file to remove anyway.
                let Ok(digest) = digest.parse::<Digest>() else { continue };
                let location = Location::from_record(&digest, record);
                let pushed_again =
                    || async { Ok::<_, RegistryError>(db::blobs::size(&self.db, digest.as_str()).await?.is_some()) };
                match self.store.remove(&location, pushed_again).await? {
                    Removal::Removed => {}
                    Removal::Kept => continue,
                    // A push racing this one records a new row at its own location, so the
                    // old bytes can go — a pass later.
                    Removal::Deferred(record) => gc::doom_object(&self.db, &record, now).await?,
                }
                report.blobs_removed += 1;
                report.bytes_freed += size as u64;
                report.blobs.push(BlobItem { digest: digest.to_string(), size });
            }
        }
        let delay = S3_DELETE_DELAY_SECS.min(cutoff.abs_diff(now)) as i64;
        for record in gc::doomed_objects(&self.db, now - delay + 1).await? {
            self.store.purge(&record).await?;
            gc::forget_doomed(&self.db, &record).await?;
        }
        Ok(())
    }

    async fn expire_uploads(&self, ttl_secs: u64, now: i64, dry_run: bool, report: &mut GcReport) -> Result<()> {
        for gc::StaleUpload { id, store_state } in gc::stale_uploads(&self.db, now - ttl_secs as i64).await? {
            let Ok(id) = id.parse::<UploadId>() else { continue };
            if !dry_run {
                self.writer.end_upload(id.as_str()).await?;
                self.store.drop_session(&id, store_state.as_deref()).await?;
            }
            report.uploads_expired += 1;
        }
        // Session storage whose row is gone, or never came (a crash between the two
        // writes): upload directories, and S3 multipart uploads billed until aborted.
        for stale in self.store.stale_sessions(Duration::from_secs(ttl_secs)).await? {
            if !gc::upload_exists(&self.db, stale.id.as_str()).await? {
                if !dry_run {
                    self.store.drop_stale(&stale).await?;
                }
                report.abandoned_sessions_removed += 1;
            }
        }
        Ok(())
    }
}

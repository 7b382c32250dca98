//! Online garbage collection: unreferenced blobs, stale upload sessions, and collections
//! that were created implicitly but never received a repository. No read-only mode.
//!
//! Racing a push of the same blob is safe because of an ordering on both sides:
//! - a push records the blob's row and its link *before* moving the file into place, and
//!   moves its own bytes in whenever the file is missing;
//! - the collector deletes the row only while no link exists (one conditional DELETE),
//!   then moves the file to `trash/`, checks the row again, and restores the file if a
//!   push recreated the row meanwhile (or drops it if that push already put its own copy).
//!
//! So either the push's link comes first and the collector leaves the blob alone, or the
//! collector's DELETE comes first and the push's file (or the restored one) ends in place.
//! A read in the short window between trashing and restoring answers BLOB_UNKNOWN.

use std::time::Duration;

use serde::Serialize;

use super::{Registry, Result};
use crate::{
    config::GcConfig,
    db::{self, gc},
    digest::Digest,
    names::UploadId,
    storage::BlobStore,
};

/// What one pass removed.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub uploads_expired: u64,
    pub collections_removed: Vec<String>,
}

/// Blobs looked at per query; a pass repeats until none are left.
const BATCH: i64 = 500;

impl Registry {
    /// One collection pass with `cfg`'s ages, as of `now` (unix seconds).
    pub async fn collect_garbage(&self, cfg: &GcConfig, now: i64) -> Result<GcReport> {
        let mut report = GcReport::default();
        self.collect_blobs(now - cfg.blob_grace_secs as i64, &mut report).await?;
        self.expire_uploads(cfg.upload_ttl_secs, now, &mut report).await?;
        let cutoff = now - cfg.empty_collection_secs as i64;
        report.collections_removed = gc::delete_empty_auto_collections(&self.db, cutoff).await?;
        Ok(report)
    }

    async fn collect_blobs(&self, cutoff: i64, report: &mut GcReport) -> Result<()> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        loop {
            let batch = gc::unreferenced_blobs(&self.db, cutoff, BATCH).await?;
            let done = (batch.len() as i64) < BATCH;
            for (digest, size, key) in batch {
                let Ok(digest) = digest.parse::<Digest>() else { continue };
                if !gc::delete_unreferenced_blob(&self.db, digest.as_str(), cutoff).await? {
                    continue;
                }
                match (&self.store, key) {
                    (BlobStore::Fs(fs), _) => {
                        if fs.trash_blob(&digest, &nonce).await? {
                            if db::blobs::size(&self.db, digest.as_str()).await?.is_some() {
                                // Pushed again meanwhile: keep it.
                                fs.restore_blob(&digest, &nonce).await?;
                                continue;
                            }
                            fs.delete_trash(&digest, &nonce).await?;
                        }
                    }
                    // On S3 every upload has its own object: a push racing this one records
                    // a new row with its own key, so the old object can simply go.
                    (BlobStore::S3(_), Some(key)) => self.store.delete_object(&key).await?,
                    (BlobStore::S3(_), None) => {}
                }
                report.blobs_removed += 1;
                report.bytes_freed += size as u64;
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn expire_uploads(&self, ttl_secs: u64, now: i64, report: &mut GcReport) -> Result<()> {
        for (id, store_state) in gc::stale_uploads(&self.db, now - ttl_secs as i64).await? {
            let Ok(id) = id.parse::<UploadId>() else { continue };
            db::uploads::delete(&self.db, id.as_str()).await?;
            self.store.upload_delete(&id, store_state.as_deref()).await?;
            report.uploads_expired += 1;
        }
        // Directories whose session row is gone (a crash between the two writes).
        if let BlobStore::Fs(fs) = &self.store {
            for id in fs.stale_upload_dirs(Duration::from_secs(ttl_secs)).await? {
                if !gc::upload_exists(&self.db, id.as_str()).await? {
                    fs.upload_delete(&id).await?;
                }
            }
        }
        Ok(())
    }
}

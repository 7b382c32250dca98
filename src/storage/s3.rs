//! S3-compatible blob store (`object_store`'s low-level multipart API, DESIGN §6).
//!
//! An upload is a multipart upload at `uploads/<uuid>`. Bytes are buffered up to one
//! [`PART_SIZE`] part at a time and sent as parts; at a checkpoint (end of a request) a
//! remainder of at least [`MIN_PART`] becomes a part, a smaller one a temporary object
//! `uploads/<uuid>.tails/<nonce>` that is prepended to the next part. Each checkpoint
//! writes a new tail object and removes the previous one only after the database recorded
//! the new state, so a crash in between never leaves the recorded state pointing at bytes
//! that changed (or are gone). Part ETags, the multipart id
//! and the tail length are the session's [`S3Upload`] state, kept in the database beside
//! the offset and hash state, so any replica can continue the upload. Completion is
//! `CompleteMultipartUpload` — no copy — and the blob lives at that key; the database maps
//! its digest to the key (first row wins).
//!
//! Part buffers come out of one memory budget for the whole process
//! (`storage.s3.buffer_budget_mib`, see [`Budget`]): a request reserves what its buffer can
//! hold before it reads its body, and waits for space rather than allocating past the
//! budget; after `storage.s3.buffer_wait_secs` it gives up with [`StorageBusy`].
//!
//! Credentials come from the AWS chain in the environment (`AmazonS3Builder::from_env`:
//! `AWS_*` variables, web identity, ECS, instance metadata) unless the configuration sets
//! static keys, which then win. Every write carries the configured server-side encryption.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, StaticCredentialProvider,
    aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsCredential},
    multipart::{MultipartStore, PartId},
    path::Path,
    signer::Signer,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod list;
mod objects;

use super::{Key, StorageBusy};
use crate::{config::S3Config, names::UploadId};

/// Parts are this large, except the last and those made at a checkpoint.
pub const PART_SIZE: usize = 16 << 20;
/// S3's smallest part but the last; also the chunk minimum advertised to clients.
pub const MIN_PART: usize = 5 << 20;
/// A part buffer grows by segments of at most this size (a part is sent as its segments,
/// never copied into one block).
const SEGMENT: usize = 1 << 20;
/// The budget counts in units of this size.
const UNIT: usize = 64 << 10;

pub type S3Error = object_store::Error;

/// What the database keeps of an S3 upload session.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct S3Upload {
    pub multipart_id: String,
    /// ETags of the parts so far, in order.
    pub parts: Vec<String>,
    /// Bytes in the tail object not yet in a part.
    pub tail_len: u64,
    /// The tail object's key; absent in states recorded before tails had their own keys
    /// (then `uploads/<uuid>.tail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_key: Option<String>,
}

/// The recorded state of a session (`None`: none recorded).
pub fn state_of(json: Option<&str>) -> io::Result<S3Upload> {
    serde_json::from_str(json.unwrap_or("")).map_err(|e| io::Error::other(format!("bad S3 upload state: {e}")))
}

#[derive(Clone, Debug)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    prefix: String,
    /// Presigned URLs for blob GETs live this long (`redirect = true`).
    redirect_ttl: Option<Duration>,
    /// With `check_on_start`: whether the bucket took the probe write (re-checked by
    /// readiness until it does).
    writable: Option<Arc<AtomicBool>>,
    /// For the requests `object_store` has no call for (listing multipart uploads).
    http: s3_http::Client,
    budget: Budget,
}

/// The memory all part buffers of this process may hold at once, shared by every session.
#[derive(Clone, Debug)]
pub struct Budget {
    units: Arc<Semaphore>,
    /// How long a request waits for space before it is refused.
    wait: Duration,
}

/// Buffer space reserved by one writer, given back when it is dropped.
struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }
}

impl Budget {
    pub fn new(mib: u64, wait: Duration) -> Budget {
        let units = usize::try_from(mib.saturating_mul(1 << 20) / UNIT as u64).unwrap_or(Semaphore::MAX_PERMITS);
        Budget { units: Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS))), wait }
    }

    /// Grows `held` to at least `bytes`, waiting at most the configured time for the space.
    async fn reserve(&self, held: &mut Reservation, bytes: usize) -> Result<(), S3Error> {
        let more = bytes.div_ceil(UNIT).saturating_sub(held.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits));
        if more == 0 {
            return Ok(());
        }
        let busy = || S3Error::Generic { store: "S3", source: Box::new(StorageBusy { retry_after: 1 }) };
        let more = u32::try_from(more).map_err(|_| busy())?;
        // Timed out (or, never, closed): refuse rather than allocate past the budget.
        let Ok(Ok(permit)) = tokio::time::timeout(self.wait, self.units.clone().acquire_many_owned(more)).await else {
            return Err(busy());
        };
        match &mut held.0 {
            Some(p) => p.merge(permit),
            None => held.0 = Some(permit),
        }
        Ok(())
    }

    /// Bytes of the budget no buffer holds now.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.units.available_permits() * UNIT
    }
}

/// A part being gathered: filled segments, and the one being filled.
#[derive(Default)]
struct PartBuffer {
    full: Vec<Bytes>,
    filling: BytesMut,
    len: usize,
}

impl PartBuffer {
    /// Appends `data`; the segments allocated stay within `limit` bytes in all.
    fn extend(&mut self, mut data: &[u8], limit: usize) {
        while !data.is_empty() {
            if self.filling.len() == self.filling.capacity() {
                self.seal_segment();
                // Every segment so far is full, so this keeps the total within `limit`.
                self.filling = BytesMut::with_capacity(limit.saturating_sub(self.len).clamp(1, SEGMENT));
            }
            let take = (self.filling.capacity() - self.filling.len()).min(data.len());
            self.filling.extend_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
        }
    }

    fn seal_segment(&mut self) {
        if !self.filling.is_empty() {
            self.full.push(self.filling.split().freeze());
        }
    }

    /// Everything buffered, as a payload (the segments are shared, not copied).
    fn payload(&mut self) -> PutPayload {
        self.seal_segment();
        self.full.iter().cloned().collect()
    }

    /// Everything buffered, as a payload, leaving the buffer empty.
    fn take(&mut self) -> PutPayload {
        self.seal_segment();
        self.len = 0;
        self.filling = BytesMut::new();
        std::mem::take(&mut self.full).into_iter().collect()
    }
}

/// The `object_store` builder for the configuration: the environment's AWS settings, with
/// what the configuration sets on top.
fn builder(cfg: &S3Config) -> Result<AmazonS3Builder, S3Error> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_allow_http(cfg.allow_http);
    if let Some(endpoint) = &cfg.endpoint {
        b = b.with_endpoint(endpoint);
    }
    if !cfg.access_key_id.is_empty() || !cfg.secret_access_key.is_empty() {
        // Keys set in the configuration win over the whole chain (and go without an
        // `AWS_SESSION_TOKEN` the environment may carry for other keys).
        b = b.with_credentials(Arc::new(StaticCredentialProvider::new(AwsCredential {
            key_id: cfg.access_key_id.clone(),
            secret_key: cfg.secret_access_key.clone(),
            token: None,
        })));
    }
    match (cfg.sse.as_deref(), &cfg.sse_kms_key_id) {
        (Some("aws:kms"), Some(key)) => b = b.with_sse_kms_encryption(key),
        (Some(sse), _) => b = b.with_config("aws_server_side_encryption".parse::<AmazonS3ConfigKey>()?, sse),
        (None, _) => {}
    }
    Ok(b)
}

impl S3Store {
    /// Connects; with `check_on_start`, checks the bucket takes a write (a failure is
    /// logged and reported by readiness, not fatal).
    pub async fn open(cfg: &S3Config) -> anyhow::Result<S3Store> {
        let s3 = S3Store {
            store: Arc::new(builder(cfg)?.build()?),
            prefix: cfg.prefix.trim_matches('/').to_owned(),
            redirect_ttl: cfg.redirect.then(|| Duration::from_secs(cfg.redirect_ttl_secs)),
            writable: cfg.check_on_start.then(|| Arc::new(AtomicBool::new(false))),
            // A listing that hangs must not hold a collection pass forever.
            http: s3_http::Client::builder().timeout(Duration::from_secs(60)).build()?,
            budget: Budget::new(cfg.buffer_budget_mib, Duration::from_secs(cfg.buffer_wait_secs)),
        };
        if s3.writable.is_some() {
            match s3.check_writable().await {
                Ok(()) => tracing::info!(bucket = %cfg.bucket, "bucket check passed: the bucket takes writes"),
                Err(e) => tracing::error!(
                    bucket = %cfg.bucket,
                    error = %e,
                    "bucket check failed: the bucket does not exist or does not take writes; /readyz reports it"
                ),
            }
        }
        Ok(s3)
    }

    /// Puts and deletes a small probe object under the prefix.
    async fn check_writable(&self) -> Result<(), S3Error> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let path = self.path(&Key::Probe(&nonce).path());
        self.store.put(&path, PutPayload::from_static(b"berth bucket check")).await?;
        self.store.delete(&path).await?;
        if let Some(flag) = &self.writable {
            flag.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The bucket answers (an absent probe key is an answer); with `check_on_start`, it has
    /// also taken the probe write, re-tried here until it does.
    pub async fn ready(&self) -> io::Result<()> {
        if let Some(flag) = &self.writable
            && !flag.load(Ordering::Relaxed)
        {
            return self.check_writable().await.map_err(|e| io::Error::other(format!("bucket check: {e}")));
        }
        self.exists(&Key::Probe("readyz").path()).await.map(drop).map_err(io::Error::other)
    }

    /// A presigned GET of the object at `key`, if redirects are on.
    pub async fn redirect_url(&self, key: &str) -> Result<Option<String>, S3Error> {
        let Some(ttl) = self.redirect_ttl else { return Ok(None) };
        let url = self.store.signed_url(http::Method::GET, &self.path(key), ttl).await?;
        Ok(Some(url.to_string()))
    }

    /// The object path of a storage key (see `super::Key`).
    fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() { Path::from(key) } else { Path::from(format!("{}/{key}", self.prefix)) }
    }

    pub async fn upload_create(&self, id: &UploadId) -> Result<S3Upload, S3Error> {
        let multipart_id = self.store.create_multipart(&self.path(&upload_key(id))).await?;
        Ok(S3Upload { multipart_id, parts: vec![], tail_len: 0, tail_key: None })
    }

    /// A writer continuing the session from its recorded state (the tail is read back).
    /// `coming` is how many bytes the request will append, if known: its buffer space, up
    /// to a part, is reserved here, before the body is read (waiting for it if need be).
    pub async fn upload_writer(
        &self,
        id: &UploadId,
        state: S3Upload,
        coming: Option<u64>,
    ) -> Result<S3Writer, S3Error> {
        let tail_len = usize::try_from(state.tail_len).unwrap_or(usize::MAX);
        let coming = coming.map_or(PART_SIZE, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let mut reserved = Reservation(None);
        self.budget.reserve(&mut reserved, tail_len.saturating_add(coming).min(PART_SIZE)).await?;
        let mut buf = PartBuffer::default();
        if tail_len > 0 {
            let key = state.tail_key.clone().unwrap_or_else(|| legacy_tail_key(id));
            let tail = self.store.get(&self.path(&key)).await?.bytes().await?;
            // Bytes past the recorded length were never acknowledged.
            buf.full.push(tail.slice(..tail.len().min(tail_len)));
            buf.len = buf.full[0].len();
        }
        Ok(S3Writer { s3: self.clone(), id: id.clone(), state, buf, reserved, superseded: vec![] })
    }

    /// Deletes every tail object of the session (recorded, superseded, or left by a crash).
    async fn delete_tails(&self, id: &UploadId) -> Result<(), S3Error> {
        let prefix = self.path(&tails_dir(id));
        let keys: Vec<Path> = self.store.list(Some(&prefix)).map_ok(|m| m.location).try_collect().await?;
        for key in keys {
            match self.store.delete(&key).await {
                Ok(()) | Err(S3Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.delete(&legacy_tail_key(id)).await
    }

    /// Gives the session up: aborts the multipart upload and removes the tail.
    pub async fn upload_abort(&self, id: &UploadId, state: &S3Upload) -> Result<(), S3Error> {
        let path = self.path(&upload_key(id));
        match self.store.abort_multipart(&path, &state.multipart_id).await {
            Ok(()) | Err(S3Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.delete_tails(id).await
    }

    /// `len` bytes of the object at `key` from `start`, streamed.
    pub async fn read(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, S3Error> {
        if len == 0 {
            return Ok(futures_util::stream::empty().boxed());
        }
        let opts = GetOptions { range: Some(GetRange::Bounded(start..start + len)), ..Default::default() };
        let result = self.store.get_opts(&self.path(key), opts).await?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// The size of the session's completed object, if `CompleteMultipartUpload` went
    /// through (a crash before its row was written leaves it behind).
    pub async fn upload_completed(&self, id: &UploadId) -> Result<Option<(String, u64)>, S3Error> {
        let key = upload_key(id);
        match self.store.head(&self.path(&key)).await {
            Ok(meta) => Ok(Some((key, meta.size))),
            Err(S3Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, S3Error> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(S3Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(S3Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The multipart object of an upload, which becomes the blob's key on completion.
fn upload_key(id: &UploadId) -> String {
    Key::UploadObject(id).path()
}

/// Where a session's tail objects live, each under a fresh name.
fn tails_dir(id: &UploadId) -> String {
    Key::UploadTails(id).path()
}

fn legacy_tail_key(id: &UploadId) -> String {
    Key::UploadLegacyTail(id).path()
}

/// Appends to one S3 upload session. Its buffer holds at most one part, within the space
/// it reserved from the [`Budget`] (kept until the writer is dropped), so memory stays at
/// one part however large the blob.
pub struct S3Writer {
    s3: S3Store,
    id: UploadId,
    state: S3Upload,
    buf: PartBuffer,
    reserved: Reservation,
    /// Tail objects the last checkpoint replaced: deleted once its state is recorded.
    superseded: Vec<String>,
}

impl S3Writer {
    /// Sends the buffer as the next part; its segments are freed once sent.
    async fn put_buffer_as_part(&mut self) -> Result<(), S3Error> {
        let path = self.s3.path(&upload_key(&self.id));
        let idx = self.state.parts.len();
        let payload = self.buf.take();
        let PartId { content_id } = self.s3.store.put_part(&path, &self.state.multipart_id, idx, payload).await?;
        self.state.parts.push(content_id);
        Ok(())
    }

    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), S3Error> {
        while !data.is_empty() {
            let take = (PART_SIZE - self.buf.len).min(data.len());
            // Only a request longer than it announced needs more than it reserved.
            self.s3.budget.reserve(&mut self.reserved, self.buf.len + take).await?;
            self.buf.extend(&data[..take], self.reserved.bytes());
            data = &data[take..];
            if self.buf.len == PART_SIZE {
                self.put_buffer_as_part().await?;
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable and returns the state to record. The tail
    /// goes to a new object; the one it replaces stays until [`Self::committed`].
    pub async fn checkpoint(&mut self) -> Result<S3Upload, S3Error> {
        if self.buf.len >= MIN_PART {
            self.put_buffer_as_part().await?;
        }
        let previous = match (&self.state.tail_key, self.state.tail_len) {
            (Some(key), _) => Some(key.clone()),
            (None, len) if len > 0 => Some(legacy_tail_key(&self.id)),
            (None, _) => None,
        };
        self.state.tail_key = if self.buf.len == 0 {
            None
        } else {
            let key = format!("{}/{}", tails_dir(&self.id), uuid::Uuid::new_v4().simple());
            self.s3.store.put(&self.s3.path(&key), self.buf.payload()).await?;
            Some(key)
        };
        self.state.tail_len = self.buf.len as u64;
        self.superseded.extend(previous);
        Ok(self.state.clone())
    }

    /// The state of the last checkpoint is recorded: the tails it replaced can go.
    pub async fn committed(&mut self) -> Result<(), S3Error> {
        for key in std::mem::take(&mut self.superseded) {
            self.s3.delete(&key).await?;
        }
        Ok(())
    }

    /// Sends the rest as the last part and completes the upload; returns the blob's key.
    pub async fn finish(mut self) -> Result<String, S3Error> {
        if self.buf.len > 0 || self.state.parts.is_empty() {
            self.put_buffer_as_part().await?;
        }
        let key = upload_key(&self.id);
        let parts = self.state.parts.iter().map(|p| PartId { content_id: p.clone() }).collect();
        self.s3.store.complete_multipart(&self.s3.path(&key), &self.state.multipart_id, parts).await?;
        self.s3.delete_tails(&self.id).await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_budget_refuses_after_the_wait_and_lets_the_next_in_once_freed() {
        let budget = Budget::new(16, Duration::from_millis(50));
        let mut first = Reservation(None);
        budget.reserve(&mut first, PART_SIZE).await.unwrap();
        assert_eq!((first.bytes(), budget.free()), (PART_SIZE, 0));

        let mut second = Reservation(None);
        let e = budget.reserve(&mut second, 1).await.unwrap_err();
        // As the session hands it up: the registry finds it in the chain (503, Retry-After).
        let e = io::Error::other(e);
        assert_eq!(StorageBusy::find(&e).map(|b| b.retry_after), Some(1), "{e}");
        assert_eq!(second.bytes(), 0, "nothing reserved past the budget");

        // Space given back lets a waiting request in.
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move {
                let mut r = Reservation(None);
                budget.reserve(&mut r, 3 * MIN_PART / 5).await.map(|()| r.bytes())
            }
        });
        drop(first);
        assert_eq!(waiter.await.unwrap().unwrap(), 3 << 20);
        assert_eq!(budget.free(), PART_SIZE, "every reservation given back");

        // A reservation grows in place, by what it lacks.
        let mut grown = Reservation(None);
        budget.reserve(&mut grown, 100).await.unwrap();
        budget.reserve(&mut grown, UNIT + 1).await.unwrap();
        budget.reserve(&mut grown, 10).await.unwrap();
        assert_eq!((grown.bytes(), budget.free()), (2 * UNIT, PART_SIZE - 2 * UNIT));
    }

    #[test]
    fn a_part_buffer_allocates_within_its_limit_and_sends_its_segments_uncopied() {
        let data: Vec<u8> = (0..3 * SEGMENT + 777).map(|i| (i % 251) as u8).collect();
        let limit = data.len().next_multiple_of(UNIT);
        let mut buf = PartBuffer::default();
        for piece in data.chunks(70_000) {
            buf.extend(piece, limit);
        }
        assert_eq!(buf.len, data.len());
        // A checkpoint's tail shares the segments...
        let tail = buf.payload();
        let allocated = buf.full.iter().map(Bytes::len).sum::<usize>() + buf.filling.capacity();
        assert!(allocated <= limit, "{allocated} bytes allocated for a limit of {limit}");
        assert_eq!(tail.iter().count(), 4, "1 MiB segments");
        assert_eq!(tail.iter().flat_map(|b| b.iter().copied()).collect::<Vec<u8>>(), data);
        // ...and the buffer goes on filling after it; a part takes everything.
        buf.extend(b"more", limit + UNIT);
        let part = buf.take();
        assert_eq!(part.content_length(), data.len() + 4);
        assert_eq!(part.iter().last().map(|b| b.to_vec()), Some(b"more".to_vec()));
        assert_eq!((buf.len, buf.full.len(), buf.filling.capacity()), (0, 0, 0));
    }
}

//! Filesystem blob store. Publishing is: flush and fsync the upload file, rename it to its
//! blob key, fsync the directory — so a crash leaves either no blob or a complete one.

use std::{
    io::{self, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, stream::BoxStream};
use tokio::{
    fs::{self, File, OpenOptions},
    task::JoinHandle,
};
use tokio_util::io::ReaderStream;

use super::Key;
use crate::{digest::Digest, names::UploadId};

/// Memory for the body bytes all filesystem uploads hold for writing, together. Each upload
/// gathers frames while the previous ones are written on the blocking pool (so hashing and
/// receiving go on during the write), up to this budget shared among the uploads open at
/// the time: a lone 1 GiB push writes 256 KiB at a time, 64 parallel ones 32 KiB, and
/// their peak memory stays flat in concurrency. The share is taken again at every write.
const WRITE_BUDGET: usize = 4 << 20;
/// Bounds of one write (see [`WRITE_BUDGET`]).
const WRITE_MIN: usize = 32 << 10;
const WRITE_MAX: usize = 256 << 10;
/// Filesystem upload writers alive in this process.
static WRITERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How much an upload gathers per write (it holds up to twice that: one write in flight)
/// while `writers` uploads are open.
fn write_size(writers: usize) -> usize {
    (WRITE_BUDGET / (2 * writers.max(1))).clamp(WRITE_MIN, WRITE_MAX)
}

/// Every this many bytes written, an `fdatasync` starts in the background (at most one at a
/// time per upload), so dirty pages go to disk while the body arrives and the sync before a
/// checkpoint or the publish finds little left to write.
const SYNC_EVERY: u64 = 16 << 20;
/// Read size when streaming a blob out.
const READ_BUFFER: usize = 256 << 10;

/// Reads up to [`READ_BUFFER`] of the `left` bytes still to send, on the blocking pool;
/// gives the file back with the chunk and what is left after it.
fn read_chunk(file: std::fs::File, left: u64) -> tokio::task::JoinHandle<io::Result<(std::fs::File, Bytes, u64)>> {
    tokio::task::spawn_blocking(move || {
        let want = left.min(READ_BUFFER as u64);
        // `read_to_end` reads into the spare capacity without zeroing it first.
        let mut chunk = Vec::with_capacity(want as usize);
        io::Read::read_to_end(&mut io::Read::take(&file, want), &mut chunk)?;
        let left = left - chunk.len() as u64;
        Ok((file, Bytes::from(chunk), left))
    })
}

#[derive(Clone, Debug)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    pub async fn open(root: &Path) -> io::Result<FsStore> {
        fs::create_dir_all(root.join("blobs")).await?;
        fs::create_dir_all(root.join("uploads")).await?;
        fs::create_dir_all(root.join("trash")).await?;
        Ok(FsStore { root: root.to_owned() })
    }

    /// The blob directory is there (readiness).
    pub async fn ready(&self) -> io::Result<()> {
        let meta = fs::metadata(self.root.join("blobs")).await?;
        if meta.is_dir() { Ok(()) } else { Err(io::Error::other("blobs is not a directory")) }
    }

    fn path(&self, key: Key<'_>) -> PathBuf {
        self.root.join(key.path())
    }

    /// `len` bytes of a stored blob from `start`, streamed; `None` if the blob is absent.
    ///
    /// Each chunk is read by `std::fs` on the blocking pool straight into the buffer that is
    /// sent (tokio's `File` reads into its own buffer and copies), and the next chunk is read
    /// while the current one is being sent. No thread waits on a slow client.
    pub async fn read_blob(
        &self,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> io::Result<Option<BoxStream<'static, io::Result<Bytes>>>> {
        let path = self.path(Key::Blob(digest));
        let opened = tokio::task::spawn_blocking(move || -> io::Result<Option<std::fs::File>> {
            let mut file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            if start > 0 {
                io::Seek::seek(&mut file, SeekFrom::Start(start))?;
            }
            Ok(Some(file))
        })
        .await
        .map_err(io::Error::other)??;
        let Some(file) = opened else { return Ok(None) };
        let first = (len > 0).then(|| read_chunk(file, len));
        let chunks = futures_util::stream::unfold(first, |pending| async move {
            let (file, chunk, left) = match pending?.await.map_err(io::Error::other) {
                Ok(Ok(read)) => read,
                Ok(Err(e)) | Err(e) => return Some((Err(e), None)),
            };
            let next = (left > 0 && !chunk.is_empty()).then(|| read_chunk(file, left));
            Some((Ok(chunk), next))
        });
        Ok(Some(chunks.boxed()))
    }

    pub async fn blob_exists(&self, digest: &Digest) -> io::Result<bool> {
        fs::try_exists(self.path(Key::Blob(digest))).await
    }

    /// Creates a session's directory and empty file. Not durably: a session at offset 0
    /// whose file a crash lost is an empty one ([`Self::upload_lock`] makes it again), and
    /// the first checkpoint past 0 syncs the entries ([`FsWriter::checkpoint`]). A blob
    /// pushed with POST then one PUT thus never syncs its session's directories.
    pub async fn upload_create(&self, id: &UploadId) -> io::Result<()> {
        self.upload_lock(id).await.map(drop)
    }

    /// Opens and locks (`flock`) the session's file for one request, creating it (and its
    /// directory) if it is missing: a session whose file is gone is an empty one, and
    /// [`FsLock::into_writer`] refuses it if the session had recorded bytes.
    ///
    /// The lock is taken *before* the caller reads the session's offset, so the offset
    /// cannot move while the request writes (lock, then load). Two requests — in this
    /// process or another one on the same filesystem — never write one session at once;
    /// the second gets `WouldBlock`. A crashed writer's lock goes with its process.
    pub async fn upload_lock(&self, id: &UploadId) -> io::Result<FsLock> {
        let path = self.path(Key::UploadData(id));
        let dir = self.path(Key::UploadDir(id));
        let file = match OpenOptions::new().write(true).open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&dir).await {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                // Never `truncate`: another request may have created and written it just now.
                OpenOptions::new().write(true).create(true).truncate(false).open(&path).await?
            }
            Err(e) => return Err(e),
        };
        // A non-blocking flock: cheap enough to call on the async thread.
        let file = file.into_std().await;
        match file.try_lock() {
            Ok(()) => Ok(FsLock { file, dir }),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::from(io::ErrorKind::WouldBlock)),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether the session's file holds at least `offset` bytes (a missing file holds none).
    pub async fn upload_holds(&self, id: &UploadId, offset: u64) -> io::Result<bool> {
        match fs::metadata(self.path(Key::UploadData(id))).await {
            Ok(m) => Ok(m.len() >= offset),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(offset == 0),
            Err(e) => Err(e),
        }
    }

    /// The upload's data, streamed (only to re-hash with another algorithm).
    pub async fn upload_stream(&self, id: &UploadId) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        let file = File::open(self.path(Key::UploadData(id))).await?;
        Ok(ReaderStream::with_capacity(file, WRITE_MAX).boxed())
    }

    /// Moves a verified upload into place under its digest, after making its bytes durable
    /// (skipped when its last checkpoint already did and nothing came since). If the blob
    /// is already stored (same digest, same bytes) the upload is simply dropped.
    pub async fn upload_publish(&self, id: &UploadId, digest: &Digest, writer: &mut FsWriter) -> io::Result<()> {
        let target = self.path(Key::Blob(digest));
        if fs::try_exists(&target).await? {
            return self.upload_delete(id).await;
        }
        let parent = target.parent().map(Path::to_owned).unwrap_or_else(|| self.root.clone());
        create_dirs(&self.root, &parent).await?;
        // fdatasync covers the bytes and the length, all a blob is; the rename then needs
        // the directory's sync.
        if !writer.synced {
            writer.sync().await?;
        }
        fs::rename(self.path(Key::UploadData(id)), &target).await?;
        sync_dir(&parent).await?;
        self.upload_delete(id).await
    }

    /// Moves a blob aside (to be deleted or restored); false if it was not there.
    pub async fn trash_blob(&self, digest: &Digest, nonce: &str) -> io::Result<bool> {
        match fs::rename(self.path(Key::Blob(digest)), self.path(Key::Trash(digest, nonce))).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Puts a trashed blob back, unless an upload has meanwhile published it again.
    pub async fn restore_blob(&self, digest: &Digest, nonce: &str) -> io::Result<()> {
        let target = self.path(Key::Blob(digest));
        if fs::try_exists(&target).await? {
            return self.delete_trash(digest, nonce).await;
        }
        fs::rename(self.path(Key::Trash(digest, nonce)), target).await
    }

    pub async fn delete_trash(&self, digest: &Digest, nonce: &str) -> io::Result<()> {
        match fs::remove_file(self.path(Key::Trash(digest, nonce))).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Upload directories last modified more than `age` ago, by id.
    pub async fn stale_upload_dirs(&self, age: std::time::Duration) -> io::Result<Vec<UploadId>> {
        let mut out = Vec::new();
        let mut dir = fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = dir.next_entry().await? {
            // The data file changes with every chunk; the directory only when created.
            // Sessions come and go while this runs: one that vanished is simply skipped.
            let meta = match fs::metadata(entry.path().join("data")).await {
                Ok(m) => m,
                Err(_) => match entry.metadata().await {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
            };
            let modified = meta.modified()?;
            let old = modified.elapsed().is_ok_and(|e| e >= age);
            if let (true, Ok(id)) = (old, entry.file_name().to_string_lossy().parse::<UploadId>()) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Every file under `blobs/` (for fsck): its path relative to the root, and the digest
    /// its place names (`None` for a file that is not where a blob would be).
    pub async fn blob_files(&self) -> io::Result<Vec<(String, Option<Digest>)>> {
        let mut out = Vec::new();
        let mut todo = vec![self.root.join("blobs")];
        while let Some(dir) = todo.pop() {
            let mut entries = match fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            while let Some(entry) = entries.next_entry().await? {
                let path = entry.path();
                if entry.file_type().await?.is_dir() {
                    todo.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else { continue };
                let rel = rel.to_string_lossy().into_owned();
                // blobs/<alg>/<2 hex>/<hex>, and only where Key::Blob would put it.
                let digest = rel
                    .strip_prefix("blobs/")
                    .and_then(|r| r.split_once('/'))
                    .and_then(|(alg, r)| r.split_once('/').map(|(_, hex)| format!("{alg}:{hex}")))
                    .and_then(|d| d.parse::<Digest>().ok())
                    .filter(|d| Key::Blob(d).path() == rel);
                out.push((rel, digest));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a file found by [`Self::blob_files`] or [`Self::trash_files`] that is not a
    /// blob's (fsck).
    pub async fn remove_stray(&self, rel: &str) -> io::Result<()> {
        if !(rel.starts_with("blobs/") || rel.starts_with("trash/")) || rel.contains("..") {
            return Err(io::Error::other(format!("not a storage file: {rel}")));
        }
        match fs::remove_file(self.root.join(rel)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Files left in `trash/` longer than `age` (a collection pass that stopped halfway):
    /// their relative path and, if the name is one [`Key::Trash`] makes, digest and nonce.
    pub async fn trash_files(&self, age: std::time::Duration) -> io::Result<Vec<(String, Option<(Digest, String)>)>> {
        let mut out = Vec::new();
        let mut entries = fs::read_dir(self.root.join("trash")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let old = entry.metadata().await?.modified()?.elapsed().is_ok_and(|e| e >= age);
            let name = entry.file_name().to_string_lossy().into_owned();
            if !old {
                continue;
            }
            let parsed = name.split_once('-').and_then(|(alg, rest)| {
                let (hex, nonce) = rest.split_once('-')?;
                let digest = format!("{alg}:{hex}").parse::<Digest>().ok()?;
                (Key::Trash(&digest, nonce).path() == format!("trash/{name}")).then(|| (digest, nonce.to_owned()))
            });
            out.push((format!("trash/{name}"), parsed));
        }
        Ok(out)
    }

    pub async fn upload_delete(&self, id: &UploadId) -> io::Result<()> {
        match fs::remove_dir_all(self.path(Key::UploadDir(id))).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A session's file, locked for one request.
pub struct FsLock {
    file: std::fs::File,
    /// The session's directory (`uploads/<id>`).
    dir: PathBuf,
}

impl FsLock {
    /// A writer appending at the session's recorded `offset`, after truncating bytes past
    /// it (written after the last durable checkpoint, so not part of the upload). `None`
    /// when the file is shorter than `offset`: recorded bytes are lost, and the file is
    /// never zero-extended to hide that.
    pub async fn into_writer(self, offset: u64) -> io::Result<Option<FsWriter>> {
        let FsLock { mut file, dir } = self;
        let file = blocking(move || {
            let len = file.metadata()?.len();
            if len < offset {
                return Ok(None);
            }
            if len > offset {
                file.set_len(offset)?;
            }
            file.seek(SeekFrom::Start(offset))?;
            // The bytes up to the offset were fdatasync'ed before it was recorded; a cut
            // file's new length is not durable yet.
            Ok(Some((file, len == offset)))
        })
        .await?;
        Ok(file.map(|(file, synced)| {
            let mut writer = FsWriter::new(file);
            writer.synced = synced;
            // A checkpoint past 0 synced the session's entries; before one, nothing did.
            writer.unlinked = (offset == 0).then_some(dir);
            writer
        }))
    }
}

/// Creates `dir` and any missing parents below `root`, fsyncing each new directory's
/// parent so the new entries survive a crash (a rename into, or a file created in, a
/// directory whose own entry was lost would be lost with it).
async fn create_dirs(root: &Path, dir: &Path) -> io::Result<()> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return fs::create_dir_all(dir).await;
    };
    let mut current = root.to_owned();
    for part in rel.components() {
        current.push(part);
        match fs::create_dir(&current).await {
            Ok(()) => sync_dir(current.parent().unwrap_or(root)).await?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// fsyncs a directory, making the entries created or renamed in it durable.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).await?.sync_all().await
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// Appends to one upload's data file. The body's frames are kept as they arrived (no copy)
/// until [`WRITE_BUDGET`]'s share of them is gathered; then they are written with one
/// `writev` on the blocking pool while the next ones gather (frames under [`SMALL_FRAME`]
/// are copied together first, so a body of tiny chunks does not become a long list). The
/// file is shared with the write and the background `fdatasync` in flight (its `flock`
/// lasts as long as any of them).
pub struct FsWriter {
    file: Arc<std::fs::File>,
    /// Frames gathered for the next write, in order.
    parts: Vec<Bytes>,
    /// Small frames copied together, to be the next part.
    small: BytesMut,
    /// Bytes in `parts` and `small`.
    gathered: usize,
    /// How much is gathered before it goes to the blocking pool.
    cap: usize,
    /// The write of the previous parts.
    writing: Option<JoinHandle<io::Result<()>>>,
    /// Bytes handed to the file since the last `fdatasync` started.
    unsynced: u64,
    /// The background `fdatasync` in flight, if any.
    syncing: Option<JoinHandle<io::Result<()>>>,
    /// Every byte handed to this writer is durable (the last [`FsWriter::sync`] came after
    /// the last frame).
    synced: bool,
    /// The session's directory, while its entry and the file's may not be durable (see
    /// [`FsStore::upload_create`]).
    unlinked: Option<PathBuf>,
}

/// Frames shorter than this are copied together rather than kept one by one.
const SMALL_FRAME: usize = 16 << 10;

/// Writes every byte of `parts`, in order, with as few `writev` calls as the kernel allows.
fn write_parts(mut file: &std::fs::File, parts: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
    let mut left = &mut slices[..];
    while !left.is_empty() {
        match file.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl FsWriter {
    fn new(file: std::fs::File) -> FsWriter {
        let writers = WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        FsWriter {
            file: Arc::new(file),
            parts: Vec::new(),
            small: BytesMut::new(),
            gathered: 0,
            cap: write_size(writers),
            writing: None,
            unsynced: 0,
            syncing: None,
            synced: false,
            unlinked: None,
        }
    }

    /// Appends a frame of the body, kept without a copy unless it is small.
    pub async fn write_bytes(&mut self, frame: Bytes) -> io::Result<()> {
        if frame.is_empty() {
            return Ok(());
        }
        self.synced = false;
        self.gathered += frame.len();
        if frame.len() < SMALL_FRAME {
            self.small.extend_from_slice(&frame);
        } else {
            if !self.small.is_empty() {
                self.parts.push(self.small.split().freeze());
            }
            self.parts.push(frame);
        }
        self.gather_done().await
    }

    async fn gather_done(&mut self) -> io::Result<()> {
        if self.gathered >= self.cap { self.submit().await } else { Ok(()) }
    }

    /// Waits for the write in flight, if any.
    async fn written(&mut self) -> io::Result<()> {
        match self.writing.take() {
            None => Ok(()),
            Some(running) => running.await.map_err(io::Error::other)?,
        }
    }

    /// Hands what is gathered to the blocking pool to be written after the previous write
    /// (waited for first, so writes stay in order); starts a background `fdatasync` every
    /// [`SYNC_EVERY`] bytes. The next gathering's size is the budget's share for the
    /// uploads open now.
    async fn submit(&mut self) -> io::Result<()> {
        if self.gathered == 0 {
            return Ok(());
        }
        self.written().await?;
        if !self.small.is_empty() {
            self.parts.push(self.small.split().freeze());
        }
        let parts = std::mem::take(&mut self.parts);
        self.unsynced += self.gathered as u64;
        self.gathered = 0;
        self.cap = write_size(WRITERS.load(std::sync::atomic::Ordering::Relaxed));
        let file = self.file.clone();
        self.writing = Some(tokio::task::spawn_blocking(move || write_parts(&file, &parts)));
        if self.unsynced >= SYNC_EVERY {
            match &self.syncing {
                Some(running) if !running.is_finished() => {}
                _ => {
                    // A finished one's error must not go unseen: the kernel reports a failed
                    // writeback once, to whichever sync asks first.
                    self.sync_done().await?;
                    let file = self.file.clone();
                    self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
                    self.unsynced = 0;
                }
            }
        }
        Ok(())
    }

    /// Waits for the background `fdatasync`, if one is in flight, and returns its outcome.
    async fn sync_done(&mut self) -> io::Result<()> {
        match self.syncing.take() {
            Some(running) => running.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Hands the gathered frames to the file (publishing then fsyncs it), and reports a failed
    /// background `fdatasync`.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.submit().await?;
        self.written().await?;
        self.sync_done().await
    }

    /// Makes everything written so far durable, the session's file and directory entries
    /// included, so that the offset can be recorded: a session's recorded bytes survive a
    /// crash.
    pub async fn checkpoint(&mut self) -> io::Result<()> {
        self.sync().await?;
        if let Some(dir) = &self.unlinked {
            sync_dir(dir).await?;
            sync_dir(dir.parent().unwrap_or(dir)).await?;
            self.unlinked = None;
        }
        Ok(())
    }

    /// Makes the bytes written so far durable (what publishing needs before its rename).
    pub async fn sync(&mut self) -> io::Result<()> {
        self.flush().await?;
        let file = self.file.clone();
        blocking(move || file.sync_data()).await?;
        self.unsynced = 0;
        self.synced = true;
        Ok(())
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        WRITERS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of every kind (tiny ones copied together, large ones kept, a mix past the
    /// write size, more than `writev` takes at once) land in the file in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_land_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path).unwrap();
        let mut writer = FsWriter::new(file);
        let mut expected = Vec::new();
        for i in 0..3000usize {
            let len = match i % 5 {
                0 => 1,
                1 => 100,
                2 => SMALL_FRAME,
                3 => 70 << 10,
                _ => 3,
            };
            let frame: Vec<u8> = (0..len).map(|j| ((i * 31 + j) % 253) as u8).collect();
            expected.extend_from_slice(&frame);
            writer.write_bytes(Bytes::from(frame)).await.unwrap();
        }
        writer.flush().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    /// Publishing syncs the file only if some byte may not be durable: not after a
    /// checkpoint with nothing since, nor when a request resumes a file that ends at the
    /// recorded offset; but after any new byte, and when resuming cut the file back. The
    /// session's directory entries are synced by its first checkpoint past offset 0.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_knows_whether_its_bytes_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).await.unwrap();
        let id: UploadId = UploadId::new_random();
        store.upload_create(&id).await.unwrap();
        let mut w = store.upload_lock(&id).await.unwrap().into_writer(0).await.unwrap().unwrap();
        assert!(w.synced, "an empty session holds nothing to sync");
        assert!(w.unlinked.is_some(), "a new session's entries are not synced");
        w.write_bytes(Bytes::from_static(b"abc")).await.unwrap();
        assert!(!w.synced);
        w.sync().await.unwrap();
        assert!(w.synced);
        assert!(w.unlinked.is_some(), "publishing needs only the bytes");
        w.checkpoint().await.unwrap();
        assert!(w.unlinked.is_none(), "a checkpoint syncs the entries too");
        w.write_bytes(Bytes::new()).await.unwrap();
        assert!(w.synced, "an empty frame changes nothing");
        w.write_bytes(Bytes::from_static(b"de")).await.unwrap();
        w.flush().await.unwrap();
        assert!(!w.synced, "flushed is not durable");
        drop(w);
        let w = store.upload_lock(&id).await.unwrap().into_writer(5).await.unwrap().unwrap();
        assert!(w.synced, "resumed where the file ends");
        assert!(w.unlinked.is_none(), "past offset 0, a checkpoint synced the entries");
        drop(w);
        let mut w = store.upload_lock(&id).await.unwrap().into_writer(3).await.unwrap().unwrap();
        assert!(!w.synced, "the cut is not durable yet");
        let digest: Digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".parse().unwrap();
        store.upload_publish(&id, &digest, &mut w).await.unwrap();
        assert!(w.synced);
        assert_eq!(std::fs::read(store.path(Key::Blob(&digest))).unwrap(), b"abc");
    }

    #[test]
    fn write_parts_writes_more_parts_than_one_writev_takes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let file = std::fs::File::create(&path).unwrap();
        let parts: Vec<Bytes> = (0..5000u32).map(|i| Bytes::from(i.to_be_bytes().to_vec())).collect();
        write_parts(&file, &parts).unwrap();
        let want: Vec<u8> = (0..5000u32).flat_map(u32::to_be_bytes).collect();
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }
}

//! Upload sessions. Bytes stream to the session's file while being hashed; after they are
//! flushed, one conditional update records the new offset and hash state (at the end of
//! every request and every [`CHECKPOINT_BYTES`] within one). A resumed session truncates
//! its file to the recorded offset, so a crash loses at most the unrecorded tail, and
//! completing never re-reads the data.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::{BoxError, Caller, Registry, RegistryError, Result, hashing::BodyHasher};
use crate::{
    db::{blobs, uploads},
    digest::{Algorithm, Digest, Hasher},
    names::{RepoName, UploadId},
    storage::{Location, Sealed, UploadWriter},
};

/// Within one long request, record progress at least this often.
const CHECKPOINT_BYTES: u64 = 64 << 20;

/// How one request's body is taken (see `Registry::write_chunk`).
#[derive(Clone, Copy)]
struct ChunkRules {
    /// The exact length a `Content-Range` chunk must have.
    exact: Option<u64>,
    /// The body of the completing PUT.
    completing: bool,
}

/// Where a session stands.
#[derive(Clone, Debug)]
pub struct UploadState {
    pub id: UploadId,
    pub offset: u64,
}

/// The exact length a `Content-Range` chunk must have; 416 unless it starts at `offset`.
fn chunk_length(range: Option<(u64, u64)>, offset: u64) -> Result<Option<u64>> {
    match range {
        None => Ok(None),
        Some((start, end)) if start == offset => Ok(Some(end - start + 1)),
        Some(_) => Err(RegistryError::RangeInvalid { offset }),
    }
}

/// A chunk written to a session held by this request.
struct Received<'a> {
    size: u64,
    hasher: Hasher,
    writer: UploadWriter,
    _busy: Busy<'a>,
}

/// Marks a session busy in this process for the guard's lifetime.
struct Busy<'a> {
    registry: &'a Registry,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.registry.busy_uploads.lock() {
            set.remove(&self.id);
        }
    }
}

impl Registry {
    fn lock_upload(&self, id: &UploadId) -> Option<Busy<'_>> {
        let mut set = self.busy_uploads.lock().ok()?;
        set.insert(id.as_str().to_owned()).then(|| Busy { registry: self, id: id.as_str().to_owned() })
    }

    /// The session's offset, hasher and store state, if it is bound to this repository
    /// and caller.
    async fn load_upload(
        &self,
        caller: &Caller,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<(u64, Hasher, Option<String>)> {
        let row = uploads::get(&self.db, id.as_str(), repo.as_str(), &caller.sub)
            .await?
            .ok_or(RegistryError::UploadUnknown)?;
        let hasher = Hasher::from_state(&row.hash_state).map_err(|e| RegistryError::Internal(e.into()))?;
        Ok((row.offset as u64, hasher, row.store_state))
    }

    /// Opens a new session bound to the repository and the caller.
    pub async fn start_upload(&self, caller: &Caller, repo: &RepoName, algorithm: Algorithm) -> Result<UploadState> {
        // The collection must exist (and predate the token) for anything to be pushed.
        self.ensure_repo(caller, repo).await?;
        let id = UploadId::new_random();
        let store_state = self.store.create_session(&id).await?;
        let hash_state = Hasher::new(algorithm).to_state();
        let new = uploads::NewUpload {
            id: id.as_str().to_owned(),
            repo: repo.as_str().to_owned(),
            subject: caller.sub.clone(),
            hash_state,
            store_state,
        };
        self.writer.start_upload(new).await?;
        Ok(UploadState { id, offset: 0 })
    }

    /// Where the session stands; unknown if its recorded bytes are gone from storage (a
    /// resume at the offset could not work).
    pub async fn upload_status(&self, caller: &Caller, repo: &RepoName, id: &UploadId) -> Result<UploadState> {
        let (offset, _, _) = self.load_upload(caller, repo, id).await?;
        if !self.store.session_holds(id, offset).await? {
            return Err(RegistryError::UploadUnknown);
        }
        Ok(UploadState { id: id.clone(), offset })
    }

    /// Appends a chunk. `range` (inclusive), when the client sent a `Content-Range`, must
    /// start at the session's offset and match the body's length exactly; otherwise the
    /// chunk is refused with 416 and nothing of it is kept.
    pub async fn append_upload<S>(
        &self,
        caller: &Caller,
        repo: &RepoName,
        id: &UploadId,
        range: Option<(u64, u64)>,
        body: S,
    ) -> Result<UploadState>
    where
        S: Stream<Item = std::result::Result<Bytes, BoxError>> + Unpin,
    {
        match self.receive(caller, repo, id, range, body, false).await? {
            Some(r) => Ok(UploadState { id: id.clone(), offset: r.size }),
            None => Err(RegistryError::UploadUnknown),
        }
    }

    /// Takes the session for this request and writes a chunk to it: returns the new offset,
    /// the hash state, and the guard that keeps other requests off the session; `None` when
    /// the session's recorded bytes are gone from storage (the session is then discarded).
    ///
    /// Lock, then load: the offset and hash state that the chunk continues are read only
    /// once this request holds the session, so a request that lost a race can never cut
    /// bytes another one recorded, nor write at a stale offset.
    async fn receive<S>(
        &self,
        caller: &Caller,
        repo: &RepoName,
        id: &UploadId,
        range: Option<(u64, u64)>,
        body: S,
        completing: bool,
    ) -> Result<Option<Received<'_>>>
    where
        S: Stream<Item = std::result::Result<Bytes, BoxError>> + Unpin,
    {
        // First only whether the session is the caller's: nothing is locked or created for
        // someone else's session. The offset read here only goes into a 416.
        let (seen, _, _) = self.load_upload(caller, repo, id).await?;
        let Some(busy) = self.lock_upload(id) else {
            return Err(RegistryError::RangeInvalid { offset: seen });
        };
        let lock = match self.store.take_session(id).await {
            Ok(lock) => lock,
            // Another request (perhaps on another replica) is writing this session.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(RegistryError::RangeInvalid { offset: seen });
            }
            Err(e) => return Err(e.into()),
        };
        let (offset, hasher, store_state) = match self.load_upload(caller, repo, id).await {
            Ok(loaded) => loaded,
            Err(e) => {
                // Completed or cancelled meanwhile: drop the file the lock may have created.
                if matches!(e, RegistryError::UploadUnknown) {
                    self.store.drop_session(id, None).await?;
                }
                return Err(e);
            }
        };
        let exact = chunk_length(range, offset)?;
        // The body's length when the request declared it (Content-Length).
        let coming = exact.or_else(|| body.size_hint().1.map(|n| n as u64));
        let Some(writer) = self.store.resume(lock, id, offset, store_state.as_deref(), coming).await? else {
            tracing::warn!(upload = %id, offset, "upload session lost its recorded bytes; discarded");
            self.discard_upload(id).await?;
            return Ok(None);
        };
        let rules = ChunkRules { exact, completing };
        let (size, hasher, writer) = self.write_chunk(id, offset, hasher, writer, body, rules).await?;
        Ok(Some(Received { size, hasher, writer, _busy: busy }))
    }

    /// Streams `body` into the session at `offset`, checkpointing as it goes. With an
    /// `exact` length (a `Content-Range` chunk) the chunk is all or nothing: no intermediate
    /// checkpoints, and a body of another length, or one that breaks off, records nothing.
    /// When `completing`, a body that arrived whole is not checkpointed at its end: the
    /// upload is published right after, and if that fails the session is still at its old
    /// offset, so the client's retry of the same PUT fits.
    async fn write_chunk<S>(
        &self,
        id: &UploadId,
        offset: u64,
        hasher: Hasher,
        mut writer: UploadWriter,
        mut body: S,
        rules: ChunkRules,
    ) -> Result<(u64, Hasher, UploadWriter)>
    where
        S: Stream<Item = std::result::Result<Bytes, BoxError>> + Unpin,
    {
        let mut hasher = BodyHasher::new(hasher);
        let mut recorded = offset;
        let mut pos = offset;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            pos += chunk.len() as u64;
            writer.write(chunk.clone()).await?;
            hasher.update(chunk).await;
            if rules.exact.is_none() && pos - recorded >= CHECKPOINT_BYTES {
                self.checkpoint(id, &mut writer, recorded, pos, hasher.hasher().await).await?;
                recorded = pos;
            }
        }
        if let Some(len) = rules.exact
            && (failure.is_some() || pos - offset != len)
        {
            return Err(failure.map_or(RegistryError::RangeInvalid { offset }, RegistryError::BodyRead));
        }
        // Keep what arrived even if the body broke off: the client resumes from here.
        if pos != recorded && !(rules.completing && failure.is_none()) {
            self.checkpoint(id, &mut writer, recorded, pos, hasher.hasher().await).await?;
        }
        match failure {
            Some(e) => Err(RegistryError::BodyRead(e)),
            None => Ok((pos, hasher.finish().await, writer)),
        }
    }

    async fn checkpoint(
        &self,
        id: &UploadId,
        writer: &mut UploadWriter,
        old: u64,
        new: u64,
        hasher: &Hasher,
    ) -> Result<()> {
        let store_state = writer.checkpoint().await?;
        let hash_state = hasher.to_state();
        let advance =
            uploads::Advance { id: id.as_str().to_owned(), old: old as i64, new: new as i64, hash_state, store_state };
        if self.writer.advance_upload(advance).await? {
            if let Err(e) = writer.committed().await {
                // Only garbage is left behind: the session's next completion removes it.
                tracing::warn!(upload = %id, error = %e, "could not remove a superseded tail");
            }
            Ok(())
        } else {
            // Another writer moved the session (or it was cancelled) under us.
            Err(RegistryError::RangeInvalid { offset: old })
        }
    }

    /// Completes a session: appends the optional final body, verifies the digest, and only
    /// then publishes the blob and links it into the repository. On a mismatch the session
    /// is discarded and nothing becomes visible.
    pub async fn finish_upload<S>(
        &self,
        caller: &Caller,
        repo: &RepoName,
        id: &UploadId,
        expected: &Digest,
        range: Option<(u64, u64)>,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, BoxError>> + Unpin,
    {
        // Hold the session until it is published, so nothing else writes to it meanwhile.
        let Some(Received { size, hasher, writer, _busy }) = self.receive(caller, repo, id, range, body, true).await?
        else {
            return self.already_published(caller, repo, id, expected).await;
        };
        let same_algorithm = hasher.algorithm() == expected.algorithm();
        let repo_id = match self.ensure_repo(caller, repo).await {
            Ok(repo_id) => repo_id,
            Err(e) => {
                self.discard_upload(id).await?;
                return Err(e);
            }
        };
        let Some(sealed) = self.store.seal(writer).await? else {
            // Completed before (a crash between completing and removing the session).
            self.discard_upload(id).await?;
            return self.already_published(caller, repo, id, expected).await;
        };
        let actual =
            if same_algorithm { hasher.finish() } else { self.rehash(&sealed, size, expected.algorithm()).await? };
        if actual != *expected {
            self.writer.end_upload(id.as_str()).await?;
            self.store.discard(sealed).await?;
            return Err(RegistryError::DigestInvalid(format!("content digest is {actual}, not {expected}")));
        }
        self.store.commit(sealed, expected, |l| self.record_blob(expected, size, repo_id, l)).await?;
        self.writer.end_upload(id.as_str()).await?;
        Ok(())
    }

    /// Writes the row of a published blob at `location` and links it into the repository;
    /// returns where the blob is (the first row for a digest wins).
    async fn record_blob(&self, digest: &Digest, size: u64, repo_id: i64, location: Location) -> Result<Location> {
        let new = blobs::NewBlob {
            digest: digest.as_str().to_owned(),
            size: size as i64,
            key: location.record().map(str::to_owned),
            repo_id,
        };
        let winner = self.writer.record_blob(new).await?;
        Ok(Location::from_record(digest, winner))
    }

    /// A completing PUT whose session's bytes are gone: the way a crash between publishing
    /// the blob and removing the session leaves it. Succeeds if the blob is linked here, or
    /// if the store had completed the session's bytes (S3: `CompleteMultipartUpload` went
    /// through, the row was never written) and they hash to `expected`: they are recorded
    /// now. Bytes that do not match are left alone (one may be another blob's object);
    /// `berth fsck --repair` removes them once nothing refers to them.
    async fn already_published(
        &self,
        caller: &Caller,
        repo: &RepoName,
        id: &UploadId,
        expected: &Digest,
    ) -> Result<()> {
        if let Some((sealed, size)) = self.store.completed_session(id).await?
            && self.rehash(&sealed, size, expected.algorithm()).await? == *expected
        {
            tracing::info!(upload = %id, digest = %expected, "recording an upload completed before a crash");
            let repo_id = self.ensure_repo(caller, repo).await?;
            self.store.commit(sealed, expected, |l| self.record_blob(expected, size, repo_id, l)).await?;
            return Ok(());
        }
        let repo_id = self.repo_id(caller, repo).await?;
        let Some(stored) = blobs::stored_in_repo(&self.db, repo_id, expected.as_str()).await? else {
            return Err(RegistryError::UploadUnknown);
        };
        if self.store.contains(&Location::from_record(expected, stored.record)).await? {
            Ok(())
        } else {
            Err(RegistryError::UploadUnknown)
        }
    }

    /// Hashes sealed bytes again: with another algorithm, or after a crash (the only re-reads).
    async fn rehash(&self, sealed: &Sealed, size: u64, algorithm: Algorithm) -> Result<Digest> {
        let mut hasher = Hasher::new(algorithm);
        let mut stream = self.store.read_sealed(sealed, size).await?;
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish())
    }

    pub(super) async fn discard_upload(&self, id: &UploadId) -> Result<()> {
        let store_state = self.writer.end_upload(id.as_str()).await?.flatten();
        self.store.drop_session(id, store_state.as_deref()).await?;
        Ok(())
    }

    pub async fn cancel_upload(&self, caller: &Caller, repo: &RepoName, id: &UploadId) -> Result<()> {
        self.load_upload(caller, repo, id).await?;
        self.discard_upload(id).await
    }

    /// A whole blob in one request (`POST ?digest=`): a session that completes at once.
    pub async fn upload_monolithic<S>(&self, caller: &Caller, repo: &RepoName, expected: &Digest, body: S) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, BoxError>> + Unpin,
    {
        let state = self.start_upload(caller, repo, expected.algorithm()).await?;
        let result = self.finish_upload(caller, repo, &state.id, expected, None, body).await;
        if result.is_err() {
            // The session was never handed to the client; don't leave it behind.
            let _ = self.discard_upload(&state.id).await;
        }
        result
    }
}

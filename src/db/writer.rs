//! Group commit for the registry's frequent writes: manifests and tags, and on SQLite also
//! upload sessions and blob records (PostgreSQL: see `Writer::session_write`). With durable
//! commits, each commit waits for a sync of the database log; a CI pushing many tags or
//! layers at once would pay one sync per write. And on SQLite, connections writing at once
//! do not queue: all but one sleep in SQLite's busy handler (1, 2, 5, … 100 ms) and retry,
//! so the lock sits idle while they sleep. One writer task takes every write that is
//! waiting, runs each in its own savepoint of one transaction, and commits them together.
//! Each write still gets its own outcome: a refused one is rolled back to its savepoint and
//! leaves the others in. A write returns only once the commit holding it is durable.

use std::sync::OnceLock;

use futures_util::FutureExt as _;
use sqlx::Acquire as _;
use tokio::sync::{mpsc, oneshot};

use super::{
    Db, DbError,
    blobs::{self, NewBlob},
    manifests::{self, NewManifest, Put},
    now,
    uploads::{self, Advance, NewUpload},
};

/// Most writes one transaction commits.
const MAX_BATCH: usize = 64;

/// A write to a repository's manifests or tags.
pub enum Write {
    /// Stores a manifest with its references and tags (see [`Put`] for the outcomes).
    /// Storing the same digest twice keeps the first copy (the bytes are identical by
    /// construction) and refreshes its `created_at`, the time garbage collection judges
    /// it by. Every blob link and child manifest it references is refreshed in the same
    /// transaction, which is also the final check that they exist: a collection pass that
    /// removed one first makes the outcome [`Put::MissingReference`], and nothing is stored;
    /// one that comes after sees the reference (see `crate::registry::gc`).
    Put(Box<NewManifest>),
    /// Deletes a manifest with its tags and references.
    DeleteManifest {
        repo_id: i64,
        digest: String,
    },
    DeleteTag {
        repo_id: i64,
        tag: String,
    },
    /// Records a new upload session.
    StartUpload(NewUpload),
    /// Moves a session to a new offset (see [`uploads::advance`]).
    AdvanceUpload(Advance),
    /// Deletes a session's row.
    EndUpload(String),
    /// Records a verified blob and links it (see [`blobs::insert_and_link`]).
    RecordBlob(NewBlob),
}

/// What a [`Write`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Put(Put),
    /// Whether the manifest or tag to delete existed.
    Deleted(bool),
    Started,
    /// Whether the session was at the old offset (and is now at the new one).
    Advanced(bool),
    /// The ended session's store state, if it existed.
    Ended(Option<Option<String>>),
    /// The storage key the blob's row holds (the first row for a digest wins).
    Recorded(Option<String>),
}

impl Outcome {
    fn kept(&self) -> bool {
        matches!(
            self,
            Outcome::Put(Put::Stored)
                | Outcome::Deleted(true)
                | Outcome::Started
                | Outcome::Advanced(true)
                | Outcome::Ended(Some(_))
                | Outcome::Recorded(_)
        )
    }

    fn mismatch(self) -> DbError {
        DbError::Protocol(format!("a write answered as {self:?}"))
    }
}

/// Runs after the commit holding a write, whether or not it succeeded, even when the
/// request that asked for it is gone (so a cache is never left stale by a cancelled one).
pub type AfterCommit = Box<dyn FnOnce() + Send + Sync>;

struct Job {
    write: Write,
    after_commit: AfterCommit,
    done: oneshot::Sender<Result<Outcome, DbError>>,
}

/// The queue to the writer task.
pub struct Writer {
    db: Db,
    /// Group commits so far (tests read it; the metrics count them too).
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Started on the first write, inside the runtime; the task ends when this is dropped.
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl Writer {
    pub fn new(db: Db) -> Writer {
        Writer { db, commits: Default::default(), queue: OnceLock::new() }
    }

    /// Stores a manifest (see [`Write::Put`]).
    pub async fn put(&self, m: NewManifest, after_commit: AfterCommit) -> Result<Put, DbError> {
        match self.write(Write::Put(Box::new(m)), after_commit).await? {
            Outcome::Put(put) => Ok(put),
            other => Err(other.mismatch()),
        }
    }

    /// Deletes a manifest or a tag; whether it existed.
    pub async fn delete(&self, write: Write, after_commit: AfterCommit) -> Result<bool, DbError> {
        match self.write(write, after_commit).await? {
            Outcome::Deleted(existed) => Ok(existed),
            other => Err(other.mismatch()),
        }
    }

    /// Records a new upload session.
    pub async fn start_upload(&self, new: NewUpload) -> Result<(), DbError> {
        match self.session_write(Write::StartUpload(new)).await? {
            Outcome::Started => Ok(()),
            other => Err(other.mismatch()),
        }
    }

    /// Moves a session to a new offset; false if it was not at the old one.
    pub async fn advance_upload(&self, a: Advance) -> Result<bool, DbError> {
        match self.session_write(Write::AdvanceUpload(a)).await? {
            Outcome::Advanced(moved) => Ok(moved),
            other => Err(other.mismatch()),
        }
    }

    /// Deletes a session's row; its store state if it existed.
    pub async fn end_upload(&self, id: &str) -> Result<Option<Option<String>>, DbError> {
        match self.session_write(Write::EndUpload(id.to_owned())).await? {
            Outcome::Ended(state) => Ok(state),
            other => Err(other.mismatch()),
        }
    }

    /// Records a verified blob and links it into its repository; the storage key the row
    /// holds.
    pub async fn record_blob(&self, b: NewBlob) -> Result<Option<String>, DbError> {
        match self.session_write(Write::RecordBlob(b)).await? {
            Outcome::Recorded(key) => Ok(key),
            other => Err(other.mismatch()),
        }
    }

    /// An upload session's or blob record's write. On SQLite, in the next group commit. On
    /// PostgreSQL, in its own transaction: the server queues row locks and groups
    /// concurrent commits itself, while a batch would hold the locks of all its writes until
    /// its commit, so two replicas batching the same blobs in opposite orders could
    /// deadlock.
    async fn session_write(&self, write: Write) -> Result<Outcome, DbError> {
        if !self.db.postgres {
            return self.write(write, Box::new(|| ())).await;
        }
        let mut tx = self.db.begin().await?;
        let outcome = run(&mut tx, &write, now()).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Performs `write` in the next group commit; `after_commit` runs once that commit is
    /// over.
    async fn write(&self, write: Write, after_commit: AfterCommit) -> Result<Outcome, DbError> {
        let queue = self.queue.get_or_init(|| {
            let (queue, jobs) = mpsc::channel(1024);
            tokio::spawn(write_batches(self.db.clone(), jobs, self.commits.clone()));
            queue
        });
        let (done, outcome) = oneshot::channel();
        queue.send(Job { write, after_commit, done }).await.map_err(|_| DbError::PoolClosed)?;
        outcome.await.map_err(|_| DbError::PoolClosed)?
    }
}

async fn write_batches(db: Db, mut queue: mpsc::Receiver<Job>, commits: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let started = std::time::Instant::now();
        let mut outcomes = Vec::with_capacity(jobs.len());
        let committed = async {
            let mut tx = db.begin().await?;
            let t = now();
            for job in &jobs {
                let mut savepoint = tx.begin().await?;
                let outcome = run(&mut savepoint, &job.write, t).await;
                if outcome.as_ref().is_ok_and(Outcome::kept) {
                    savepoint.commit().await?;
                } else {
                    savepoint.rollback().await?;
                }
                outcomes.push(outcome);
            }
            tx.commit().await
        };
        // A panic inside one batch (none is known; sqlx or a driver could) fails that batch's
        // writes, not every later one: the task, the only writer, goes on.
        let committed = match std::panic::AssertUnwindSafe(committed).catch_unwind().await {
            Ok(committed) => committed,
            Err(_) => {
                tracing::error!(writes = jobs.len(), "the database writer panicked; its batch is not committed");
                outcomes.clear();
                Err(DbError::WorkerCrashed)
            }
        };
        commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::ops::metrics::db_group_commit(jobs.len(), started.elapsed().as_secs_f64(), committed.is_ok());
        if let Err(e) = &committed {
            tracing::warn!(error = %e, writes = jobs.len(), "committing a batch of database writes failed");
        }
        let mut outcomes = outcomes.into_iter();
        for job in jobs.drain(..) {
            (job.after_commit)();
            let outcome = match &committed {
                Ok(()) => outcomes.next().unwrap_or(Err(DbError::WorkerCrashed)),
                Err(e) => Err(DbError::Io(std::io::Error::other(format!("commit failed: {e}")))),
            };
            let _ = job.done.send(outcome);
        }
    }
}

async fn run(conn: &mut sqlx::AnyConnection, write: &Write, t: i64) -> Result<Outcome, DbError> {
    Ok(match write {
        Write::Put(m) => Outcome::Put(manifests::write(conn, m, t).await?),
        Write::DeleteManifest { repo_id, digest } => Outcome::Deleted(manifests::delete(conn, *repo_id, digest).await?),
        Write::DeleteTag { repo_id, tag } => Outcome::Deleted(manifests::delete_tag(conn, *repo_id, tag).await?),
        Write::StartUpload(new) => {
            uploads::insert(conn, new).await?;
            Outcome::Started
        }
        Write::AdvanceUpload(a) => Outcome::Advanced(uploads::advance(conn, a).await?),
        Write::EndUpload(id) => Outcome::Ended(uploads::delete(conn, id).await?),
        Write::RecordBlob(b) => Outcome::Recorded(blobs::insert_and_link(conn, b).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    fn upload(i: usize) -> NewUpload {
        NewUpload {
            id: format!("u{i}"),
            repo: "c/r".into(),
            subject: "alice".into(),
            hash_state: vec![i as u8],
            store_state: None,
        }
    }

    async fn offset(db: &Db, id: &str) -> Option<i64> {
        sqlx::query_scalar("SELECT upload_offset FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await
            .unwrap()
    }

    /// Writes that wait together go in one commit, and each still gets its own outcome: an
    /// advance from a stale offset answers false and changes nothing, beside advances in the
    /// same commit that go through. (A current-thread runtime: every request below queues
    /// its write before the writer task first runs.)
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_writes_share_a_commit_and_keep_their_outcomes() {
        let (_dir, db) = db().await;
        let writer = Writer::new(db.clone());
        let started = futures_util::future::join_all((0..40).map(|i| writer.start_upload(upload(i)))).await;
        assert!(started.iter().all(Result::is_ok), "{started:?}");
        assert_eq!(writer.commits.load(std::sync::atomic::Ordering::Relaxed), 1, "40 writes, one commit");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads").fetch_one(&db.pool).await.unwrap();
        assert_eq!(rows, 40);

        let advance = |i: usize, old: i64| Advance {
            id: format!("u{i}"),
            old,
            new: 100 + i as i64,
            hash_state: vec![1, 2, 3],
            store_state: Some(format!("s{i}")),
        };
        // Even sessions from their real offset 0, odd ones from a stale offset.
        let moved = futures_util::future::join_all(
            (0..40).map(|i| writer.advance_upload(advance(i, if i % 2 == 0 { 0 } else { 7 }))),
        )
        .await;
        assert_eq!(writer.commits.load(std::sync::atomic::Ordering::Relaxed), 2);
        for (i, m) in moved.into_iter().enumerate() {
            assert_eq!(m.unwrap(), i % 2 == 0, "session {i}");
            let want = if i % 2 == 0 { 100 + i as i64 } else { 0 };
            assert_eq!(offset(&db, &format!("u{i}")).await, Some(want), "session {i}");
        }

        // Ending a session gives its store state once; a second end finds nothing.
        assert_eq!(writer.end_upload("u2").await.unwrap(), Some(Some("s2".into())));
        assert_eq!(writer.end_upload("u3").await.unwrap(), Some(None));
        assert_eq!(writer.end_upload("u2").await.unwrap(), None);
        assert_eq!(offset(&db, "u2").await, None);
        // A duplicate id is refused on its own; the others in its commit are kept.
        let again =
            futures_util::future::join_all([writer.start_upload(upload(5)), writer.start_upload(upload(41))]).await;
        assert!(again[0].is_err() && again[1].is_ok(), "{again:?}");
        assert_eq!(offset(&db, "u41").await, Some(0));
    }

    /// The first record of a digest wins (its storage key is what every later record
    /// answers), and each record links the blob into its own repository.
    #[tokio::test(flavor = "current_thread")]
    async fn the_first_record_of_a_blob_wins() {
        let (_dir, db) = db().await;
        for sql in [
            "INSERT INTO collections (id, name, private, created_at) VALUES (1, 'c', 0, 0)",
            "INSERT INTO repositories (id, collection_id, name, created_at) VALUES (7, 1, 'c/r', 0)",
            "INSERT INTO repositories (id, collection_id, name, created_at) VALUES (8, 1, 'c/s', 0)",
        ] {
            sqlx::query(sql).execute(&db.pool).await.unwrap();
        }
        let writer = Writer::new(db.clone());
        let blob = |key: &str, repo_id| NewBlob { digest: "sha256:ab".into(), size: 3, key: Some(key.into()), repo_id };
        let winners =
            futures_util::future::join_all([writer.record_blob(blob("k1", 7)), writer.record_blob(blob("k2", 8))])
                .await;
        assert_eq!(winners.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [Some("k1".into()), Some("k1".into())]);
        let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repo_blobs WHERE digest = 'sha256:ab'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(links, 2);
    }
}

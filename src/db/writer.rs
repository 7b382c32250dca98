//! Group commit for manifest and tag writes. With durable commits, each commit waits for a
//! sync of the database log; a CI pushing many tags at once would pay one sync per tag. One
//! writer task takes every manifest PUT, tag delete and manifest delete that is waiting,
//! runs each in its own savepoint of one transaction, and commits them together. Each
//! write still gets its own outcome: a refused one is rolled back to its savepoint and
//! leaves the others in. A write returns only once the commit holding it is durable.

use std::sync::OnceLock;

use sqlx::Acquire as _;
use tokio::sync::{mpsc, oneshot};

use super::{
    Db, DbError,
    manifests::{self, NewManifest, Put},
    now,
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
}

/// What a [`Write`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Put(Put),
    /// Whether the manifest or tag to delete existed.
    Deleted(bool),
}

impl Outcome {
    fn kept(&self) -> bool {
        matches!(self, Outcome::Put(Put::Stored) | Outcome::Deleted(true))
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
    /// Started on the first write, inside the runtime; the task ends when this is dropped.
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl Writer {
    pub fn new(db: Db) -> Writer {
        Writer { db, queue: OnceLock::new() }
    }

    /// Stores a manifest (see [`Write::Put`]).
    pub async fn put(&self, m: NewManifest, after_commit: AfterCommit) -> Result<Put, DbError> {
        match self.write(Write::Put(Box::new(m)), after_commit).await? {
            Outcome::Put(put) => Ok(put),
            Outcome::Deleted(_) => Err(DbError::Protocol("a put answered as a delete".into())),
        }
    }

    /// Deletes a manifest or a tag; whether it existed.
    pub async fn delete(&self, write: Write, after_commit: AfterCommit) -> Result<bool, DbError> {
        match self.write(write, after_commit).await? {
            Outcome::Deleted(existed) => Ok(existed),
            Outcome::Put(_) => Err(DbError::Protocol("a delete answered as a put".into())),
        }
    }

    /// Performs `write` in the next group commit; `after_commit` runs once that commit is
    /// over.
    async fn write(&self, write: Write, after_commit: AfterCommit) -> Result<Outcome, DbError> {
        let queue = self.queue.get_or_init(|| {
            let (queue, jobs) = mpsc::channel(1024);
            tokio::spawn(write_batches(self.db.clone(), jobs));
            queue
        });
        let (done, outcome) = oneshot::channel();
        queue.send(Job { write, after_commit, done }).await.map_err(|_| DbError::PoolClosed)?;
        outcome.await.map_err(|_| DbError::PoolClosed)?
    }
}

async fn write_batches(db: Db, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
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
        }
        .await;
        if let Err(e) = &committed {
            tracing::warn!(error = %e, writes = jobs.len(), "committing manifest and tag writes failed");
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
    })
}

//! Metadata in SQL through sqlx's `Any` driver: SQLite by default, PostgreSQL for several
//! replicas, from the same queries (portable SQL, `$n` placeholders, integers for booleans
//! and times). Each dialect has its own migrations (`migrations/sqlite`, `migrations/postgres`).
//! Each submodule owns the SQL for its tables; lookups return `Option` and the domain
//! decides which spec error an absence is.

pub mod blobs;
pub mod collections;
pub mod directory;
pub mod fsck;
pub mod gc;
pub mod keys;
pub mod manifests;
pub mod policies;
pub mod repos;
pub mod sessions;
pub mod teams;
pub mod throttle;
pub mod uploads;
pub mod users;
pub mod writer;

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{
    AnyPool,
    any::{AnyConnectOptions, AnyPoolOptions},
};

pub type DbError = sqlx::Error;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Handle on the metadata database.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    postgres: bool,
    /// Counts commits in this process that removed repositories, collections, tags or
    /// manifests outside the registry's own writes (management, garbage collection), so
    /// the registry's manifest cache can drop what it read before them.
    removals: Arc<AtomicU64>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Db {
    /// Connects (creating a SQLite file if needed) with the default pool size; does not
    /// migrate.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        Db::connect_with(url, None).await
    }

    /// Connects with at most `max_connections` (`database.max_connections`; `None`: the
    /// dialect's default, see [`default_max_connections`]); does not migrate.
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.unwrap_or_else(|| default_max_connections(sqlite)))
            .acquire_timeout(Duration::from_secs(30))
            // A burst opens every connection the pool allows (each SQLite one with its own
            // page cache and worker thread); close those idle for a minute so the memory
            // goes back.
            .idle_timeout(Duration::from_secs(60))
            // sqlx pings a connection before lending it out: one more round trip to the
            // connection's worker thread per query (16 % of a manifest GET's time on
            // SQLite). An embedded SQLite connection does not go stale; a PostgreSQL one
            // can (a restarted server), so it keeps the check.
            .test_before_acquire(!sqlite)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // The Any driver does not apply sqlx's SQLite defaults, so set them:
                        // WAL lets readers run beside the writer; FULL keeps every commit
                        // durable (a 201 must survive a power cut); cascades need foreign keys.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                            // At most 512 KiB of page cache per connection (SQLite's default
                            // is 2 MiB): with 16 connections the default let RSS grow with
                            // the database; the file's pages stay in the OS page cache.
                            "PRAGMA cache_size = -512",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Db { pool, postgres: !sqlite, removals: Arc::default() })
    }

    /// Applies the migrations of the database's dialect. Several replicas starting at once
    /// are safe: sqlx takes a lock (an advisory lock on PostgreSQL) around the run.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = if self.postgres { &POSTGRES_MIGRATIONS } else { &SQLITE_MIGRATIONS };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<Tx<'static>, DbError> {
        self.pool.begin().await
    }

    /// How many removals this process has committed (see [`Db::note_removal`]).
    pub fn removals(&self) -> u64 {
        self.removals.load(Ordering::Acquire)
    }

    /// Records a committed removal of repositories, collections, tags or manifests. Called
    /// after the commit, so a read that started before it is never cached as current.
    pub(crate) fn note_removal(&self) {
        self.removals.fetch_add(1, Ordering::AcqRel);
    }
}

/// The pool size when `database.max_connections` is unset. SQLite writes one transaction at
/// a time and its connections add no CPU the machine lacks, while each holds up to 512 KiB
/// of page cache, up to sqlx's 100 prepared statements and a worker thread: twice the
/// cores, between 4 and 16 (64 parallel uploads on 2 cores peaked 2-3 MiB lower with 4
/// than with 16, at the same throughput). PostgreSQL keeps 16.
pub fn default_max_connections(sqlite: bool) -> u32 {
    if !sqlite {
        return 16;
    }
    (2 * crate::cores() as u32).clamp(4, 16)
}

/// Current time in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// True when the error is a unique-constraint violation (a lost race on insert).
pub fn is_unique_violation(e: &DbError) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

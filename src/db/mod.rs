//! Storage: the connection enum and pool, embedded migrations, schema, rows and queries.
//!
//! Handlers never touch a connection directly: they hand a closure to [`Db::run`], which
//! runs it on the blocking thread pool so database work never stalls the async runtime, or,
//! for the writes committed in groups, to [`Db::write`], which queues it for the pool's writer
//! thread ([`group`]).

/// Runs the same diesel statement on whichever backend `$conn` is: for the statements the
/// multi-backend connection cannot run itself (multi-row inserts, `ON CONFLICT`), and for the
/// statements on the hot paths of single writes and reads (the key's lookup, the network with
/// the caller's role, the contribution, the journal entry, the equation in force, the
/// journal's version, the balance). Through the multi-backend connection, diesel writes a
/// statement's SQL text anew on every run, even when the statement is kept prepared; on the
/// concrete connection a kept statement is found by its type. Measured: about a tenth less
/// server CPU a single POST on both backends (`bench/analysis.md`).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Postgres($c) => $body,
            $crate::db::AnyConnection::Sqlite($c) => $body,
        }
    };
}

pub mod as_member;
pub mod checkpoint;
pub mod conn;
pub mod contributions;
pub mod distributions;
pub mod equations;
pub mod gather;
pub mod group;
pub mod history;
pub mod idempotency;
pub mod journal;
pub mod ledger;
pub mod members;
pub mod networks;
pub mod rows;
pub mod schema;
pub mod siwe;
pub mod together;
pub mod types;
pub mod webhooks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use conn::{write_tx, AnyConnection, BackendKind, DatabaseUrl};

/// SQLite migrations, embedded in the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// PostgreSQL migrations, embedded in the binary (same names and order as SQLite's).
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A failure below the domain: the pool could not hand out a connection, or a query failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
    /// The request's Idempotency-Key refuses it (a replay, a mismatch, a request still in
    /// progress): its database work did not run, and the idempotency middleware answers in
    /// its place.
    #[error("the request's Idempotency-Key refuses it")]
    Refused,
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<conn::Manager>,
    kind: BackendKind,
    /// SQLite: the thread that checkpoints the log for the pool's connections, woken after
    /// each [`Db::run`] (see [`checkpoint`]).
    checkpoints: Option<Arc<checkpoint::Checkpointer>>,
    /// Database tasks run on this pool (for `/metrics`): counted per pool, so that two
    /// services in one process (as the tests run them) do not count each other's.
    tasks: Arc<AtomicU64>,
    /// The writer thread that commits [`Db::write`]s in groups (None: group commit is off,
    /// and writes run as pooled tasks).
    writer: Option<Arc<group::GroupWriter>>,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_size: u32,
    /// How long a request waits for a connection before it gets a 503.
    pub connection_timeout: Duration,
    /// Whether [`Db::write`]s are committed in groups by one writer thread.
    pub group_commit: bool,
}

impl Db {
    /// Builds the pool without connecting yet (so the service can start while the
    /// database is still coming up; `/readyz` tells when it is reachable).
    pub fn new(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, DbError> {
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(0))
            // No `SELECT 1` round trip on every checkout: a connection is checked after a
            // request that failed on it instead, and dropped if it is dead (see `run`).
            .test_on_check_out(false)
            .connection_timeout(settings.connection_timeout)
            .build_unchecked(conn::Manager::new(url.clone()));
        let checkpoints = match url.kind {
            BackendKind::Sqlite => Some(Arc::new(
                checkpoint::Checkpointer::start(url.clone())
                    .map_err(|e| DbError::Unavailable(format!("checkpoint thread: {e}")))?,
            )),
            BackendKind::Postgres => None,
        };
        let writer = if settings.group_commit {
            let setup = group::Setup {
                manager: conn::Manager::new(url.clone()),
                max_wait: settings.connection_timeout,
                checkpoints: checkpoints.clone(),
            };
            Some(Arc::new(group::GroupWriter::start(setup).map_err(|e| {
                DbError::Unavailable(format!("database writer thread: {e}"))
            })?))
        } else {
            None
        };
        Ok(Self {
            pool,
            kind: url.kind,
            checkpoints,
            tasks: Arc::default(),
            writer,
        })
    }

    /// Which backend this pool talks to.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// Connections open and idle, for metrics.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Takes a connection synchronously (CLI and start-up only).
    pub fn get(&self) -> Result<r2d2::PooledConnection<conn::Manager>, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// How many database tasks have run on this pool: each a hop to another thread and back,
    /// the blocking pool's with a pooled connection ([`Db::run`]) or the group writer's
    /// ([`Db::write`]).
    pub fn tasks_run(&self) -> u64 {
        self.tasks.load(Ordering::Relaxed)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_keyed(f, KeyLookup::First).await
    }

    /// Like [`Db::write`], for a write that looks its request's key up itself where it needs
    /// to ([`idempotency::check_thread_claim`]): a write sent as one statement that inserts
    /// the key's row finds a row already there by failing, so a fresh key (nearly every
    /// request's) costs no lookup, one round trip less. Such a write must look the key up
    /// before anything else it does once that statement failed or was not sent; a write that
    /// fails with a 4xx without looking it up has it looked up by the idempotency middleware
    /// before its answer is given (a retry is then answered as the key says). With group
    /// commit on, the writer looks the key up first, as for any write.
    pub async fn write_looking_key_up_itself<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if self.writer.is_some() {
            return self.write(f).await;
        }
        self.run_keyed(f, KeyLookup::ByTheWrite).await
    }

    async fn run_keyed<T, E, F>(&self, f: F, lookup: KeyLookup) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let checkpoints = self.checkpoints.clone();
        let claim = idempotency::current_claim();
        self.tasks.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| DbError::Unavailable(e.to_string()))?;
            // The request's key is looked up here, on its first task's connection (unless the
            // task does it itself).
            let first = lookup == KeyLookup::First;
            if let Some(Err(e)) = claim
                .as_ref()
                .filter(|_| first)
                .map(|key| key.check(&mut conn))
            {
                if !matches!(e, DbError::Refused) {
                    conn::check_after_failure(&mut conn);
                }
                return Err(E::from(e));
            }
            let out = idempotency::with_thread_claim(claim, || f(&mut conn));
            if out.is_err() {
                conn::check_after_failure(&mut conn);
            }
            drop(conn);
            if let Some(checkpoints) = checkpoints {
                checkpoints.wake();
            }
            out
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs the write `f` in the next group commit (see [`group`]); with group commit off,
    /// as [`Db::run`] does. `f` is a request's whole write: it must return the error of a
    /// write transaction that failed, whose work is then rolled back.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let Some(writer) = &self.writer else {
            return self.run(f).await;
        };
        self.tasks.fetch_add(1, Ordering::Relaxed);
        writer.write(idempotency::current_claim(), f).await
    }

    /// Groups committed by the writer thread and the writes they held, for `/metrics`.
    pub fn group_counts(&self) -> (u64, u64) {
        self.writer.as_ref().map_or((0, 0), |w| w.counts())
    }

    /// Like [`Db::run`], with a second connection for `f` to read on in parallel, on SQLite
    /// when the pool has one to spare (None otherwise: `f` must work without it). The second
    /// connection reads in its own snapshot, so it is for reads that do not need this one's.
    /// On PostgreSQL the backend process does most of the reading already, and a second one
    /// measured no faster (BENCHMARKS.md), so there is none.
    pub async fn run_with_spare<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection, Option<&mut AnyConnection>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = (self.kind == BackendKind::Sqlite).then(|| self.pool.clone());
        self.run(move |conn| {
            let Some(pool) = pool else {
                return f(conn, None);
            };
            // An idle one, else a new one if the pool has room (its connections are opened
            // as needed), but never a wait for one that another request holds.
            let mut spare = pool.try_get().or_else(|| {
                (pool.state().connections < pool.max_size())
                    .then(|| pool.get_timeout(SPARE_WAIT).ok())
                    .flatten()
            });
            let out = f(conn, spare.as_deref_mut());
            if let (Err(_), Some(spare)) = (&out, spare.as_mut()) {
                conn::check_after_failure(spare);
            }
            out
        })
        .await
    }
}

/// Who looks a request's key up in a database task ([`Db::run_keyed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyLookup {
    /// The task, before its work.
    First,
    /// The work itself, where it needs to ([`Db::write_looking_key_up_itself`]).
    ByTheWrite,
}

/// How long [`Db::run_with_spare`] waits for a new connection to open.
const SPARE_WAIT: Duration = Duration::from_millis(250);

/// Runs every pending migration. On PostgreSQL an advisory lock keeps several instances
/// starting at once from migrating concurrently; on SQLite WAL mode is switched on here,
/// once, rather than on every pooled connection.
pub fn migrate(conn: &mut AnyConnection) -> Result<Vec<String>, String> {
    let applied = match conn {
        AnyConnection::Postgres(pg) => {
            diesel::sql_query("SELECT pg_advisory_lock(7251104)")
                .execute(pg)
                .map_err(|e| e.to_string())?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            diesel::sql_query("SELECT pg_advisory_unlock(7251104)")
                .execute(pg)
                .map_err(|e| e.to_string())?;
            result?
        }
        AnyConnection::Sqlite(lite) => {
            diesel::sql_query("PRAGMA journal_mode = WAL")
                .execute(lite)
                .map_err(|e| e.to_string())?;
            lite.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(|e| e.to_string())?
        }
    };
    Ok(applied)
}

/// Reverts every migration (used by the up/down/up test and `holoptic migrate --revert-all`).
pub fn revert_all(conn: &mut AnyConnection) -> Result<(), String> {
    match conn {
        AnyConnection::Postgres(pg) => pg
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        AnyConnection::Sqlite(lite) => lite
            .revert_all_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

/// Lists `table.column` for every user table, sorted, to compare the two migration trees.
pub fn describe_columns(conn: &mut AnyConnection) -> Result<Vec<String>, diesel::result::Error> {
    #[derive(QueryableByName)]
    struct Col {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let sql = match conn {
        AnyConnection::Postgres(_) => {
            "SELECT table_name || '.' || column_name AS name FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'"
        }
        AnyConnection::Sqlite(_) => {
            "SELECT m.name || '.' || p.name AS name FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' \
             AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'"
        }
    };
    let mut cols: Vec<String> = diesel::sql_query(sql)
        .load::<Col>(conn)?
        .into_iter()
        .map(|c| c.name)
        .collect();
    cols.sort();
    Ok(cols)
}

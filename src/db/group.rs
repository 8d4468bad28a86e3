//! Group commit: one writer thread per pool commits several requests' writes in one
//! transaction.
//!
//! A write handed to [`super::Db::write`] is queued for the pool's writer thread. The thread
//! takes every write queued since its last commit (at most [`MAX_GROUP`]), opens one
//! transaction on its own connection, runs each write in a savepoint of its own, and commits
//! once. A write that fails (a refused key, a 4xx, a failed statement) rolls back to its
//! savepoint and leaves the others alone. Each request gets its answer only after the commit
//! that holds its write, so what is acknowledged is durable, as before; if the commit fails,
//! every write of the group gets the error, and none of them was applied.
//!
//! Why: with one transaction per request the commit is most of a small write's cost. On
//! SQLite every commit appends each page it changed (the table's, each index's, the
//! journal's, the key's) to the log again, and each pooled connection re-reads the pages the
//! others' commits changed; writes took turns anyway (`conn::sqlite_turn`). One
//! connection doing all of the writing keeps its page cache and writes a shared page once a
//! group. The group forms by itself: while one group commits, the next requests queue, so a
//! lone request commits alone and waits for nobody.
//!
//! Bounds: at most [`MAX_QUEUED`] writes wait (more are answered 503 at once), and a write
//! that waited longer than the pool's connection timeout is answered 503 without running,
//! as a request that could not get a pooled connection is.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use parking_lot::{Condvar, Mutex};

use super::checkpoint::Checkpointer;
use super::conn::{self, transaction_depth, AnyConnection, Manager};
use super::idempotency::{self, RequestKey};
use super::DbError;

/// Most writes committed in one transaction: bounds how long the writer turn is held and
/// how much one failed commit sends back.
pub const MAX_GROUP: usize = 128;

/// Most writes waiting for the writer; more are refused with a 503 at once.
pub const MAX_QUEUED: usize = 4096;

/// The writer's SQLite connection keeps its statement journals in memory. Each write's
/// savepoint journals the pages it changes that earlier writes of the group changed first (to
/// roll back to it); past 64 KiB SQLite moves that journal to a temporary file, which stays a
/// file to the end of the transaction, so every later write of the group wrote its pages to
/// the file as well, and the file was created and deleted once a group. In memory it is
/// emptied at each savepoint's release: it holds one write's pages at a time.
const SQLITE_WRITER_PRAGMA: &str = "PRAGMA temp_store = MEMORY";

/// One request's write, as the writer thread sees it.
trait Work: Send {
    /// Runs the write in the group's transaction, inside its own savepoint; true if it
    /// succeeded (its savepoint is kept).
    fn run(&mut self, conn: &mut AnyConnection) -> bool;
    /// Answers the request: `committed` is how its group's commit ended (or why the write
    /// never ran).
    fn finish(self: Box<Self>, committed: Result<(), DbError>);
}

struct Queued {
    since: Instant,
    work: Box<dyn Work>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Queued>,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    bell: Condvar,
    groups: AtomicU64,
    writes: AtomicU64,
}

/// The writer thread of one pool. Dropping it lets the thread finish what is queued, then
/// waits for it.
pub struct GroupWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the writer thread needs besides its queue.
pub struct Setup {
    /// Opens the writer's connection (with the pool's per-connection settings).
    pub manager: Manager,
    /// A write that waited longer than this is answered 503 without running.
    pub max_wait: Duration,
    /// SQLite: woken after each commit, as after a pooled task.
    pub checkpoints: Option<Arc<Checkpointer>>,
}

impl GroupWriter {
    /// Starts the thread; it connects at its first write.
    pub fn start(setup: Setup) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || Writer { setup, conn: None }.serve(&theirs))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `f` to run in the next group with the request's idempotency key `claim`, and
    /// waits for its group's commit.
    pub async fn write<T, E, F>(&self, claim: Option<RequestKey>, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let work = Box::new(Request {
            claim,
            f: Some(f),
            out: None,
            keys: Vec::new(),
            answer,
        });
        {
            let mut queue = self.shared.queue.lock();
            if queue.jobs.len() >= MAX_QUEUED || queue.stopping {
                return Err(E::from(DbError::Unavailable(
                    "too many writes are waiting for the database".into(),
                )));
            }
            queue.jobs.push_back(Queued {
                since: Instant::now(),
                work,
            });
        }
        self.shared.bell.notify_one();
        answered
            .await
            .map_err(|_| E::from(DbError::Task("the database writer stopped".into())))?
    }

    /// Groups committed and writes run in them, for `/metrics`.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.shared.groups.load(Ordering::Relaxed),
            self.shared.writes.load(Ordering::Relaxed),
        )
    }
}

impl Drop for GroupWriter {
    fn drop(&mut self) {
        self.shared.queue.lock().stopping = true;
        self.shared.bell.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the database writer thread panicked");
            }
        }
    }
}

/// A request's write and where its answer goes.
struct Request<T, E, F> {
    claim: Option<RequestKey>,
    f: Option<F>,
    out: Option<Result<T, E>>,
    /// Keys the write recorded, marked once the group commits.
    keys: Vec<(RequestKey, bool)>,
    answer: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Work for Request<T, E, F>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<DbError> + Send,
{
    fn run(&mut self, conn: &mut AnyConnection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        // The request's key is looked up first, in the group's transaction: a key recorded
        // by an earlier write of the same group is seen, as a committed one would be.
        if let Some(Err(e)) = self.claim.as_ref().map(|key| key.check(conn)) {
            self.out = Some(Err(E::from(e)));
            return false;
        }
        FAILED.with(|failed| failed.set(false));
        KEYS.with(|keys| keys.borrow_mut().clear());
        let depth = transaction_depth(conn).ok().flatten();
        let out = JOB.with(|job| {
            job.set(depth);
            let out = idempotency::with_thread_claim(self.claim.clone(), || f(conn));
            job.set(None);
            out
        });
        self.keys = KEYS.with(|keys| std::mem::take(&mut *keys.borrow_mut()));
        let ok = out.is_ok() && !FAILED.with(|failed| failed.replace(false));
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), DbError>) {
        let out = match (self.out, committed) {
            (Some(Ok(value)), Ok(())) => {
                for (key, stored) in &self.keys {
                    key.committed(*stored);
                }
                Ok(value)
            }
            (Some(Err(e)), Ok(())) => Err(e),
            // Nothing of the group was applied, whatever the write did: its key's lookup may
            // have seen a key recorded earlier in the group, which is gone now, so it must
            // not be replayed.
            (_, Err(e)) => {
                if let Some(key) = &self.claim {
                    key.forget_verdict();
                }
                Err(E::from(e))
            }
            (None, Ok(())) => Err(E::from(DbError::Task("the write did not run".into()))),
        };
        // The request may have gone (its client hung up): nobody to answer.
        let _ = self.answer.send(out);
    }
}

thread_local! {
    /// On the writer thread while a write runs: the depth of its savepoint, which is its
    /// outermost write transaction ([`job_depth`]).
    static JOB: std::cell::Cell<Option<NonZeroU32>> = const { std::cell::Cell::new(None) };
    /// Set when the running write's transaction failed: its savepoint rolls back.
    static FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Keys recorded by the running write, marked committed after the group's commit.
    static KEYS: std::cell::RefCell<Vec<(RequestKey, bool)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// On the writer thread, the transaction depth of the running write's savepoint: a write
/// transaction opened at that depth is the request's outermost one, already open.
pub fn job_depth() -> Option<NonZeroU32> {
    JOB.with(std::cell::Cell::get)
}

/// Marks the running write failed: its savepoint rolls back, whatever its closure returns.
pub fn fail_write() {
    FAILED.with(|failed| failed.set(true));
}

/// Keeps a key recorded by the running write until its group commits.
pub fn defer_committed(key: RequestKey, stored: bool) {
    KEYS.with(|keys| keys.borrow_mut().push((key, stored)));
}

/// Why a write's savepoint ended without its write.
enum Rolled {
    /// The write failed by itself: its savepoint rolled back, the group goes on.
    Write,
    /// The write panicked: the group is rolled back.
    Panicked,
    /// The database failed under the savepoint: the group is rolled back.
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Rolled {
    fn from(e: diesel::result::Error) -> Self {
        Rolled::Db(e)
    }
}

struct Writer {
    setup: Setup,
    conn: Option<AnyConnection>,
}

impl Writer {
    fn serve(mut self, shared: &Shared) {
        while let Some(group) = next_group(shared) {
            let mut live = Vec::with_capacity(group.len());
            for job in group {
                if job.since.elapsed() > self.setup.max_wait {
                    job.work.finish(Err(DbError::Unavailable(
                        "the write waited too long for the database".into(),
                    )));
                } else {
                    live.push(job.work);
                }
            }
            if live.is_empty() {
                continue;
            }
            let committed = self.commit(&mut live);
            if let Ok(true) = committed {
                shared.groups.fetch_add(1, Ordering::Relaxed);
                shared.writes.fetch_add(
                    u64::try_from(live.len()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
            }
            for work in live {
                work.finish(committed.as_ref().map(|_| ()).map_err(copy_error));
            }
            if let Some(checkpoints) = &self.setup.checkpoints {
                checkpoints.wake();
            }
        }
    }

    /// Runs the group in one transaction and commits it (true if it did). On a failure the connection is
    /// dropped unless it is known to be clean, and the next group opens a new one.
    fn commit(&mut self, group: &mut [Box<dyn Work>]) -> Result<bool, DbError> {
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => {
                let mut fresh = r2d2::ManageConnection::connect(&self.setup.manager)
                    .map_err(|e| DbError::Unavailable(e.to_string()))?;
                if let AnyConnection::Sqlite(_) = fresh {
                    diesel::sql_query(SQLITE_WRITER_PRAGMA)
                        .execute(&mut fresh)
                        .map_err(|e| DbError::Unavailable(e.to_string()))?;
                }
                self.conn.insert(fresh)
            }
        };
        let out = run_group(conn, group);
        if out.is_err() && !clean(conn) {
            self.conn = None;
        }
        out
    }
}

/// Waits for writes and takes up to [`MAX_GROUP`] of them; None once stopping with nothing
/// left.
fn next_group(shared: &Shared) -> Option<Vec<Queued>> {
    let mut queue = shared.queue.lock();
    while queue.jobs.is_empty() {
        if queue.stopping {
            return None;
        }
        shared.bell.wait(&mut queue);
    }
    let n = queue.jobs.len().min(MAX_GROUP);
    Some(queue.jobs.drain(..n).collect())
}

/// Runs the group in one transaction; true if it committed, false if its one write failed and
/// the transaction was rolled back instead.
fn run_group(conn: &mut AnyConnection, group: &mut [Box<dyn Work>]) -> Result<bool, DbError> {
    // SQLite: the process's writer turn for the whole group, as a pooled write takes it.
    let _turn = match conn {
        AnyConnection::Sqlite(_) => Some(conn::sqlite_turn(conn::SQLITE_WRITER_WAIT)?),
        AnyConnection::Postgres(_) => None,
    };
    match conn {
        AnyConnection::Postgres(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN")?;
        }
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
        }
    }
    if let [work] = group {
        // A lone write needs no savepoint (two statements fewer): rolling the transaction
        // back undoes it and nothing else.
        let failed = match std::panic::catch_unwind(AssertUnwindSafe(|| work.run(conn))) {
            Ok(true) => return commit(conn).map(|()| true),
            Ok(false) => None,
            Err(_) => Some(DbError::Task("a write panicked".into())),
        };
        <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
        return failed.map_or(Ok(false), Err);
    }
    for work in group.iter_mut() {
        let ran = conn.transaction(|conn| {
            match std::panic::catch_unwind(AssertUnwindSafe(|| work.run(conn))) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Rolled::Write),
                Err(_) => Err(Rolled::Panicked),
            }
        });
        let failed = match ran {
            Ok(()) | Err(Rolled::Write) => continue,
            Err(Rolled::Panicked) => DbError::Task("a write panicked".into()),
            Err(Rolled::Db(e)) => DbError::Query(e),
        };
        if let Err(e) =
            <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)
        {
            tracing::error!(error = %e, "group rollback failed");
        }
        return Err(failed);
    }
    commit(conn).map(|()| true)
}

fn commit(conn: &mut AnyConnection) -> Result<(), DbError> {
    <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)
        .map_err(DbError::Query)
}

/// Whether `conn` is outside any transaction and still answers.
fn clean(conn: &mut AnyConnection) -> bool {
    matches!(transaction_depth(conn), Ok(None))
        && !<AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
        && diesel::sql_query("SELECT 1").execute(conn).is_ok()
}

/// The group's failure, for each of its writes: a database that went away is a 503 for
/// every one of them (nothing was applied: a retry with the same key can succeed).
fn copy_error(e: &DbError) -> DbError {
    match e {
        DbError::Unavailable(msg) => DbError::Unavailable(msg.clone()),
        DbError::Query(q) if crate::error::is_transient_error(q) => {
            DbError::Unavailable(q.to_string())
        }
        DbError::Query(q) => DbError::Task(format!("the group's commit failed: {q}")),
        DbError::Task(msg) => DbError::Task(msg.clone()),
        DbError::Refused => DbError::Refused,
    }
}

//! The connection enum over both backends, chosen at run time from `DATABASE_URL`.

use diesel::connection::{AnsiTransactionManager, InstrumentationEvent, TransactionManager};
use diesel::prelude::*;

/// One database connection: PostgreSQL (production) or embedded SQLite (the default).
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// A PostgreSQL connection.
    Postgres(PgConnection),
    /// An embedded SQLite connection.
    Sqlite(SqliteConnection),
}

/// Which backend a `DATABASE_URL` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `postgres://` or `postgresql://`
    Postgres,
    /// `sqlite://path` or `sqlite:path`
    Sqlite,
}

/// A parsed `DATABASE_URL`: the backend and what to hand its driver.
#[derive(Clone)]
pub struct DatabaseUrl {
    /// The backend the scheme names.
    pub kind: BackendKind,
    /// For PostgreSQL the whole URL; for SQLite the file path.
    pub target: String,
}

impl std::fmt::Debug for DatabaseUrl {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.kind)
    }
}

impl DatabaseUrl {
    /// Parses `postgres://…`, `postgresql://…`, `sqlite://path` or `sqlite:path`.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self {
                kind: BackendKind::Postgres,
                target: url.to_owned(),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(Self {
                kind: BackendKind::Sqlite,
                target: p.to_owned(),
            }),
            _ => Err("DATABASE_URL must start with postgres://, postgresql:// or sqlite://".into()),
        }
    }
}

/// Runs `f` in one write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, so the
/// write lock is taken up front and waits on `busy_timeout` instead of failing with
/// `SQLITE_BUSY` when a read inside the transaction is later upgraded to a write.
pub fn write_tx<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    write_tx_with(conn, f, |_| Ok(None)).map(|(value, _)| value)
}

/// [`write_tx`] for a handler whose answer is `status` with `f`'s value as its JSON body:
/// the body is serialised inside the transaction and, for a request with an
/// Idempotency-Key, stored with the write, so the write and its replayable response commit
/// together (one commit instead of two). Returns the body.
pub fn write_tx_reply<T, E, F>(conn: &mut AnyConnection, status: u16, f: F) -> Result<String, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    T: serde::Serialize,
    E: From<diesel::result::Error>,
{
    let reply = |value: &T| {
        serde_json::to_string(value)
            .map(|body| Some((status, body)))
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
    };
    write_tx_with(conn, f, reply)
        .and_then(|(_, body)| body.ok_or_else(|| E::from(diesel::result::Error::NotFound)))
}

/// Runs `f` in one read-only transaction, so that every statement in it reads the same
/// snapshot: `REPEATABLE READ` on PostgreSQL; on SQLite a deferred transaction, whose WAL
/// snapshot is taken at its first read and kept to its end. Inside an open transaction `f`
/// runs in it as it is.
pub fn read_snapshot<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if in_transaction(conn)? {
        return f(conn);
    }
    match conn {
        AnyConnection::Postgres(inner) => AnsiTransactionManager::begin_transaction_sql(
            inner,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN DEFERRED")?;
        }
    }
    let out = f(conn);
    end_transaction(conn, out)
}

/// Whether `conn` is inside a transaction.
pub fn in_transaction(conn: &mut AnyConnection) -> diesel::QueryResult<bool> {
    transaction_depth(conn).map(|depth| depth.is_some())
}

/// How many transactions and savepoints are open on `conn` (None: none).
pub(super) fn transaction_depth(
    conn: &mut AnyConnection,
) -> diesel::QueryResult<Option<std::num::NonZeroU32>> {
    match conn {
        AnyConnection::Postgres(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth()
        }
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth()
        }
    }
}

/// Ends the transaction begun by hand: commits when `out` is a value, rolls back when it is
/// an error (whose error is then the one returned).
fn end_transaction<T, E>(conn: &mut AnyConnection, out: Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match out {
        Ok(value) => <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)
            .map(|()| value)
            .map_err(E::from),
        Err(err) => {
            if let Err(rollback) =
                <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

/// One SQLite write transaction at a time in this process (SQLite has one writer anyway).
static SQLITE_WRITER: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// How long a writer waits for its turn: SQLite's `busy_timeout` below.
pub(super) const SQLITE_WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits up to `wait` for this process's SQLite writer turn; past it, fails as SQLite's own
/// busy timeout does ("database is locked", answered 503).
pub(super) fn sqlite_turn(
    wait: std::time::Duration,
) -> Result<parking_lot::MutexGuard<'static, ()>, diesel::result::Error> {
    SQLITE_WRITER.try_lock_for(wait).ok_or_else(|| {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("database is locked".to_owned()),
        )
    })
}

/// The content type of the answers [`write_tx_reply`] stores.
pub const REPLY_CONTENT_TYPE: &str = "application/json";

fn write_tx_with<T, E, F, R>(
    conn: &mut AnyConnection,
    f: F,
    reply: R,
) -> Result<(T, Option<String>), E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    R: FnOnce(&T) -> Result<Option<(u16, String)>, diesel::result::Error>,
    E: From<diesel::result::Error>,
{
    let depth = transaction_depth(conn)?;
    // On the group writer's thread, the request's own savepoint is its outermost write
    // transaction, already open; it commits with its group (`super::group`).
    let in_group = depth.is_some() && depth == super::group::job_depth();
    let outermost = depth.is_none() || in_group;
    // The outermost write transaction of a request with an Idempotency-Key records the key
    // (applied, or done with its reply), so a crash between commit and storing the response
    // cannot lead a retry to apply the write twice.
    let mut recorded = None;
    let f = |conn: &mut AnyConnection| {
        let value = f(conn)?;
        let answer = reply(&value)?;
        if outermost {
            let stored = answer
                .as_ref()
                .map(|(status, body)| (*status, REPLY_CONTENT_TYPE, body.as_str()));
            recorded = super::idempotency::record_thread_claim(conn, stored)?;
        }
        Ok((value, answer.map(|(_, body)| body)))
    };
    let result = match conn {
        _ if in_group => f(conn),
        AnyConnection::Postgres(_) => conn.transaction(f),
        // Inside an open transaction a nested write is a savepoint, as on PostgreSQL.
        AnyConnection::Sqlite(_) if !outermost => conn.transaction(f),
        AnyConnection::Sqlite(inner) => {
            // Writers of this process queue here rather than in SQLite's busy handler,
            // whose sleeps (up to 100 ms a try) make the tail under concurrent writes.
            // The wait is bounded like SQLite's own busy timeout, and ends the same way.
            let _turn = sqlite_turn(SQLITE_WRITER_WAIT)?;
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            let out = f(conn);
            end_transaction(conn, out)
        }
    };
    if in_group && result.is_err() {
        // Its savepoint must roll back, even if the caller goes on.
        super::group::fail_write();
    }
    if let Some((key, stored)) = recorded {
        if result.is_ok() && in_group {
            super::group::defer_committed(key, stored);
        } else if result.is_ok() {
            key.committed(stored);
        } else {
            super::idempotency::restore_thread_claim(key);
        }
    }
    result
}

/// Opens one connection with the per-connection settings each backend needs.
pub fn establish(url: &DatabaseUrl) -> Result<AnyConnection, diesel::r2d2::Error> {
    match url.kind {
        BackendKind::Postgres => PgConnection::establish(&url.target)
            .map(AnyConnection::Postgres)
            .map_err(diesel::r2d2::Error::ConnectionError),
        BackendKind::Sqlite => {
            let mut conn = SqliteConnection::establish(&url.target)
                .map_err(diesel::r2d2::Error::ConnectionError)?;
            // busy_timeout first, so the other pragmas wait rather than fail under load.
            for pragma in [
                "PRAGMA busy_timeout = 10000",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
            ] {
                diesel::sql_query(pragma)
                    .execute(&mut conn)
                    .map_err(diesel::r2d2::Error::QueryError)?;
            }
            Ok(AnyConnection::Sqlite(conn))
        }
    }
}

thread_local! {
    /// Set when the connection about to go back to the pool (on this thread) is dead.
    static DEAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// After a request failed on `conn`: if the connection itself no longer answers (the
/// database restarted, the network dropped it), it is discarded when it goes back to the
/// pool, instead of being handed to the next request. Connections are not tested at checkout,
/// which would cost a round trip on every request.
pub fn check_after_failure(conn: &mut AnyConnection) {
    let alive = diesel::sql_query("SELECT 1").execute(conn).is_ok();
    DEAD.with(|dead| dead.set(dead.get() || !alive));
}

/// Watches every query of a pooled PostgreSQL connection, on the thread running it: a
/// statement the connection keeps prepared whose result columns changed type since (a
/// migration run by another instance changed a column's type or collation) fails on every
/// later run, so after such a failure the connection is discarded when it goes back to the
/// pool, with every statement it keeps, and the next one prepares them anew.
fn watch_for_stale_statements(event: InstrumentationEvent<'_>) {
    if let InstrumentationEvent::FinishQuery { error: Some(e), .. } = event {
        if crate::error::is_stale_statement(e) {
            DEAD.with(|dead| dead.set(true));
        }
    }
}

/// r2d2 manager that picks the backend by URL scheme (the derived `establish` would try
/// PostgreSQL first and then treat any string as a SQLite path).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    /// A manager for `url`.
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        let mut conn = establish(&self.url)?;
        if let AnyConnection::Postgres(pg) = &mut conn {
            pg.set_instrumentation(watch_for_stale_statements);
        }
        if let AnyConnection::Sqlite(_) = conn {
            // The pool's commits leave checkpoints to the pool's checkpoint thread.
            diesel::sql_query(super::checkpoint::POOL_PRAGMA)
                .execute(&mut conn)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map(|_| ())
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        DEAD.with(|dead| dead.replace(false))
            || <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                conn,
            )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::sqlite_turn;
    use crate::error::ApiError;

    #[test]
    fn a_writer_that_waits_too_long_gets_a_503() {
        let held = sqlite_turn(Duration::from_secs(1)).expect("the first turn is free");
        let waited = std::thread::spawn(|| sqlite_turn(Duration::from_millis(50)).map(|_| ()))
            .join()
            .expect("joined");
        let Err(e) = waited else {
            panic!("the turn is held: the second writer must give up");
        };
        assert!(matches!(ApiError::from(e), ApiError::Unavailable));
        drop(held);
        let next = std::thread::spawn(|| sqlite_turn(Duration::from_millis(50)).map(|_| ()))
            .join()
            .expect("joined");
        assert!(next.is_ok(), "released: the next writer gets its turn");
    }
}

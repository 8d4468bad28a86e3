//! Idempotency keys: the first request with a key that writes records the key in its own
//! write transaction; later requests with the key replay its response.
//!
//! A request costs one write transaction for the key, not three: the key is looked up
//! without a lock; it is inserted, `applied`, by the request's first write transaction (so a
//! committed write and its key can never disagree); and the response is stored afterwards,
//! or, for handlers that build their response inside that transaction, right there.
//!
//! The lookup costs no database task of its own: it runs on the connection and thread of the
//! request's first database task, before that task's work ([`RequestKey::check`]), and
//! a key that refuses the request stops the task there. A request that never touches the
//! database has its key looked up when its response is stored.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::IdempotencyRow;
use super::schema::idempotency_keys;
use super::{AnyConnection, DbError};

/// The message of the unique violation raised when another request with the same key
/// committed its write first; mapped to a 409 "in progress" answer.
pub const KEY_TAKEN: &str = "another request with this Idempotency-Key was applied first";

/// What to do with a request carrying an idempotency key.
#[derive(Debug, Clone)]
pub enum Claim {
    /// First time: go ahead; the first write transaction records the key.
    Fresh,
    /// Done before: replay this response.
    Replay {
        status: u16,
        content_type: String,
        body: String,
    },
    /// The first request is still running.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
    /// The first request's write committed but its process died before the response was
    /// stored: never run it again; the client should read the resource.
    AppliedResponseLost,
}

/// Looks up `(scope, key)` for a request with hash `request_hash`, without a lock or a
/// write. An `in_progress` row (left by an earlier version, which claimed keys up front)
/// younger than `stale_before` is still running; an older one is taken over.
pub fn claim(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    stale_before: NaiveDateTime,
) -> QueryResult<Claim> {
    let existing = on_backend!(conn, |c| idempotency_keys::table
        .find((scope, key))
        .select(IdempotencyRow::as_select())
        .get_result(c))
    .optional()?;
    let Some(row) = existing else {
        return Ok(Claim::Fresh);
    };
    if row.request_hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    Ok(match row.state.as_str() {
        "done" => Claim::Replay {
            status: row
                .status_code
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200),
            content_type: row
                .content_type
                .unwrap_or_else(|| "application/json".into()),
            body: Stored::read(row.response_body, row.response_zstd)?,
        },
        "applied" if row.created_at < stale_before => Claim::AppliedResponseLost,
        "in_progress" if row.created_at < stale_before => Claim::Fresh,
        _ => Claim::InProgress,
    })
}

/// Values of [`RequestKey`]'s `written`, read as an [`Outcome`].
const UNWRITTEN: u8 = 0;
const APPLIED: u8 = 1;
const STORED: u8 = 2;

/// The key of the request being handled, shared by the middleware and the thread running
/// the request's database work.
#[derive(Debug, Clone)]
pub struct RequestKey {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    /// A key left `applied` (or `in_progress`) since before this is taken to belong to a
    /// request whose process died.
    pub stale_before: NaiveDateTime,
    written: Arc<AtomicU8>,
    verdict: Arc<parking_lot::Mutex<Verdict>>,
}

/// Whether the request's key was looked up yet, and what the lookup said.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Not yet: the request has not touched the database.
    Unchecked,
    /// Go ahead: the request is the key's first.
    Fresh,
    /// The key refuses the request: replay, in progress, mismatch or response lost.
    Refused(Claim),
}

/// What the request's writes did with its key, once the handler is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No write transaction recorded the key: the response is stored on its own.
    Unwritten,
    /// The key was recorded `applied` with the write: the response is added afterwards.
    Applied,
    /// The response was stored with the write: nothing is left to do.
    Stored,
}

impl RequestKey {
    pub fn new(
        scope: String,
        key: String,
        request_hash: String,
        stale_before: NaiveDateTime,
    ) -> Self {
        RequestKey {
            scope,
            key,
            request_hash,
            stale_before,
            written: Arc::new(AtomicU8::new(UNWRITTEN)),
            verdict: Arc::new(parking_lot::Mutex::new(Verdict::Unchecked)),
        }
    }

    /// Looks the key up on `conn` unless the request's database work did already, and fails
    /// with [`DbError::Refused`] when the key refuses the request: the work must not run.
    /// Called by [`super::Db::run`] before each of the request's database tasks, so the
    /// lookup rides on the first one instead of costing a task of its own.
    pub fn check(&self, conn: &mut AnyConnection) -> Result<(), DbError> {
        let mut verdict = self.verdict.lock();
        if let Verdict::Unchecked = *verdict {
            *verdict = match self.look_up(conn)? {
                Claim::Fresh => Verdict::Fresh,
                refusal => Verdict::Refused(refusal),
            };
        }
        match *verdict {
            Verdict::Refused(_) => Err(DbError::Refused),
            _ => Ok(()),
        }
    }

    /// The lookup, whatever an earlier one said.
    pub fn look_up(&self, conn: &mut AnyConnection) -> QueryResult<Claim> {
        claim(
            conn,
            &self.scope,
            &self.key,
            &self.request_hash,
            self.stale_before,
        )
    }

    /// Forgets what the lookup said: its transaction rolled back, so it may have seen a key
    /// that is gone (a group commit that failed, [`super::group`]).
    pub fn forget_verdict(&self) {
        *self.verdict.lock() = Verdict::Unchecked;
    }

    /// What the lookup said, once the handler is done.
    pub fn verdict(&self) -> Verdict {
        self.verdict.lock().clone()
    }

    /// What the request's writes did with the key, read once the handler is done.
    pub fn outcome(&self) -> Outcome {
        match self.written.load(Ordering::Acquire) {
            APPLIED => Outcome::Applied,
            STORED => Outcome::Stored,
            _ => Outcome::Unwritten,
        }
    }

    /// The key's row as a write records it: `applied`, or `done` with `response`.
    fn row(&self, response: Option<(u16, &str, &str)>, now: NaiveDateTime) -> IdempotencyRow {
        let stored = response.map(|(_, _, b)| Stored::of(b));
        let (response_body, response_zstd) = stored.map_or((None, None), Stored::columns);
        IdempotencyRow {
            scope: self.scope.clone(),
            idem_key: self.key.clone(),
            request_hash: self.request_hash.clone(),
            state: if response.is_some() {
                "done"
            } else {
                "applied"
            }
            .into(),
            status_code: response.map(|(s, _, _)| i32::from(s)),
            content_type: response.map(|(_, c, _)| c.to_owned()),
            response_body,
            created_at: now,
            response_zstd,
        }
    }

    /// Records the key with the write: `applied`, or `done` with `response` when the
    /// handler already has it. Fails with [`KEY_TAKEN`] when another request with the key
    /// committed first, so the whole write rolls back. The caller marks the outcome once
    /// the transaction commits ([`RequestKey::committed`]).
    fn record(
        &self,
        conn: &mut AnyConnection,
        response: Option<(u16, &str, &str)>,
        now: NaiveDateTime,
    ) -> QueryResult<()> {
        let row = self.row(response, now);
        let inserted = insert_new(conn, &row)?;
        // A row left `in_progress` by an earlier version is taken over (the lookup already
        // refused a live one); any other existing row means another request won.
        let taken = inserted == 1
            || diesel::update(
                idempotency_keys::table
                    .find((&self.scope, &self.key))
                    .filter(idempotency_keys::state.eq("in_progress")),
            )
            .set((
                idempotency_keys::request_hash.eq(&row.request_hash),
                idempotency_keys::state.eq(&row.state),
                idempotency_keys::status_code.eq(row.status_code),
                idempotency_keys::content_type.eq(&row.content_type),
                idempotency_keys::response_body.eq(&row.response_body),
                idempotency_keys::response_zstd.eq(&row.response_zstd),
                idempotency_keys::created_at.eq(row.created_at),
            ))
            .execute(conn)?
                == 1;
        if taken {
            Ok(())
        } else {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                Box::new(KEY_TAKEN.to_owned()),
            ))
        }
    }
}

/// Stores the response of a request whose write recorded its key `applied`.
pub fn complete(
    conn: &mut AnyConnection,
    key: &RequestKey,
    status: u16,
    content_type: &str,
    body: &str,
) -> QueryResult<()> {
    let (response_body, response_zstd) = Stored::of(body).columns();
    diesel::update(
        idempotency_keys::table
            .find((&key.scope, &key.key))
            .filter(idempotency_keys::state.eq("applied")),
    )
    .set((
        idempotency_keys::state.eq("done"),
        idempotency_keys::status_code.eq(i32::from(status)),
        idempotency_keys::content_type.eq(content_type),
        idempotency_keys::response_body.eq(response_body),
        idempotency_keys::response_zstd.eq(response_zstd),
    ))
    .execute(conn)
    .map(|_| ())
}

/// Stores the response of a request that wrote nothing (a refusal, or a request that only
/// reads), unless another request with the key got there first.
pub fn store(
    conn: &mut AnyConnection,
    key: &RequestKey,
    status: u16,
    content_type: &str,
    body: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = key.row(Some((status, content_type, body)), now);
    insert_new(conn, &row).map(|_| ())
}

/// A stored answer as its row keeps it: as text below [`Stored::COMPRESSED_FROM`] bytes,
/// compressed (zstd) from there. A 52-week preview answers megabytes of JSON: sent and kept as
/// text, it cost PostgreSQL 20-30 ms of CPU to store, on the request's path
/// (bench/analysis.md, *large stored answers compressed*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// `response_body`.
    Text(String),
    /// `response_zstd`.
    Zstd(Vec<u8>),
}

impl Stored {
    /// Answers this long or longer are kept compressed.
    pub const COMPRESSED_FROM: usize = 16 * 1024;

    /// zstd's level: its fastest positive one (a preview's 2.5 MB of JSON in a few ms).
    const LEVEL: i32 = 1;

    /// How `body` is kept.
    pub fn of(body: &str) -> Self {
        if body.len() < Self::COMPRESSED_FROM {
            return Stored::Text(body.to_owned());
        }
        // Compressing a buffer in memory fails only when zstd cannot allocate its context.
        zstd::bulk::compress(body.as_bytes(), Self::LEVEL)
            .map_or_else(|_| Stored::Text(body.to_owned()), Stored::Zstd)
    }

    /// Its two columns, `response_body` and `response_zstd`.
    pub fn columns(self) -> (Option<String>, Option<Vec<u8>>) {
        match self {
            Stored::Text(t) => (Some(t), None),
            Stored::Zstd(z) => (None, Some(z)),
        }
    }

    /// The answer kept in a row's two columns (empty when neither holds one).
    pub fn read(text: Option<String>, zstd: Option<Vec<u8>>) -> QueryResult<String> {
        match (text, zstd) {
            (Some(t), _) => Ok(t),
            (None, Some(z)) => zstd::stream::decode_all(z.as_slice())
                .map_err(|e| e.to_string())
                .and_then(|bytes| String::from_utf8(bytes).map_err(|e| e.to_string()))
                .map_err(|e| {
                    diesel::result::Error::DeserializationError(
                        format!("a stored answer does not decompress: {e}").into(),
                    )
                }),
            (None, None) => Ok(String::new()),
        }
    }
}

/// Inserts `row` unless its key exists; returns the rows inserted (0 or 1). `ON CONFLICT`
/// is per backend in diesel, not on the multi-backend connection.
fn insert_new(conn: &mut AnyConnection, row: &IdempotencyRow) -> QueryResult<usize> {
    let insert = diesel::insert_into(idempotency_keys::table)
        .values(row)
        .on_conflict_do_nothing();
    on_backend!(conn, |c| insert.execute(c))
}

tokio::task_local! {
    /// The idempotency key of the request being handled, set by the middleware.
    pub static REQUEST_CLAIM: Option<RequestKey>;
}

thread_local! {
    /// The same key on the blocking thread running the request's database work, until the
    /// first write transaction records it.
    static THREAD_CLAIM: std::cell::RefCell<Option<RequestKey>> = const { std::cell::RefCell::new(None) };
}

/// The current request's key, read in the handler's task.
pub fn current_claim() -> Option<RequestKey> {
    REQUEST_CLAIM.try_with(Clone::clone).ok().flatten()
}

/// Runs `f` with `claim` visible to the write transactions on this thread.
pub fn with_thread_claim<T>(claim: Option<RequestKey>, f: impl FnOnce() -> T) -> T {
    THREAD_CLAIM.with(|c| *c.borrow_mut() = claim);
    let out = f();
    THREAD_CLAIM.with(|c| *c.borrow_mut() = None);
    out
}

/// Inside the outermost write transaction: records the request's key (`applied`, or `done`
/// with `response`) if no earlier transaction of the request did. Returns the key, to be
/// marked with [`RequestKey::committed`] once the transaction commits; if it rolls back,
/// [`restore_thread_claim`] puts it back for the next one.
pub fn record_thread_claim(
    conn: &mut AnyConnection,
    response: Option<(u16, &str, &str)>,
) -> QueryResult<Option<(RequestKey, bool)>> {
    let Some(key) = THREAD_CLAIM.with(|c| c.borrow_mut().take()) else {
        return Ok(None);
    };
    match key.record(conn, response, super::rows::now()) {
        Ok(()) => Ok(Some((key, response.is_some()))),
        Err(e) => {
            restore_thread_claim(key);
            Err(e)
        }
    }
}

/// For a write sent as one statement ([`super::together`]) outside any transaction: takes
/// the request's key, unless an earlier transaction of the request recorded it, with the row
/// that records it `done` with `response`, for the statement to insert. A row already there
/// (another request's with the key, or one left `in_progress` by an earlier version) makes
/// the statement fail with [`is_key_taken`]; the write then goes the way of a transaction,
/// which tells the two apart. After the statement: [`RequestKey::committed`] if it
/// succeeded, [`restore_thread_claim`] if not.
pub fn take_thread_claim(response: (u16, &str, &str)) -> Option<(RequestKey, IdempotencyRow)> {
    let key = THREAD_CLAIM.with(|c| c.borrow_mut().take())?;
    let row = key.row(Some(response), super::rows::now());
    Some((key, row))
}

/// Looks the request's key up on `conn` (unless done already) for a write that does so itself
/// ([`super::Db::write_looking_key_up_itself`]); fails with [`DbError::Refused`] when the key
/// refuses the request. Nothing to do for a request without a key.
pub fn check_thread_claim(conn: &mut AnyConnection) -> Result<(), DbError> {
    let key = THREAD_CLAIM.with(|c| c.borrow().clone());
    key.map_or(Ok(()), |key| key.check(conn))
}

/// Whether `e` is the unique violation of inserting a key's row that is already there.
pub fn is_key_taken(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("idempotency_keys_pkey")
    )
}

/// Puts back a key whose transaction rolled back.
pub fn restore_thread_claim(key: RequestKey) {
    THREAD_CLAIM.with(|c| *c.borrow_mut() = Some(key));
}

impl RequestKey {
    /// Marks the key recorded once its transaction committed.
    pub fn committed(&self, stored: bool) {
        let state = if stored { STORED } else { APPLIED };
        self.written.store(state, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Stored;

    #[test]
    fn large_answers_are_kept_compressed_and_read_back_as_they_were() {
        let small = "x".repeat(Stored::COMPRESSED_FROM - 1);
        assert_eq!(Stored::of(&small), Stored::Text(small.clone()));
        assert_eq!(
            Stored::read(Some(small.clone()), None).expect("text"),
            small
        );

        let lines: Vec<String> = (0..2_000)
            .map(|i| {
                format!(
                    "{{\"line_no\":{i},\"amount\":\"{}.{:02}\"}}",
                    i * 7,
                    i % 100
                )
            })
            .collect();
        let large = format!("[{}] é", lines.join(","));
        assert!(large.len() >= Stored::COMPRESSED_FROM);
        let (text, zstd) = Stored::of(&large).columns();
        assert_eq!(text, None);
        let zstd = zstd.expect("compressed");
        assert!(zstd.len() < large.len() / 4, "{} bytes", zstd.len());
        assert_eq!(Stored::read(None, Some(zstd.clone())).expect("zstd"), large);

        let mut broken = zstd;
        broken.truncate(broken.len() / 2);
        assert!(Stored::read(None, Some(broken)).is_err());
        assert_eq!(Stored::read(None, None).expect("none"), "");
    }
}

//! Idempotency keys: the first request with a key claims it; later ones replay its response.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::IdempotencyRow;
use super::schema::idempotency_keys;
use super::AnyConnection;

/// What to do with a request carrying an idempotency key.
#[derive(Debug)]
pub enum Claim {
    /// First time: go ahead, then `complete`.
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

/// Claims `(scope, key)` for a request with hash `request_hash`. An in-progress claim older
/// than `stale_before` (its process died mid-request) is taken over.
pub fn claim(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> QueryResult<Claim> {
    super::write_tx(conn, |conn| {
        let existing = idempotency_keys::table
            .find((scope, key))
            .select(IdempotencyRow::as_select())
            .first(conn)
            .optional()?;
        let Some(row) = existing else {
            diesel::insert_into(idempotency_keys::table)
                .values(IdempotencyRow {
                    scope: scope.to_owned(),
                    idem_key: key.to_owned(),
                    request_hash: request_hash.to_owned(),
                    state: "in_progress".into(),
                    status_code: None,
                    content_type: None,
                    response_body: None,
                    created_at: now,
                })
                .execute(conn)?;
            return Ok(Claim::Fresh);
        };
        if row.request_hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        if row.state == "done" {
            return Ok(Claim::Replay {
                status: row
                    .status_code
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(200),
                content_type: row
                    .content_type
                    .unwrap_or_else(|| "application/json".into()),
                body: row.response_body.unwrap_or_default(),
            });
        }
        if row.state == "applied" {
            return Ok(if row.created_at < stale_before {
                Claim::AppliedResponseLost
            } else {
                Claim::InProgress
            });
        }
        if row.created_at < stale_before {
            diesel::update(idempotency_keys::table.find((scope, key)))
                .set(idempotency_keys::created_at.eq(now))
                .execute(conn)?;
            return Ok(Claim::Fresh);
        }
        Ok(Claim::InProgress)
    })
}

/// Stores the response of a claimed key.
pub fn complete(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
    status: u16,
    content_type: &str,
    body: &str,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::state.eq("done"),
            idempotency_keys::status_code.eq(i32::from(status)),
            idempotency_keys::content_type.eq(content_type),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Releases a claimed key whose request failed in a way worth retrying (5xx).
pub fn release(conn: &mut AnyConnection, scope: &str, key: &str) -> QueryResult<()> {
    // Unless its write already committed: then a retry must not run it again.
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::idem_key.eq(key))
            .filter(idempotency_keys::state.eq("in_progress")),
    )
    .execute(conn)
    .map(|_| ())
}

/// Marks a claimed key as applied, inside the transaction that applies the request's write,
/// so "committed" and "marked" can never disagree.
pub fn mark_applied(conn: &mut AnyConnection, scope: &str, key: &str) -> QueryResult<()> {
    diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::idem_key.eq(key))
            .filter(idempotency_keys::state.eq("in_progress")),
    )
    .set(idempotency_keys::state.eq("applied"))
    .execute(conn)
    .map(|_| ())
}

tokio::task_local! {
    /// The idempotency claim of the request being handled, set by the middleware.
    pub static REQUEST_CLAIM: Option<(String, String)>;
}

thread_local! {
    /// The same claim on the blocking thread running the request's database work.
    static THREAD_CLAIM: std::cell::RefCell<Option<(String, String)>> = const { std::cell::RefCell::new(None) };
}

/// The current request's claim, read in the handler's task.
pub fn current_claim() -> Option<(String, String)> {
    REQUEST_CLAIM.try_with(Clone::clone).ok().flatten()
}

/// Runs `f` with `claim` visible to [`take_thread_claim`] on this thread.
pub fn with_thread_claim<T>(claim: Option<(String, String)>, f: impl FnOnce() -> T) -> T {
    THREAD_CLAIM.with(|c| *c.borrow_mut() = claim);
    let out = f();
    THREAD_CLAIM.with(|c| *c.borrow_mut() = None);
    out
}

/// Takes the claim to mark inside the first write transaction of the request.
pub fn take_thread_claim() -> Option<(String, String)> {
    THREAD_CLAIM.with(|c| c.borrow_mut().take())
}

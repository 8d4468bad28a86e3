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
    diesel::delete(idempotency_keys::table.find((scope, key)))
        .execute(conn)
        .map(|_| ())
}

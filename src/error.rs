//! `ApiError`: the one error type handlers return, rendered as `application/problem+json`
//! (RFC 9457).
//!
//! When to use which variant:
//! - the body is not JSON at all → `InvalidJson` (400);
//! - a field (body, path or query) is missing, of the wrong type, or fails a domain check →
//!   `Validation` (422), naming the field;
//! - no or bad credentials → `Unauthenticated` (401); valid credentials but the role or
//!   network does not allow it → `Forbidden` (403);
//! - the thing does not exist *or the caller may not know it exists* → `NotFound` (404);
//! - the request is well-formed but clashes with current state → `Conflict` (409);
//! - the database cannot be reached → `Unavailable` (503); anything unexpected → `Internal`
//!   (500, details only in the log).
//!
//! Every variant has a stable `type` URI (`urn:holoptic:problem:<slug>`) clients can match on.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::domain::FieldError;

/// An RFC 9457 problem details object.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:holoptic:problem:validation-error",
    "title": "Invalid input",
    "status": 422,
    "detail": "quantity: must be greater than zero",
    "field": "quantity"
}))]
pub struct Problem {
    /// Stable identifier of the problem type, `urn:holoptic:problem:<slug>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, for a human.
    pub detail: String,
    /// The offending input field (a JSON path such as `items[2].quantity`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Every error a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not valid JSON.
    #[error("{0}")]
    InvalidJson(String),
    /// 422: one field is wrong.
    #[error("{}: {}", .0.field, .0.detail)]
    Validation(FieldError),
    /// 401: missing, expired or invalid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource (or not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// 409: clashes with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 409: a request with this Idempotency-Key is still being processed.
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyInProgress,
    /// 422: this Idempotency-Key was used with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    /// 413: body too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 405: method not allowed on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 429: too many requests.
    #[error("{0}")]
    TooManyRequests(String),
    /// 503: the database is unreachable.
    #[error("the database is unavailable; retry shortly")]
    Unavailable,
    /// 500: a bug or an unexpected failure (details are logged, not returned).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 422 for `field`.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Validation(FieldError::new(field, detail))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid-json", "Malformed JSON"),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-error",
                "Invalid input",
            ),
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Not authenticated",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "Conflict with current state",
            ),
            ApiError::IdempotencyInProgress => (
                StatusCode::CONFLICT,
                "idempotency-in-progress",
                "Request still in progress",
            ),
            ApiError::IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service-unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        Problem {
            problem_type: format!("urn:holoptic:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field: match self {
                ApiError::Validation(f) => Some(f.field.clone()),
                _ => None,
            },
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Validation(e)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "database unavailable");
                ApiError::Unavailable
            }
            DbError::Query(q) => ApiError::from(q),
            DbError::Task(msg) => ApiError::Internal(msg),
            // The idempotency middleware answers in this error's place.
            DbError::Refused => {
                ApiError::Conflict("this request's Idempotency-Key refuses it".into())
            }
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        if let E::DatabaseError(K::UniqueViolation, info) = &e {
            if info.message() == crate::db::idempotency::KEY_TAKEN {
                return ApiError::IdempotencyInProgress;
            }
            return ApiError::Conflict("a record with the same unique key already exists".into());
        }
        if is_transient_error(&e) {
            ApiError::Unavailable
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

/// Failures after which nothing was applied and a retry (with the same Idempotency-Key) can
/// succeed: the connection died or the database refused to serialize concurrent writers.
pub(crate) fn is_transient_error(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match e {
        E::DatabaseError(K::ClosedConnection | K::SerializationFailure, _) => true,
        E::DatabaseError(_, info) => is_transient(info.message()),
        // The connection died at the commit: the transaction was not applied.
        E::RollbackErrorOnCommit { commit_error, .. } => is_transient_error(commit_error),
        E::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Whether `e` is PostgreSQL refusing a statement kept prepared because its result columns
/// changed type since it was prepared (a pooled connection that meets it is discarded:
/// [`crate::db::conn::Manager`]). Nothing was applied, and the same request on another
/// connection succeeds.
pub(crate) fn is_stale_statement(e: &diesel::result::Error) -> bool {
    use diesel::result::Error as E;
    match e {
        E::DatabaseError(_, info) => info.message().contains(STALE_STATEMENT),
        E::RollbackErrorOnCommit { commit_error, .. } => is_stale_statement(commit_error),
        _ => false,
    }
}

/// PostgreSQL's message for a prepared statement whose result type changed.
const STALE_STATEMENT: &str = "cached plan must not change result type";

/// Messages of failures that go away by themselves: the database restarting, SQLite busy,
/// a read-only or full disk, a statement prepared before a column's type changed.
fn is_transient(message: &str) -> bool {
    const TRANSIENT: &[&str] = &[
        "database is locked",
        "database or disk is full",
        "readonly database",
        "terminating connection",
        "server closed the connection",
        "the database system is",
        "connection refused",
        "could not connect",
        "no connection to the server",
        "could not receive data",
        "could not send data",
        "ssl syscall error",
        "ssl error",
        "eof detected",
        "broken pipe",
        "connection reset",
        "deadlock detected",
        STALE_STATEMENT,
    ];
    let m = message.to_ascii_lowercase();
    TRANSIENT.iter().any(|t| m.contains(t))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(error = %detail, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            ApiError::Unauthenticated(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"holoptic\""));
            }
            ApiError::Unavailable | ApiError::TooManyRequests(_) => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        res.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind as K, Error as E};

    fn db_error(kind: K, message: &str) -> E {
        E::DatabaseError(kind, Box::new(message.to_string()))
    }

    #[test]
    fn a_dropped_connection_is_a_503_not_a_500() {
        for message in [
            "SSL SYSCALL error: EOF detected",
            "server closed the connection unexpectedly",
            "no connection to the server",
            "terminating connection due to administrator command",
            "deadlock detected",
        ] {
            let e = ApiError::from(db_error(K::Unknown, message));
            assert!(matches!(e, ApiError::Unavailable), "{message}: {e:?}");
        }
        let at_commit = E::RollbackErrorOnCommit {
            rollback_error: Box::new(db_error(K::ClosedConnection, "gone")),
            commit_error: Box::new(db_error(K::Unknown, "SSL SYSCALL error: EOF detected")),
        };
        assert!(matches!(ApiError::from(at_commit), ApiError::Unavailable));
        assert!(matches!(
            ApiError::from(db_error(
                K::SerializationFailure,
                "could not serialize access"
            )),
            ApiError::Unavailable
        ));
    }

    #[test]
    fn other_database_errors_stay_internal_or_conflict() {
        assert!(matches!(
            ApiError::from(db_error(K::Unknown, "syntax error at or near")),
            ApiError::Internal(_)
        ));
        assert!(matches!(
            ApiError::from(db_error(K::UniqueViolation, "duplicate key")),
            ApiError::Conflict(_)
        ));
    }
}

//! Extractors: `Caller` (maybe anonymous) and `Authenticated` (a token is required).

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage as _, HttpRequest};

use super::jwt::TokenKeys;
use crate::domain::ids::AgentId;
use crate::error::ApiError;

/// The caller: `Some(agent)` with a valid bearer token, `None` without an `Authorization`
/// header. A header that is present but bad is a 401, never silently anonymous.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<AgentId>);

/// A caller with a valid bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub AgentId);

/// A bearer token already verified for this request (by the rate limit or idempotency
/// middleware, or an extractor), so each request checks its signature once.
#[derive(Debug, Clone, Copy)]
struct Verified(Option<AgentId>);

/// Reads and verifies the bearer token of `req`, if it has an `Authorization` header.
pub fn caller_of(req: &HttpRequest) -> Result<Option<AgentId>, ApiError> {
    if let Some(Verified(caller)) = req.extensions().get::<Verified>().copied() {
        return Ok(caller);
    }
    let caller = verify(req)?;
    req.extensions_mut().insert(Verified(caller));
    Ok(caller)
}

/// The dashboard's session cookie: an access token the browser keeps out of scripts' reach.
pub const SESSION_COOKIE: &str = "holoptic_session";
/// The header a session's writes carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

fn verify(req: &HttpRequest) -> Result<Option<AgentId>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return verify_session(req);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("Authorization header is not ASCII".into()))?;
    let token = text
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthenticated("Authorization must be 'Bearer <token>'".into())
        })?;
    let keys = req
        .app_data::<web::Data<Arc<TokenKeys>>>()
        .ok_or_else(|| ApiError::Internal("token keys not configured".into()))?;
    keys.verify(token)
        .map(Some)
        .map_err(ApiError::Unauthenticated)
}

/// A request without `Authorization` may carry the dashboard's session cookie. Reads with an
/// expired or unknown session are anonymous (public data stays readable); writes need a valid
/// session and its CSRF token in `X-CSRF-Token`, which another site's page cannot know or send.
fn verify_session(req: &HttpRequest) -> Result<Option<AgentId>, ApiError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let keys = req
        .app_data::<web::Data<Arc<TokenKeys>>>()
        .ok_or_else(|| ApiError::Internal("token keys not configured".into()))?;
    let session = cookie.value();
    let safe = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    match keys.verify(session) {
        Ok(agent) if safe => Ok(Some(agent)),
        Ok(agent) => {
            let given = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if keys.csrf_matches(session, given) {
                Ok(Some(agent))
            } else {
                Err(ApiError::Forbidden(
                    "a write with the session cookie needs its X-CSRF-Token header".into(),
                ))
            }
        }
        Err(_) if safe => Ok(None),
        Err(why) => Err(ApiError::Unauthenticated(format!(
            "the session has ended ({why}); sign in again"
        ))),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req).map(Caller))
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req).and_then(|c| {
            c.map(Authenticated).ok_or_else(|| {
                ApiError::Unauthenticated(
                    "this request needs 'Authorization: Bearer <token>'".into(),
                )
            })
        }))
    }
}

//! Cross-cutting middleware: request ids, logs and metrics; rate limits; idempotency keys.

use std::time::Instant;

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _, HttpResponse};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tracing::Instrument as _;

use super::extract::BodyLimit;
use super::health::Metrics;
use super::AppState;
use crate::auth::extract::caller_of;
use crate::db::{
    self,
    idempotency::{Claim, Outcome, RequestKey, Verdict},
};
use crate::error::ApiError;
use crate::ratelimit::RateLimiter;

/// The request id header, echoed or generated.
pub const REQUEST_ID: &str = "x-request-id";
/// Header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header set on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest idempotency key.
pub const MAX_KEY_LEN: usize = 255;

/// Gives every request an id (the client's `X-Request-Id` if sane), a tracing span, a log
/// line and metrics by route pattern.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    // A NUL in the path can name nothing (and PostgreSQL text cannot hold it).
    if req.path().as_bytes().windows(3).any(|w| w == b"%00") {
        return Ok(problem(
            req,
            ApiError::field("path", "must not contain NUL characters"),
        ));
    }
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map_or_else(|| uuid::Uuid::now_v7().simple().to_string(), str::to_owned);
    let method = req.method().to_string();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = tracing::field::Empty
    );
    let mut res = next.call(req).instrument(span.clone()).await?;
    // Once routed, the request knows its resource, and its pattern is found without matching
    // the path against the routes again (which runs a regular expression per route tried:
    // about a tenth of a one-read GET's CPU, bench/analysis.md). A request answered before
    // routing (a 429, a 404) is matched here.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    span.record("route", route.as_str());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(status, latency_ms = elapsed.as_millis(), "request done");
    });
    if let Some(m) = metrics {
        m.requests
            .with_label_values(&[&method, &route, &status.to_string()])
            .inc();
        m.latency
            .with_label_values(&[&method, &route])
            .observe(elapsed.as_secs_f64());
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), v);
    }
    Ok(res.map_into_boxed_body())
}

fn payload_from(bytes: web::Bytes) -> Payload {
    let (_, mut h1) = actix_http::h1::Payload::create(true);
    h1.unread_data(bytes);
    Payload::from(h1)
}

fn problem(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    let res: HttpResponse = e.into();
    req.into_response(res)
}

/// Rate limits per client address and per authenticated agent (429 with `Retry-After` when
/// exceeded). Health probes are never limited.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let probe = matches!(req.path(), "/healthz" | "/readyz");
    let verdict = match req.app_data::<web::Data<RateLimiter>>() {
        Some(limiter) if !probe => limited(limiter, &req),
        _ => None,
    };
    if let Some((who, wait)) = verdict {
        let mut res = problem(
            req,
            ApiError::TooManyRequests(format!(
                "too many requests from this {who}; retry after {wait} s"
            )),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            res.headers_mut().insert(RETRY_AFTER, v);
        }
        return Ok(res);
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// Which limit `req` exceeds ("address" or "caller") and how long to wait, if any.
fn limited(limiter: &RateLimiter, req: &ServiceRequest) -> Option<(&'static str, u64)> {
    if let (Some(limit), Some(peer)) = (limiter.per_ip, req.peer_addr()) {
        if let Err(wait) = limiter.check(&format!("ip {}", peer.ip()), limit) {
            return Some(("address", wait));
        }
    }
    if let (Some(limit), Ok(Some(agent))) = (limiter.per_agent, caller_of(req.request())) {
        if let Err(wait) = limiter.check(&format!("agent {agent}"), limit) {
            return Some(("caller", wait));
        }
    }
    None
}

/// `Idempotency-Key` on POST and PATCH: the first request with a key runs and its response
/// (any non-5xx) is stored; a retry with the same key and body replays it; the same key with
/// another body is a 422; a retry while the first still runs is a 409. Keys are scoped to the
/// caller (or anonymous), the method and the path.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let wants = matches!(*req.method(), Method::POST | Method::PATCH);
    let key = req.headers().get(IDEMPOTENCY_KEY).cloned();
    let (Some(key), true) = (key, wants) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let key = match key.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            k.to_owned()
        }
        _ => {
            let e = ApiError::field("Idempotency-Key", "must be 1-255 visible ASCII characters");
            return Ok(problem(req, e));
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(problem(req, ApiError::Internal("no app state".into())));
    };
    let limit = req
        .app_data::<web::Data<BodyLimit>>()
        .map_or(4 * 1024 * 1024, |l| l.0);
    let caller = match caller_of(req.request()) {
        Ok(c) => c.map_or_else(|| "anonymous".to_owned(), |a| a.to_string()),
        Err(e) => return Ok(problem(req, e)),
    };
    // Read the body once to hash it, then hand it on unchanged.
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                return Ok(problem(
                    req,
                    ApiError::InvalidJson(format!("could not read body: {e}")),
                ))
            }
        };
        if body.len() + chunk.len() > limit {
            return Ok(problem(
                req,
                ApiError::PayloadTooLarge(format!("body must be at most {limit} bytes")),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let scope = format!("{caller} {} {}", req.method(), req.path());
    let mut hasher = Sha256::new();
    hasher.update(req.query_string().as_bytes());
    hasher.update([0]);
    hasher.update(
        req.headers()
            .get(CONTENT_TYPE)
            .map_or(&b""[..], HeaderValue::as_bytes),
    );
    hasher.update([0]);
    hasher.update(&body);
    let request_hash = hex::encode(hasher.finalize());
    req.set_payload(payload_from(body));

    let stale_before = db::rows::now() - state.idempotency_stale;
    let request_key = RequestKey::new(scope, key, request_hash, stale_before);
    // The key is looked up by the request's first database task, before its work
    // (`RequestKey::check`): a key that refuses the request stops it there, and its answer
    // takes the place of the handler's.
    let res = db::idempotency::REQUEST_CLAIM
        .scope(Some(request_key.clone()), next.call(req))
        .await?;
    let verdict = request_key.verdict();
    if let Verdict::Refused(claim) = verdict {
        let (http_req, _) = res.into_parts();
        return Ok(ServiceResponse::new(http_req, refusal(claim)));
    }
    let outcome = request_key.outcome();
    let status = res.status();
    // The write stored its response itself; or it failed in a way worth retrying (5xx)
    // before anything was recorded; or its write committed and a 5xx came after, when the
    // key stays `applied` so that a retry is refused, never applied twice.
    if outcome == Outcome::Stored || status.is_server_error() {
        return Ok(res.map_into_boxed_body());
    }
    let (http_req, res) = res.into_parts();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let (res, body) = res.into_parts();
    let bytes = match to_bytes(body).await {
        Ok(b) => b,
        Err(_) => web::Bytes::new(),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // A handler that answered without touching the database never had its key looked up:
    // that is done here, before its answer is stored or given.
    let unchecked = matches!(verdict, Verdict::Unchecked);
    // The outer error is a failed lookup (or no connection); the inner one a failed store.
    let stored = state
        .db
        .run(
            move |conn| -> Result<Result<Option<Claim>, ApiError>, ApiError> {
                if unchecked {
                    let claim = request_key.look_up(conn)?;
                    if !matches!(claim, Claim::Fresh) {
                        return Ok(Ok(Some(claim)));
                    }
                }
                let (status, k) = (status.as_u16(), &request_key);
                Ok(match outcome {
                    Outcome::Applied => {
                        db::idempotency::complete(conn, k, status, &content_type, &text)
                    }
                    _ => db::idempotency::store(
                        conn,
                        k,
                        status,
                        &content_type,
                        &text,
                        db::rows::now(),
                    ),
                }
                .map(|()| None)
                .map_err(ApiError::from))
            },
        )
        .await;
    match stored {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(claim))) => return Ok(ServiceResponse::new(http_req, refusal(claim))),
        // Nothing was written and the key could not be looked up: as when the database is
        // away before a write.
        Err(e) if unchecked => return Ok(ServiceResponse::new(http_req, e.into())),
        Ok(Err(e)) | Err(e) => {
            // The write itself succeeded (and recorded the key in its own transaction), or
            // there was none; only the replay record failed. A retry is refused, never
            // applied twice.
            tracing::error!(error = %e, "could not store the idempotent response");
        }
    }
    let res = res.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(http_req, res))
}

/// The answer to a request its Idempotency-Key refuses.
fn refusal(claim: Claim) -> HttpResponse {
    match claim {
        Claim::Replay {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            HttpResponse::build(status)
                .insert_header((CONTENT_TYPE, content_type))
                .insert_header((REPLAYED, "true"))
                .body(body)
        }
        Claim::Mismatch => ApiError::IdempotencyMismatch.into(),
        Claim::InProgress | Claim::Fresh => ApiError::IdempotencyInProgress.into(),
        Claim::AppliedResponseLost => ApiError::Conflict(
            "a request with this Idempotency-Key was applied but its response was lost; read the resource instead of retrying".into(),
        )
        .into(),
    }
}

//! Webhook endpoints of a network (stewards only) and their deliveries.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString as _};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{decode_cursor, page_limit, paginate, path_uuid, utc, Access, AppState, Page};
use crate::auth::Authenticated;
use crate::db::rows::{now, DeliveryRow, WebhookRow};
use crate::db::{self, write_tx};
use crate::error::ApiError;
use crate::webhooks::EVENTS;

/// Most active endpoints per network.
pub const MAX_WEBHOOKS: i64 = 20;
/// Longest endpoint URL.
pub const MAX_URL_CHARS: usize = 2000;

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreate {
    /// Where to POST events: `https://` (plain `http://` only when the service allows it).
    #[schema(example = "https://hooks.example.org/holoptic")]
    pub url: String,
    /// Events to send: `contribution.validated`, `contribution.rejected`, `proposal.passed`,
    /// `proposal.failed`, `proposal.expired`, `distribution.committed`, `payout.marked`.
    #[schema(example = json!(["contribution.validated", "distribution.committed"]))]
    pub events: Vec<String>,
}

/// An endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookOut {
    /// Endpoint id.
    pub id: uuid::Uuid,
    /// Where events are sent.
    pub url: String,
    /// Events sent there.
    pub events: Vec<String>,
    /// False once deleted.
    pub active: bool,
    /// Who registered it.
    pub created_by: uuid::Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A new endpoint and its signing secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookCreated {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// The HMAC-SHA256 key of the `Holoptic-Signature` header; keep it secret.
    pub secret: String,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryOut {
    /// Delivery id (also the payload's `id` and the `Holoptic-Delivery` header).
    pub id: uuid::Uuid,
    /// The event.
    pub event: String,
    /// `pending` (will be retried), `delivered`, or `failed` (given up).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the event was queued.
    pub created_at: DateTime<Utc>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, if pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status at the last attempt.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The JSON body sent.
    pub payload: serde_json::Value,
}

/// Filters for deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn to_out(row: WebhookRow) -> WebhookOut {
    WebhookOut {
        id: super::stored_id(&row.id),
        url: row.url,
        events: row.events.split(',').map(str::to_owned).collect(),
        active: row.active,
        created_by: super::stored_id(&row.created_by),
        created_at: utc(row.created_at),
    }
}

fn delivery_out(d: DeliveryRow) -> DeliveryOut {
    DeliveryOut {
        id: super::stored_id(&d.id),
        next_attempt_at: (d.status == "pending").then(|| utc(d.next_attempt_at)),
        event: d.event,
        status: d.status,
        attempts: d.attempts,
        created_at: utc(d.created_at),
        last_attempt_at: d.last_attempt_at.map(utc),
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        delivered_at: d.delivered_at.map(utc),
        payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
    }
}

fn check_url(raw: &str, allow_http: bool) -> Result<String, ApiError> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(ApiError::field(
            "url",
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|e| ApiError::field("url", format!("is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(ApiError::field("url", "must be https://")),
        other => {
            return Err(ApiError::field(
                "url",
                format!("must be https://, not {other}://"),
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::field("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::field(
            "url",
            "must not carry a user name or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(ApiError::field("url", "must not have a #fragment"));
    }
    Ok(url.to_string())
}

fn check_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::field("events", "must name at least one event"));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if !EVENTS.contains(&e.as_str()) {
            return Err(ApiError::field(
                format!("events[{i}]"),
                format!("'{e}' is not an event; events are {}", EVENTS.join(", ")),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// Register a webhook endpoint (stewards only). Each event is POSTed as JSON with the
/// headers `Holoptic-Event`, `Holoptic-Delivery` and `Holoptic-Signature:
/// t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; a non-2xx answer or no
/// answer within 10 s is retried with exponential backoff.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = WebhookCreate,
    responses((status = 201, description = "The endpoint and its secret", body = WebhookCreated), WriteErrors)
)]
#[post("/networks/{network}/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<WebhookCreate>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let url = check_url(&input.url, state.webhook_allow_http)?;
    let events = check_events(&input.events)?;
    let key = path.into_inner();
    let secret = format!(
        "whsec_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
    );
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                if db::webhooks::count_active(conn, &access.network.id)? >= MAX_WEBHOOKS {
                    return Err(ApiError::Conflict(format!(
                        "a network has at most {MAX_WEBHOOKS} active webhooks; delete one first"
                    )));
                }
                let row = WebhookRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    network_id: access.network.id.clone(),
                    url,
                    events: events.join(","),
                    secret,
                    created_by: caller.0.to_string(),
                    created_at: now(),
                    active: true,
                };
                db::webhooks::insert_webhook(conn, &row)?;
                let body =
                    serde_json::json!({ "webhook_id": row.id, "url": row.url, "events": events });
                crate::journal::record(
                    conn,
                    &row.network_id,
                    Some(&row.created_by),
                    "webhook.registered",
                    body,
                )?;
                Ok(row)
            })
        })
        .await?;
    let secret = row.secret.clone();
    Ok(HttpResponse::Created().json(WebhookCreated {
        webhook: to_out(row),
        secret,
    }))
}

/// A network's webhook endpoints (stewards only).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug"), super::PageParams),
    responses((status = 200, description = "A page of endpoints", body = Page<WebhookOut>), ReadErrors)
)]
#[get("/networks/{network}/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    query: ApiQuery<super::PageParams>,
) -> Result<web::Json<Page<WebhookOut>>, ApiError> {
    let limit = page_limit(query.0.limit)?;
    let after = decode_cursor(query.0.cursor.as_deref())?;
    let key = path.into_inner();
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, Some(caller.0))?;
            access.require_steward()?;
            Ok::<_, ApiError>(db::webhooks::list_webhooks(
                conn,
                &access.network.id,
                after.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    Ok(web::Json(paginate(rows, limit, |r| r.id.as_str(), to_out)))
}

/// Delete a webhook endpoint (stewards only): nothing more is sent to it. Its deliveries stay
/// listed.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("webhook_id" = String, Path, description = "Endpoint id"),
    ),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/networks/{network}/webhooks/{webhook_id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (key, raw_id) = path.into_inner();
    let id = path_uuid("webhook_id", &raw_id)?;
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let hook = db::webhooks::find_webhook(conn, &access.network.id, &id)?.ok_or_else(
                    || ApiError::NotFound(format!("no webhook {id} in this network")),
                )?;
                if hook.active {
                    db::webhooks::deactivate(conn, &id)?;
                    let body = serde_json::json!({ "webhook_id": id });
                    crate::journal::record(
                        conn,
                        &hook.network_id,
                        Some(&caller.0.to_string()),
                        "webhook.deleted",
                        body,
                    )?;
                }
                Ok::<_, ApiError>(())
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook endpoint's deliveries, newest first (stewards only).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("webhook_id" = String, Path, description = "Endpoint id"),
        DeliveryParams,
    ),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryOut>), ReadErrors)
)]
#[get("/networks/{network}/webhooks/{webhook_id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    query: ApiQuery<DeliveryParams>,
) -> Result<web::Json<Page<DeliveryOut>>, ApiError> {
    let q = query.0;
    let limit = page_limit(q.limit)?;
    let before = decode_cursor(q.cursor.as_deref())?;
    if let Some(s) = q.status.as_deref() {
        if !["pending", "delivered", "failed"].contains(&s) {
            return Err(ApiError::field(
                "status",
                "must be pending, delivered or failed",
            ));
        }
    }
    let (key, raw_id) = path.into_inner();
    let id = path_uuid("webhook_id", &raw_id)?;
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, Some(caller.0))?;
            access.require_steward()?;
            db::webhooks::find_webhook(conn, &access.network.id, &id)?
                .ok_or_else(|| ApiError::NotFound(format!("no webhook {id} in this network")))?;
            Ok::<_, ApiError>(db::webhooks::list_deliveries(
                conn,
                &id,
                q.status.as_deref(),
                before.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    Ok(web::Json(paginate(
        rows,
        limit,
        |r| r.id.as_str(),
        delivery_out,
    )))
}

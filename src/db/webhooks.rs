//! Webhook endpoints and the delivery queue (an outbox written in the changes' transactions).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::{DeliveryRow, WebhookRow};
use super::schema::{webhook_deliveries, webhooks};
use super::AnyConnection;

/// Stores a new endpoint.
pub fn insert_webhook(conn: &mut AnyConnection, row: &WebhookRow) -> QueryResult<()> {
    diesel::insert_into(webhooks::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A network's endpoints (active first is not implied: ordered by id), after a cursor.
pub fn list_webhooks(
    conn: &mut AnyConnection,
    network_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<WebhookRow>> {
    let mut q = webhooks::table
        .filter(webhooks::network_id.eq(network_id.to_owned()))
        .select(WebhookRow::as_select())
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(webhooks::id.gt(a.to_owned()));
    }
    q.order(webhooks::id).limit(limit).load(conn)
}

/// How many active endpoints a network has.
pub fn count_active(conn: &mut AnyConnection, network_id: &str) -> QueryResult<i64> {
    webhooks::table
        .filter(webhooks::network_id.eq(network_id))
        .filter(webhooks::active.eq(true))
        .count()
        .get_result(conn)
}

/// One endpoint of a network.
pub fn find_webhook(
    conn: &mut AnyConnection,
    network_id: &str,
    id: &str,
) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .filter(webhooks::network_id.eq(network_id))
        .filter(webhooks::id.eq(id))
        .select(WebhookRow::as_select())
        .get_result(conn)
        .optional()
}

/// Stops an endpoint: nothing more is queued for it, and what is queued is not sent.
pub fn deactivate(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::update(webhooks::table.find(id))
        .set(webhooks::active.eq(false))
        .execute(conn)
        .map(|_| ())
}

/// A network's active endpoints (the caller filters by event).
pub fn active(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Vec<WebhookRow>> {
    webhooks::table
        .filter(webhooks::network_id.eq(network_id))
        .filter(webhooks::active.eq(true))
        .select(WebhookRow::as_select())
        .load(conn)
}

/// Queues a delivery.
pub fn insert_delivery(conn: &mut AnyConnection, row: &DeliveryRow) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Pending deliveries due at `now`, oldest due first, with their endpoints.
pub fn due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(DeliveryRow, WebhookRow)>> {
    webhook_deliveries::table
        .inner_join(webhooks::table)
        .filter(webhook_deliveries::status.eq("pending"))
        .filter(webhook_deliveries::next_attempt_at.le(now))
        .order((webhook_deliveries::next_attempt_at, webhook_deliveries::id))
        .limit(limit)
        .select((DeliveryRow::as_select(), WebhookRow::as_select()))
        .load(conn)
}

/// Takes a due delivery for this sender until `until`: true only for the one sender whose
/// update finds it still as it was read (several instances may poll the same queue).
pub fn lease(
    conn: &mut AnyConnection,
    id: &str,
    seen_next: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::status.eq("pending"))
            .filter(webhook_deliveries::next_attempt_at.eq(seen_next)),
    )
    .set(webhook_deliveries::next_attempt_at.eq(until))
    .execute(conn)
    .map(|n| n == 1)
}

/// What one attempt found.
pub struct Attempt<'a> {
    /// `pending` (will retry), `delivered` or `failed`.
    pub status: &'a str,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// When to retry, if pending.
    pub next_attempt_at: NaiveDateTime,
    /// When this attempt was made.
    pub at: NaiveDateTime,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Records an attempt's result.
pub fn record_attempt(conn: &mut AnyConnection, id: &str, a: &Attempt<'_>) -> QueryResult<()> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq(a.status),
            webhook_deliveries::attempts.eq(a.attempts),
            webhook_deliveries::next_attempt_at.eq(a.next_attempt_at),
            webhook_deliveries::last_attempt_at.eq(Some(a.at)),
            webhook_deliveries::last_status_code.eq(a.status_code),
            webhook_deliveries::last_error.eq(a.error.as_deref()),
            webhook_deliveries::delivered_at.eq((a.status == "delivered").then_some(a.at)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// An endpoint's deliveries, newest first, optionally of one status.
pub fn list_deliveries(
    conn: &mut AnyConnection,
    webhook_id: &str,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut q = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id.to_owned()))
        .select(DeliveryRow::as_select())
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(webhook_deliveries::status.eq(s.to_owned()));
    }
    if let Some(b) = before {
        q = q.filter(webhook_deliveries::id.lt(b.to_owned()));
    }
    q.order(webhook_deliveries::id.desc())
        .limit(limit)
        .load(conn)
}

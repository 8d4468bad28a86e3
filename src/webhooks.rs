//! Webhooks: events are queued in the transaction of the change they announce (so none is
//! lost and none is sent for a change that rolled back), then sent in the background, signed
//! with HMAC-SHA256 over the timestamp and the body, and retried with exponential backoff.

use std::time::Duration;

use chrono::NaiveDateTime;
use hmac::{Hmac, Mac as _};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::config::Config;
use crate::db::rows::{now, DeliveryRow};
use crate::db::webhooks::Attempt;
use crate::db::{self, write_tx, AnyConnection, Db};
use crate::error::ApiError;

/// The events an endpoint may subscribe to.
pub const EVENTS: &[&str] = &[
    "contribution.validated",
    "contribution.rejected",
    "proposal.passed",
    "proposal.failed",
    "proposal.expired",
    "distribution.committed",
    "payout.marked",
];

/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "Holoptic-Signature";

/// Deliveries taken per poll.
const BATCH: i64 = 32;
/// How long a sender holds a delivery it is sending before another may take it.
const LEASE_SECS: i64 = 120;
/// Longest wait between attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;
/// Time allowed for the receiver to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether journal entries of `kind` may announce a webhook event (which one depends on the
/// body for decisions).
pub fn announces(kind: &str) -> bool {
    matches!(
        kind,
        "contribution.decided" | "proposal.decided" | "distribution.committed" | "payout.marked"
    )
}

/// The webhook event a journal entry of `kind` with `body` announces, if any.
pub fn event_for(kind: &str, body: &Value) -> Option<String> {
    let status = || {
        body.get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if !announces(kind) {
        return None;
    }
    let event = match kind {
        "contribution.decided" => format!("contribution.{}", status()),
        "proposal.decided" => format!("proposal.{}", status()),
        "distribution.committed" | "payout.marked" => kind.to_owned(),
        _ => return None,
    };
    EVENTS.contains(&event.as_str()).then_some(event)
}

/// Queues the event for journal entry `entry_id` to every active endpoint of the network
/// that subscribed to it. Runs in the change's transaction.
pub fn enqueue(
    conn: &mut AnyConnection,
    network_id: &str,
    entry_id: &str,
    kind: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let Some(event) = event_for(kind, body) else {
        return Ok(());
    };
    let hooks = db::webhooks::active(conn, network_id)?;
    let at = now();
    for hook in hooks
        .iter()
        .filter(|h| h.events.split(',').any(|e| e == event))
    {
        let id = uuid::Uuid::now_v7().to_string();
        let payload = json!({
            "id": id,
            "event": event,
            "network_id": network_id,
            "journal_entry_id": entry_id,
            "occurred_at": crate::api::utc(at),
            "data": body,
        });
        db::webhooks::insert_delivery(
            conn,
            &DeliveryRow {
                id,
                webhook_id: hook.id.clone(),
                network_id: network_id.to_owned(),
                event: event.clone(),
                payload: payload.to_string(),
                created_at: at,
                status: "pending".into(),
                attempts: 0,
                next_attempt_at: at,
                last_attempt_at: None,
                last_status_code: None,
                last_error: None,
                delivered_at: None,
            },
        )?;
    }
    Ok(())
}

/// HMAC-SHA256(secret, "<t>.<body>").
fn mac(secret: &str, t: i64, body: &str) -> Option<Hmac<Sha256>> {
    // HMAC takes a key of any length; the error case does not happen.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(mac)
}

/// The `Holoptic-Signature` value for `body` sent at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &str) -> String {
    let v1 = mac(secret, t, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={t},v1={v1}")
}

/// Checks a `Holoptic-Signature` header (as a receiver would), with `tolerance_secs` for
/// the timestamp's age.
pub fn verify(secret: &str, header: &str, body: &str, now_unix: i64, tolerance_secs: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    (now_unix - t).abs() <= tolerance_secs
        && mac(secret, t, body).is_some_and(|m| m.verify_slice(&v1).is_ok())
}

/// How the sender retries.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Poll interval.
    pub poll: Duration,
    /// First retry delay; doubled each attempt.
    pub retry_base_ms: u64,
    /// Attempts before giving up.
    pub max_attempts: i32,
}

impl SenderSettings {
    /// From the service's configuration.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        Ok(Self {
            poll: Duration::from_millis(config.webhook_poll_ms.max(10)),
            retry_base_ms: config.webhook_retry_base_ms.max(1),
            max_attempts: i32::try_from(config.webhook_max_attempts)
                .map_err(|_| "HOLOPTIC_WEBHOOK_MAX_ATTEMPTS is too large".to_owned())?,
        })
    }

    /// The wait after failed attempt number `attempts` (1-based).
    pub fn backoff(&self, attempts: i32) -> chrono::Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let ms = self
            .retry_base_ms
            .saturating_mul(1u64 << doublings)
            .min(MAX_BACKOFF_MS);
        chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}

/// Sends due deliveries, forever (started with the server). Several instances may run it:
/// each delivery is leased by one sender at a time.
pub async fn sender(db: Db, settings: SenderSettings) {
    let client = match reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Holoptic-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client: webhooks are not sent");
            return;
        }
    };
    loop {
        tokio::time::sleep(settings.poll).await;
        let taken = db
            .run(|conn| {
                let at = now();
                let until = at + chrono::Duration::seconds(LEASE_SECS);
                let mut mine = Vec::new();
                for (d, hook) in db::webhooks::due(conn, at, BATCH)? {
                    if db::webhooks::lease(conn, &d.id, d.next_attempt_at, until)? {
                        mine.push((d, hook));
                    }
                }
                Ok::<_, ApiError>(mine)
            })
            .await;
        let taken = match taken {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "reading due webhook deliveries failed; will retry");
                continue;
            }
        };
        let sends = taken.into_iter().map(|(d, hook)| {
            let client = client.clone();
            let db = db.clone();
            let settings = settings.clone();
            async move {
                let outcome = if hook.active {
                    send(&client, &hook.url, &hook.secret, &d).await
                } else {
                    Err((None, "the webhook was deleted".to_owned()))
                };
                let attempt = settle(&settings, &d, &hook, outcome, now());
                let id = d.id.clone();
                let saved = db
                    .run(move |conn| {
                        write_tx(conn, |conn| {
                            Ok::<_, ApiError>(db::webhooks::record_attempt(conn, &id, &attempt)?)
                        })
                    })
                    .await;
                if let Err(e) = saved {
                    tracing::warn!(error = %e, delivery = %d.id, "recording a webhook attempt failed");
                }
            }
        });
        futures_util::future::join_all(sends).await;
    }
}

type Outcome = Result<u16, (Option<u16>, String)>;

async fn send(client: &reqwest::Client, url: &str, secret: &str, d: &DeliveryRow) -> Outcome {
    let t = chrono::Utc::now().timestamp();
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, sign(secret, t, &d.payload))
        .header("Holoptic-Event", &d.event)
        .header("Holoptic-Delivery", &d.id)
        .body(d.payload.clone())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
        Ok(r) => Err((
            Some(r.status().as_u16()),
            format!("the receiver answered {}", r.status()),
        )),
        Err(e) => Err((None, format!("could not reach the receiver: {e}"))),
    }
}

fn settle(
    settings: &SenderSettings,
    d: &DeliveryRow,
    hook: &crate::db::rows::WebhookRow,
    outcome: Outcome,
    at: NaiveDateTime,
) -> Attempt<'static> {
    let attempts = d.attempts.saturating_add(1);
    match outcome {
        Ok(code) => Attempt {
            status: "delivered",
            attempts,
            next_attempt_at: at,
            at,
            status_code: Some(i32::from(code)),
            error: None,
        },
        Err((code, error)) => {
            let give_up = !hook.active || attempts >= settings.max_attempts;
            Attempt {
                status: if give_up { "failed" } else { "pending" },
                attempts,
                next_attempt_at: at + settings.backoff(attempts),
                at,
                status_code: code.map(i32::from),
                error: Some(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_and_refuses_tampering() {
        let h = sign("whsec_test", 1_700_000_000, r#"{"a":1}"#);
        assert!(h.starts_with("t=1700000000,v1="));
        assert!(verify("whsec_test", &h, r#"{"a":1}"#, 1_700_000_010, 300));
        assert!(!verify("whsec_test", &h, r#"{"a":2}"#, 1_700_000_010, 300));
        assert!(!verify("whsec_other", &h, r#"{"a":1}"#, 1_700_000_010, 300));
        assert!(!verify("whsec_test", &h, r#"{"a":1}"#, 1_700_009_000, 300));
        assert!(!verify("whsec_test", "t=1,v1=zz", "{}", 1, 300));
    }

    #[test]
    fn signature_matches_a_known_hmac() {
        // HMAC-SHA256("key", "0.body"), computed independently with Python:
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"0.body",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign("key", 0, "body"),
            "t=0,v1=e0af04d5c83b24373ff89f540d0c8fd9a4e097e2b3ee8318ab5541047697626d"
        );
    }

    #[test]
    fn events_come_from_journal_kinds() {
        let validated = json!({"status": "validated"});
        assert_eq!(
            event_for("contribution.decided", &validated).as_deref(),
            Some("contribution.validated")
        );
        assert_eq!(
            event_for("proposal.decided", &json!({"status": "passed"})).as_deref(),
            Some("proposal.passed")
        );
        assert_eq!(
            event_for("distribution.committed", &json!({})).as_deref(),
            Some("distribution.committed")
        );
        assert_eq!(event_for("contribution.recorded", &validated), None);
        assert_eq!(
            event_for("proposal.decided", &json!({"status": "open"})),
            None
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = SenderSettings {
            poll: Duration::from_millis(100),
            retry_base_ms: 1000,
            max_attempts: 8,
        };
        assert_eq!(s.backoff(1).num_milliseconds(), 1000);
        assert_eq!(s.backoff(2).num_milliseconds(), 2000);
        assert_eq!(s.backoff(4).num_milliseconds(), 8000);
        assert_eq!(s.backoff(40).num_milliseconds(), 3_600_000);
    }
}

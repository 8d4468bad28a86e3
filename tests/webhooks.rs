//! Webhooks: registered by stewards, queued with the change they announce, signed with
//! HMAC-SHA256, retried with backoff after failures, and listed with their status.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::{work, TestApp};
use serde_json::{json, Value};

on_both_backends!(
    deliveries_are_signed_and_retried,
    only_stewards_and_valid_input
);

const N: &str = "/v1/networks/lab";

/// What the receiver saw: event header, signature header, body.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A receiver on a free port that answers 500 to its first `fail_first` requests, then 204.
async fn receiver(fail_first: usize) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let state = seen.clone();
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: String| {
                let state = state.clone();
                async move {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let mut seen = state.lock().expect("lock");
                    seen.push((h("Holoptic-Event"), h("Holoptic-Signature"), body));
                    if seen.len() <= fail_first {
                        HttpResponse::InternalServerError().finish()
                    } else {
                        HttpResponse::NoContent().finish()
                    }
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}/hook"), seen)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn deliveries(app: &TestApp, token: &str, hook: &str) -> Vec<Value> {
    app.get(&format!("{N}/webhooks/{hook}/deliveries"), Some(token))
        .await
        .ok(200)["items"]
        .as_array()
        .expect("items")
        .clone()
}

async fn deliveries_are_signed_and_retried(app: TestApp) {
    let steward = app.network("lab", json!({ "approvals_required": 1 })).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let (url, seen) = receiver(2).await;
    let created = app
        .post(
            &format!("{N}/webhooks"),
            Some(&steward.token),
            json!({ "url": url, "events": ["contribution.validated", "distribution.committed", "contribution.validated"] }),
        )
        .await
        .ok(201);
    let hook = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        created["events"],
        json!(["contribution.validated", "distribution.committed"])
    );
    let listed = app
        .get(&format!("{N}/webhooks"), Some(&steward.token))
        .await
        .ok(200);
    assert_eq!(listed["items"][0]["id"], hook.as_str());
    assert!(
        listed["items"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    // A rejected contribution announces nothing to this endpoint; a validated one does.
    let c = app.work("lab", &ada, "2").await;
    let cid = c["id"].as_str().expect("id");
    app.approve("lab", &c, &bob).await;

    // The receiver fails twice; the third attempt (after 200 ms, then 400 ms) is accepted.
    let s = seen.clone();
    wait_for("three attempts", move || s.lock().expect("lock").len() >= 3).await;
    let got = seen.lock().expect("lock").clone();
    let now = chrono::Utc::now().timestamp();
    for (event, signature, body) in &got {
        assert_eq!(event, "contribution.validated");
        assert!(
            holoptic::webhooks::verify(&secret, signature, body, now, 300),
            "{signature}"
        );
        assert!(!holoptic::webhooks::verify(
            "whsec_wrong",
            signature,
            body,
            now,
            300
        ));
        let payload: Value = serde_json::from_str(body).expect("json");
        assert_eq!(payload["event"], "contribution.validated");
        assert_eq!(payload["data"]["contribution_id"], cid);
        assert_eq!(payload["data"]["status"], "validated");
    }
    // The same delivery each time (receivers can de-duplicate on its id).
    assert_eq!(got[0].2, got[2].2);
    let (t, _) = holoptic_signature_parts(&got[2].1);
    assert!((now - t).abs() < 60);

    let token = steward.token.clone();
    let mut list = Vec::new();
    for _ in 0..100 {
        list = deliveries(&app, &token, &hook).await;
        if list.first().is_some_and(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["status"], "delivered");
    assert_eq!(list[0]["attempts"], 3);
    assert_eq!(list[0]["last_status_code"], 204);
    assert!(list[0]["delivered_at"].is_string());

    // After deletion nothing more is queued for it.
    app.send(
        reqwest::Method::DELETE,
        &format!("{N}/webhooks/{hook}"),
        Some(&steward.token),
        None,
        &[],
    )
    .await
    .ok(204);
    let c = app
        .post(&format!("{N}/contributions"), Some(&ada.token), work("1"))
        .await
        .ok(201);
    app.approve("lab", &c, &bob).await;
    assert_eq!(deliveries(&app, &token, &hook).await.len(), 1);
    let listed = app
        .get(&format!("{N}/webhooks"), Some(&steward.token))
        .await
        .ok(200);
    assert_eq!(listed["items"][0]["active"], false);
}

fn holoptic_signature_parts(header: &str) -> (i64, String) {
    let mut t = 0;
    let mut v1 = String::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse().expect("t"),
            Some(("v1", v)) => v1 = v.to_owned(),
            _ => {}
        }
    }
    (t, v1)
}

async fn only_stewards_and_valid_input(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let outsider = app.network("other", json!({})).await;
    let body = json!({ "url": "https://hooks.example.org/x", "events": ["payout.marked"] });
    let path = format!("{N}/webhooks");
    app.post(&path, Some(&ada.token), body.clone())
        .await
        .assert_problem(403, None);
    app.post(&path, Some(&outsider.token), body.clone())
        .await
        .assert_problem(403, None);
    app.post(&path, None, body.clone())
        .await
        .assert_problem(401, None);
    app.get(&path, Some(&ada.token))
        .await
        .assert_problem(403, None);
    for (bad, field) in [
        (
            json!({ "url": "ftp://x.org/", "events": ["payout.marked"] }),
            "url",
        ),
        (
            json!({ "url": "not a url", "events": ["payout.marked"] }),
            "url",
        ),
        (
            json!({ "url": "https://u:p@x.org/", "events": ["payout.marked"] }),
            "url",
        ),
        (json!({ "url": "https://x.org/", "events": [] }), "events"),
        (
            json!({ "url": "https://x.org/", "events": ["payout.marked", "nope"] }),
            "events[1]",
        ),
    ] {
        app.post(&path, Some(&steward.token), bad)
            .await
            .assert_problem(422, Some(field));
    }
    let hook = app.post(&path, Some(&steward.token), body).await.ok(201);
    let id = hook["id"].as_str().expect("id");
    // Another network's steward cannot see its deliveries.
    app.get(
        &format!("/v1/networks/other/webhooks/{id}/deliveries"),
        Some(&outsider.token),
    )
    .await
    .assert_problem(404, None);
    app.get(
        &format!("{N}/webhooks/{id}/deliveries?status=lost"),
        Some(&steward.token),
    )
    .await
    .assert_problem(422, Some("status"));
    // Registering is journaled; the secret is not.
    let journal = app
        .get(&format!("{N}/journal?limit=200"), Some(&steward.token))
        .await
        .ok(200);
    let text = journal.to_string();
    assert!(text.contains("webhook.registered"));
    assert!(!text.contains("whsec_"));
}

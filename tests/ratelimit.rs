//! Rate limits: per caller and per client address, 429 problem+json with `Retry-After`,
//! other callers unaffected, health probes never limited.

mod common;

use common::{Backend, TestApp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_caller_sqlite() {
    per_caller(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_caller_postgres() {
    per_caller(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_sqlite() {
    per_address(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_postgres() {
    per_address(Backend::Postgres).await;
}

/// Sends `n` reads of the network as `token` at once; returns the statuses.
async fn burst(app: &TestApp, token: Option<&str>, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(app.get("/v1/networks/lab", token).await.status.as_u16());
    }
    out
}

async fn per_caller(backend: Backend) {
    // One request a second per agent, bursts of two; no address limit.
    let app = TestApp::spawn_configured(backend, |c| {
        c.rate_limit_per_agent = 1;
        c.rate_limit_per_ip = 0;
    })
    .await;
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    // The set-up requests above used Ada's and the steward's allowance; wait it out.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let statuses = burst(&app, Some(&ada.token), 4).await;
    assert_eq!(
        statuses,
        [200, 200, 429, 429],
        "a burst of two, then refused"
    );
    let refused = app.get("/v1/networks/lab", Some(&ada.token)).await;
    refused.assert_problem(429, None);
    assert_eq!(refused.body["type"], "urn:holoptic:problem:rate-limited");
    let wait: u64 = refused
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=3).contains(&wait), "Retry-After {wait}");

    // Another caller, and anonymous readers, are not affected; nor are health probes.
    assert_eq!(
        app.get("/v1/networks/lab", Some(&steward.token))
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(burst(&app, None, 5).await, [200; 5]);
    for _ in 0..5 {
        assert_eq!(app.get("/readyz", Some(&ada.token)).await.status, 200);
    }

    // After the wait, Ada is served again.
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(
        app.get("/v1/networks/lab", Some(&ada.token))
            .await
            .status
            .as_u16(),
        200
    );
}

async fn per_address(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |c| {
        c.rate_limit_per_ip = 1;
        c.rate_limit_per_agent = 0;
    })
    .await;
    // Every request here comes from 127.0.0.1: two go through, the rest are refused.
    let first = app.get("/v1/networks", None).await.status.as_u16();
    let second = app.get("/v1/networks", None).await.status.as_u16();
    assert_eq!((first, second), (200, 200));
    let refused = app.get("/v1/networks", None).await;
    refused.assert_problem(429, None);
    assert!(refused.headers.contains_key("retry-after"));
    // A refused write writes nothing.
    let write = app
        .post("/v1/agents", None, json!({ "display_name": "Flooder" }))
        .await;
    write.assert_problem(429, None);
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

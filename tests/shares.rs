//! Shares reads: the table kept per network is reused only while nothing it depends on has
//! changed, end to end on both backends.

mod common;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use common::{Member, TestApp};
use serde_json::{json, Value};

on_both_backends!(kept_table_follows_every_change, aged_values_are_never_kept);

const N: &str = "/v1/networks/lab";

/// (reused, computed) from `/metrics`.
async fn counts(app: &TestApp) -> (u64, u64) {
    (
        app.metric("holoptic_shares_tables_reused_total").await,
        app.metric("holoptic_shares_tables_computed_total").await,
    )
}

async fn log(app: &TestApp, who: &Member, hours: &str, on: &str) -> String {
    let c = app
        .post(
            &format!("{N}/contributions"),
            Some(&who.token),
            json!({ "kind": "work", "quantity": hours, "unit": "hours", "occurred_at": on }),
        )
        .await
        .ok(201);
    c["id"].as_str().expect("id").to_owned()
}

/// Proposes `equation` and votes yes until it passes.
async fn adopt(app: &TestApp, voters: &[&Member], equation: Value) {
    let p = app
        .post(
            &format!("{N}/proposals"),
            Some(&voters[0].token),
            json!({ "title": "eq", "equation": equation }),
        )
        .await
        .ok(201);
    let id = p["id"].as_str().expect("id");
    for v in voters {
        let last = app
            .post(
                &format!("{N}/proposals/{id}/votes"),
                Some(&v.token),
                json!({ "vote": "yes" }),
            )
            .await
            .ok(201);
        if last["status"] == "passed" {
            return;
        }
    }
    panic!("the proposal did not pass");
}

/// `offset_ms` from `t`, as RFC 3339.
fn at(t: DateTime<Utc>, offset_ms: i64) -> String {
    (t + Duration::milliseconds(offset_ms)).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Sleeps until `t` has passed.
async fn until(t: DateTime<Utc>) {
    if let Ok(wait) = (t - Utc::now()).to_std() {
        tokio::time::sleep(wait + std::time::Duration::from_millis(20)).await;
    }
}

fn equation(rate: &str, extra: Value) -> Value {
    let mut eq = json!({
        "counting": { "statuses": ["pending", "validated"] },
        "rates": [{ "kind": "work", "rate": rate }],
        "buckets": [{ "name": "all", "share": "straight", "percent": "100",
                      "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } }]
    });
    if let (Some(e), Some(x)) = (eq.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    eq
}

async fn shares(app: &TestApp, query: &str) -> Value {
    app.get(&format!("{N}/shares{query}"), None).await.ok(200)
}

fn item<'a>(s: &'a Value, who: &Member) -> &'a Value {
    s["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["agent_id"] == json!(who.id))
        .expect("member listed")
}

async fn kept_table_follows_every_change(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    adopt(&app, &[&steward, &ada, &bob], equation("1", json!({}))).await;
    // Dated slightly ahead (clients' clocks may be up to a minute ahead): they count once
    // the clock reaches them, with no write in between.
    let t = Utc::now();
    log(&app, &ada, "10", &at(t, 1000)).await;
    let late = log(&app, &bob, "5", &at(t, 2000)).await;

    // Computed once, then reused while nothing changes.
    let before = counts(&app).await;
    assert_eq!(shares(&app, "").await["total_value"], "0");
    assert_eq!(shares(&app, "").await["total_value"], "0");
    let one = app
        .get(&format!("{N}/shares/{}", ada.id), None)
        .await
        .ok(200);
    assert_eq!(one["value"], "0");
    let after = counts(&app).await;
    assert_eq!(
        after.1 - before.1,
        1,
        "one computation: {before:?} -> {after:?}"
    );
    assert_eq!(after.0 - before.0, 2, "two reuses: {before:?} -> {after:?}");

    // Once the clock passes Bob's contribution, the kept table no longer covers now.
    until(t + Duration::milliseconds(2000)).await;
    assert_eq!(shares(&app, "").await["total_value"], "15");
    // A date between the two selects fewer contributions: not that table either.
    let mid = shares(&app, &format!("?at={}", at(t, 1500))).await;
    assert_eq!(mid["total_value"], "10", "{mid}");
    assert_eq!(item(&mid, &bob)["value"], "0");
    // Back to now: the table kept for the date between does not cover it.
    assert_eq!(shares(&app, "").await["total_value"], "15");
    // A date just after Ada's contribution selects what the date between did; one before
    // it selects nothing.
    assert_eq!(
        shares(&app, &format!("?at={}", at(t, 1200))).await["total_value"],
        "10"
    );
    assert_eq!(
        shares(&app, &format!("?at={}", at(t, 500))).await["total_value"],
        "0"
    );

    // A new contribution.
    log(&app, &ada, "3", "2026-01-21T00:00:00Z").await;
    let s = shares(&app, "").await;
    assert_eq!(s["total_value"], "18");
    assert_eq!(item(&s, &ada)["value"], "13");

    // A correction supersedes Bob's 5 hours with 2.
    app.post(
        &format!("{N}/contributions"),
        Some(&bob.token),
        json!({ "kind": "work", "quantity": "2", "unit": "hours",
                "occurred_at": "2026-01-20T00:00:00Z", "corrects": late,
                "description": "was two hours" }),
    )
    .await
    .ok(201);
    let s = shares(&app, "").await;
    assert_eq!(s["total_value"], "15", "{s}");
    assert_eq!(item(&s, &bob)["value"], "2");

    // A rejection: the equation counts pending and validated contributions only.
    let cy = app.join("lab", "Cy").await;
    let s = shares(&app, "").await;
    assert_eq!(item(&s, &cy)["value"], "0", "a new member is listed");
    let cys = log(&app, &cy, "4", "2026-01-22T00:00:00Z").await;
    assert_eq!(shares(&app, "").await["total_value"], "19");
    app.post(
        &format!("{N}/contributions/{cys}/validations"),
        Some(&steward.token),
        json!({ "decision": "reject", "note": "not ours" }),
    )
    .await
    .ok(201);
    let rejected = app
        .get(&format!("{N}/contributions/{cys}"), None)
        .await
        .ok(200);
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert_eq!(shares(&app, "").await["total_value"], "15");

    // A display name is a profile, not a journaled record: it is read for every answer.
    app.patch(
        "/v1/agents/me",
        Some(&ada.token),
        json!({ "display_name": "Ada L." }),
    )
    .await
    .ok(200);
    let s = shares(&app, "").await;
    assert_eq!(item(&s, &ada)["display_name"], "Ada L.");

    // A new equation version doubles every value.
    let total = shares(&app, "").await["total_value"].clone();
    let version = shares(&app, "").await["equation_version"].clone();
    adopt(&app, &[&steward, &ada, &bob, &cy], equation("2", json!({}))).await;
    let s = shares(&app, "").await;
    assert_ne!(s["equation_version"], version);
    let doubled = total
        .as_str()
        .and_then(|t| t.parse::<u64>().ok())
        .map(|t| (t * 2).to_string());
    assert_eq!(s["total_value"].as_str(), doubled.as_deref(), "{s}");

    // Paging through the kept table.
    let page = shares(&app, "?limit=1").await;
    let cursor = page["next_cursor"].as_str().expect("more");
    let next = shares(&app, &format!("?limit=1&cursor={cursor}")).await;
    assert_ne!(next["items"][0]["agent_id"], page["items"][0]["agent_id"]);
    app.get(
        &format!("{N}/shares/00000000-0000-0000-0000-000000000001"),
        None,
    )
    .await
    .assert_problem(404, None);
}

async fn aged_values_are_never_kept(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    adopt(
        &app,
        &[&steward, &ada],
        equation("1", json!({ "decay_half_life_days": 30 })),
    )
    .await;
    let t = Utc::now();
    log(&app, &ada, "8", &at(t, -10)).await;
    let before = counts(&app).await;
    for _ in 0..3 {
        assert_eq!(shares(&app, "").await["total_value"], "8");
    }
    let after = counts(&app).await;
    assert_eq!(after.0, before.0, "nothing reused: {before:?} -> {after:?}");
    assert_eq!(after.1 - before.1, 3);
}

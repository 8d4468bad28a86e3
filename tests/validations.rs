//! Peer validation: thresholds, who may validate, races.

mod common;

use common::TestApp;
use serde_json::json;

on_both_backends!(thresholds_decide, who_may_validate, racing_validators);

const PATH: &str = "/v1/networks/lab/contributions";

async fn thresholds_decide(app: TestApp) {
    app.network(
        "lab",
        json!({ "approvals_required": 2, "rejections_required": 2 }),
    )
    .await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let cy = app.join("lab", "Cy").await;
    let c = app.work("lab", &ada, "3").await;
    let v = format!("{PATH}/{}/validations", c["id"].as_str().expect("id"));
    let first = app
        .post(
            &v,
            Some(&bob.token),
            json!({ "decision": "approve", "note": "seen it" }),
        )
        .await
        .ok(201);
    assert_eq!(first["contribution_status"], "pending");
    assert_eq!(first["approvals"], 1);
    app.post(&v, Some(&bob.token), json!({ "decision": "approve" }))
        .await
        .assert_problem(409, None);
    let second = app
        .post(&v, Some(&cy.token), json!({ "decision": "approve" }))
        .await
        .ok(201);
    assert_eq!(second["contribution_status"], "validated");
    let list = app.get(&v, None).await.ok(200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["items"][0]["note"], "seen it");
    assert_eq!(list["items"][0]["validator_id"], json!(bob.id));
    let got = app
        .get(&format!("{PATH}/{}", c["id"].as_str().expect("id")), None)
        .await
        .ok(200);
    assert_eq!(got["status"], "validated");
    assert_eq!(got["approvals"], 2);

    let r = app.work("lab", &ada, "1").await;
    let v = format!("{PATH}/{}/validations", r["id"].as_str().expect("id"));
    app.post(&v, Some(&bob.token), json!({ "decision": "reject" }))
        .await
        .ok(201);
    let done = app
        .post(
            &v,
            Some(&cy.token),
            json!({ "decision": "reject", "note": "not in the log" }),
        )
        .await
        .ok(201);
    assert_eq!(done["contribution_status"], "rejected");
    let steward_try = app
        .post(
            &v,
            Some(&app.agent("late").await.token),
            json!({ "decision": "approve" }),
        )
        .await;
    steward_try.assert_problem(403, None);
    app.post(&v, Some(&bob.token), json!({ "decision": "maybe" }))
        .await
        .assert_problem(422, Some("decision"));
    app.post(
        &v,
        Some(&bob.token),
        json!({ "decision": "approve", "note": "x".repeat(2001) }),
    )
    .await
    .assert_problem(422, Some("note"));
}

async fn who_may_validate(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bot = app.join("lab", "bot").await;
    let aud = app.join("lab", "aud").await;
    app.set_role("lab", &steward, &bot, "bot").await;
    app.set_role("lab", &steward, &aud, "auditor").await;
    let c = app.work("lab", &ada, "2").await;
    let v = format!("{PATH}/{}/validations", c["id"].as_str().expect("id"));
    app.post(&v, Some(&ada.token), json!({ "decision": "approve" }))
        .await
        .assert_problem(403, None);
    app.post(&v, Some(&bot.token), json!({ "decision": "approve" }))
        .await
        .assert_problem(403, None);
    app.post(&v, Some(&aud.token), json!({ "decision": "approve" }))
        .await
        .assert_problem(403, None);
    app.post(&v, None, json!({ "decision": "approve" }))
        .await
        .assert_problem(401, None);
    // A steward who recorded it for Ada cannot validate it either.
    let mut b = common::work("1");
    b["agent_id"] = json!(ada.id);
    let by_steward = app.post(PATH, Some(&steward.token), b).await.ok(201);
    let v2 = format!(
        "{PATH}/{}/validations",
        by_steward["id"].as_str().expect("id")
    );
    app.post(&v2, Some(&steward.token), json!({ "decision": "approve" }))
        .await
        .assert_problem(403, None);
    app.post(&v2, Some(&ada.token), json!({ "decision": "approve" }))
        .await
        .assert_problem(403, None);
    let got = app
        .get(&format!("{PATH}/{}", c["id"].as_str().expect("id")), None)
        .await
        .ok(200);
    assert_eq!(
        (got["approvals"].clone(), got["status"].clone()),
        (json!(0), json!("pending"))
    );
    app.post(&v, Some(&steward.token), json!({ "decision": "approve" }))
        .await
        .ok(201);
}

async fn racing_validators(app: TestApp) {
    app.network("lab", json!({ "approvals_required": 3 })).await;
    let ada = app.join("lab", "Ada").await;
    let mut validators = Vec::new();
    for i in 0..6 {
        validators.push(app.join("lab", &format!("v{i}")).await);
    }
    let c = app.work("lab", &ada, "2").await;
    let url = format!(
        "{}{PATH}/{}/validations",
        app.base,
        c["id"].as_str().expect("id")
    );
    let mut handles = Vec::new();
    for v in &validators {
        let (client, url, token) = (app.client.clone(), url.clone(), v.token.clone());
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "decision": "approve" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.expect("join").expect("sent"));
    }
    // The third approval validates it; later ones find it decided.
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        3,
        "{statuses:?}"
    );
    let got = app
        .get(&format!("{PATH}/{}", c["id"].as_str().expect("id")), None)
        .await
        .ok(200);
    assert_eq!(got["status"], "validated");
    assert_eq!(got["approvals"], 3);
}

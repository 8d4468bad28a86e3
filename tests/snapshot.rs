//! Snapshot strategy scores. With HOLOPTIC_INTEROP_DIR set, the answers are also written for
//! `.ci/interop/check-exports.mjs`, which reads them with ethers v5 as the strategies do.

mod common;

use common::{work, TestApp};
use serde_json::json;

on_both_backends!(scores_for_snapshot);

const N: &str = "/v1/networks/lab";

async fn scores_for_snapshot(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let ada_wallet = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
    app.patch(
        "/v1/agents/me",
        Some(&ada.token),
        json!({ "wallet_address": ada_wallet }),
    )
    .await
    .ok(200);
    app.post(
        &format!("{N}/token"),
        Some(&steward.token),
        json!({ "symbol": "FAB", "name": "Fab", "decimals": 18 }),
    )
    .await
    .ok(201);
    let eq = json!({
        "buckets": [{ "name": "all", "share": "straight", "percent": "100", "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } }],
        "token": { "mint_on": "validation", "per_unit": "1.5" }
    });
    app.adopt(
        "lab",
        &steward,
        json!({ "title": "t", "equation": eq }),
        &[&steward, &ada],
    )
    .await;
    let c = app
        .post(&format!("{N}/contributions"), Some(&ada.token), work("2.5"))
        .await
        .ok(201);
    app.approve("lab", &c, &bob).await;
    let stranger = "0x0000000000000000000000000000000000000001";
    let body = json!({ "network": "1", "snapshot": 123, "addresses": [ada_wallet, stranger], "options": { "decimals": 18 } });
    let balances = app
        .post(&format!("{N}/snapshot/balances"), None, body.clone())
        .await
        .ok(200);
    assert_eq!(
        balances["score"][0]["address"],
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    );
    assert_eq!(
        balances["score"][0]["score"], "3750000000000000000",
        "2.5 value × 1.5 tokens, 18 decimals"
    );
    assert_eq!(balances["score"][1]["score"], "0");
    let shares = app
        .post(&format!("{N}/snapshot/shares"), None, body.clone())
        .await
        .ok(200);
    assert_eq!(shares["score"][0]["score"], "2500000000000000000");
    app.post(&format!("{N}/snapshot/votes"), None, body)
        .await
        .assert_problem(422, Some("source"));
    app.post(
        &format!("{N}/snapshot/balances"),
        None,
        json!({ "addresses": ["0x12"] }),
    )
    .await
    .assert_problem(422, Some("addresses[0]"));
    if let Ok(dir) = std::env::var("HOLOPTIC_INTEROP_DIR") {
        let tag = format!("{:?}", app.backend).to_lowercase();
        let out = json!({ "decimals": 18, "score": balances["score"], "expected": ["3.75", "0"] });
        std::fs::write(format!("{dir}/snapshot-{tag}.json"), out.to_string()).expect("write");
    }
}

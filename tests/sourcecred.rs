//! Importing a SourceCred ledger: dry run, every bad line reported, all-or-nothing import,
//! merged identities as one member with their aliases, re-import adding nothing, and the
//! Grain already paid counted by a balanced distribution (which still verifies).

mod common;

use common::TestApp;
use serde_json::{json, Value};

on_both_backends!(sourcecred_history_is_imported);

const N: &str = "/v1/networks/lab";
const LEDGER: &str = include_str!("fixtures/sourcecred-ledger.ndjson");

async fn import(app: &TestApp, token: &str, query: &str, body: &str) -> common::Res {
    app.send_raw(
        reqwest::Method::POST,
        &format!("{N}/imports/sourcecred?{query}"),
        Some(token),
        "application/x-ndjson",
        body.as_bytes().to_vec(),
    )
    .await
}

fn member<'a>(out: &'a Value, identity: &str) -> &'a Value {
    out["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["identity_id"] == identity)
        .expect("member")
}

async fn sourcecred_history_is_imported(app: TestApp) {
    let steward = app.network("lab", json!({ "approvals_required": 1 })).await;
    let outsider = app.join("lab", "Outsider").await;
    app.adopt(
        "lab",
        &steward,
        json!({ "title": "Balanced", "preset": "sourcecred_balanced" }),
        &[&steward, &outsider],
    )
    .await;
    let q = "bucket=balanced&currency=EUR";
    let members_before = app.get(&format!("{N}/members"), None).await.ok(200)["items"]
        .as_array()
        .map(Vec::len);

    // A dry run reports and writes nothing.
    let dry = import(&app, &steward.token, q, LEDGER).await.ok(200);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["events"], 16);
    assert_eq!(dry["errors"], json!([]));
    assert_eq!(dry["members"].as_array().map(Vec::len), Some(3), "{dry}");
    assert_eq!(dry["members_created"], 3);
    assert_eq!(dry["receipts_imported"], 4);
    assert_eq!(dry["paid_imported"], "55.00");
    let ada = member(&dry, "GlxCPDKT0bfgCovOkM0PHQ");
    assert_eq!(ada["name"], "ada-lovelace");
    assert_eq!(ada["paid_grain"], "40");
    assert_eq!(ada["new_paid"], "40.00");
    assert_eq!(
        ada["wallet_address"],
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    );
    assert_eq!(member(&dry, "bK7fQx2LR1Gh0bPzW0aT9g")["new_paid"], "15.00");
    let after_dry = app.get(&format!("{N}/members"), None).await.ok(200)["items"]
        .as_array()
        .map(Vec::len);
    assert_eq!(after_dry, members_before);

    // Bad lines are each reported with their number, and an import with any writes nothing.
    let bad = format!("{LEDGER}{{\"action\":{{\"type\":\"MERGE_IDENTITIES\",\"base\":\"nobody\",\"target\":\"x\"}},\"ledgerTimestamp\":1609459999000}}\nnot json\n");
    let refused = import(&app, &steward.token, &format!("{q}&dry_run=false"), &bad)
        .await
        .ok(200);
    assert_eq!(refused["dry_run"], true);
    let lines: Vec<i64> = refused["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_i64().expect("line"))
        .collect();
    assert_eq!(lines, vec![17, 18]);
    assert_eq!(
        app.get(&format!("{N}/members"), None).await.ok(200)["items"]
            .as_array()
            .map(Vec::len),
        members_before
    );

    // Only stewards; well-formed parameters; the right media type.
    import(&app, &outsider.token, q, LEDGER)
        .await
        .assert_problem(403, None);
    import(&app, &steward.token, "bucket=balanced&currency=XYZ", LEDGER)
        .await
        .assert_problem(422, Some("currency"));
    import(&app, &steward.token, &format!("{q}&rate=-1"), LEDGER)
        .await
        .assert_problem(422, Some("rate"));
    import(&app, &steward.token, q, "\n\n")
        .await
        .assert_problem(422, Some("body"));
    app.send_raw(
        reqwest::Method::POST,
        &format!("{N}/imports/sourcecred?{q}"),
        Some(&steward.token),
        "text/csv",
        LEDGER.as_bytes().to_vec(),
    )
    .await
    .assert_problem(415, None);

    // The import.
    let done = import(&app, &steward.token, &format!("{q}&dry_run=false"), LEDGER)
        .await
        .ok(201);
    assert_eq!(done["dry_run"], false);
    let ada_id = member(&done, "GlxCPDKT0bfgCovOkM0PHQ")["agent_id"]
        .as_str()
        .expect("agent")
        .to_owned();
    let bob_id = member(&done, "bK7fQx2LR1Gh0bPzW0aT9g")["agent_id"]
        .as_str()
        .expect("agent")
        .to_owned();
    let ada = app
        .get(&format!("{N}/members/{ada_id}"), None)
        .await
        .ok(200);
    assert_eq!(ada["display_name"], "ada-lovelace");
    assert_eq!(
        ada["wallet_address"],
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    );
    let aliases: Vec<String> = ada["aliases"]
        .as_array()
        .expect("aliases")
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["source"].as_str().unwrap_or(""),
                a["alias"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        aliases,
        vec![
            "sourcecred-alias:sourcecred/github/USERLIKE/USER/ada-l",
            "sourcecred-identity:GlxCPDKT0bfgCovOkM0PHQ",
            "sourcecred-identity:Y3pVnS0vXOmm3tLa1YcFaw",
        ]
    );
    let bot = member(&done, "q8mZ0tYqSK2WcVZrJ1bN3A")["agent_id"]
        .as_str()
        .expect("agent")
        .to_owned();
    assert_eq!(
        app.get(&format!("{N}/members/{bot}"), None).await.ok(200)["role"],
        "bot"
    );

    // Importing the same ledger again adds nothing.
    let again = import(&app, &steward.token, &format!("{q}&dry_run=false"), LEDGER)
        .await
        .ok(201);
    assert_eq!(again["members_created"], 0);
    assert_eq!(again["receipts_imported"], 0);
    assert_eq!(
        member(&again, "GlxCPDKT0bfgCovOkM0PHQ")["agent_id"],
        ada_id.as_str()
    );

    // Equal new work; the balanced bucket tops Bob up to Ada, who was paid more before:
    // (55 paid + 100) / 2 = 77.50 each → Ada 37.50, Bob 62.50.
    for who in [&ada_id, &bob_id] {
        let mut c = common::work("10");
        c["agent_id"] = json!(who);
        let c = app
            .post(&format!("{N}/contributions"), Some(&steward.token), c)
            .await
            .ok(201);
        app.approve("lab", &c, &outsider).await;
    }
    let income = app
        .post(&format!("{N}/income"), Some(&steward.token), json!({ "amount": "100", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .ok(201);
    let d = app
        .post(
            &format!(
                "{N}/income/{}/distribution",
                income["id"].as_str().expect("id")
            ),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    let amount = |who: &str| {
        d["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .find(|l| l["agent_id"] == who)
            .map(|l| l["amount"].clone())
    };
    assert_eq!(amount(&ada_id), Some(json!("37.50")), "{d}");
    assert_eq!(amount(&bob_id), Some(json!("62.50")), "{d}");
    let v = app
        .get(
            &format!("{N}/distributions/{}/verify", d["id"].as_str().expect("id")),
            None,
        )
        .await
        .ok(200);
    assert_eq!(v["matches"], true, "{v}");
    // The import is in the journal, and the prior payouts cannot be edited on PostgreSQL.
    let journal = app
        .get(&format!("{N}/journal?limit=200"), Some(&steward.token))
        .await
        .ok(200)
        .to_string();
    assert!(journal.contains("payout.imported") && journal.contains("member.imported"));
    assert!(app
        .try_sql("UPDATE prior_payouts SET amount_minor = '1'")
        .is_err());
}

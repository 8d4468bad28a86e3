//! The token ledger end to end: minting by the rules, transfers, reversals, vesting,
//! leavers, redemption, concurrency, and the invariants check after each.

mod common;

use common::{work, Member, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    mint_transfer_reverse,
    transfers_need_the_rules,
    vesting_and_leavers,
    concurrent_spends_never_overdraw,
    redemption_at_payout,
    token_bad_input,
    minted_at_distribution,
    random_sequence_matches_a_model,
    concurrent_minting_approvals_never_deadlock,
    balances_past_64_bits,
);

const N: &str = "/v1/networks/lab";

/// A network with a FAB token (2 decimals) and an equation with these token rules,
/// adopted by the steward and Ada; returns (steward, ada, bob).
async fn setup(app: &TestApp, token_rules: Value) -> (Member, Member, Member) {
    setup_with(app, 2, token_rules).await
}

/// As [`setup`], with a token of `decimals` decimals.
async fn setup_with(app: &TestApp, decimals: u32, token_rules: Value) -> (Member, Member, Member) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    app.post(
        &format!("{N}/token"),
        Some(&steward.token),
        json!({ "symbol": "FAB", "name": "Fab token", "decimals": decimals }),
    )
    .await
    .ok(201);
    let eq = json!({
        "buckets": [{ "name": "all", "share": "straight", "percent": "100", "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } }],
        "token": token_rules
    });
    app.adopt(
        "lab",
        &steward,
        json!({ "title": "Token rules", "equation": eq }),
        &[&steward, &ada],
    )
    .await;
    (steward, ada, bob)
}

async fn validated_work(app: &TestApp, who: &Member, by: &Member, hours: &str) -> String {
    let c = app
        .post(&format!("{N}/contributions"), Some(&who.token), work(hours))
        .await
        .ok(201);
    let id = c["id"].as_str().expect("id").to_owned();
    app.post(
        &format!("{N}/contributions/{id}/validations"),
        Some(&by.token),
        json!({ "decision": "approve" }),
    )
    .await
    .ok(201);
    id
}

async fn balance(app: &TestApp, m: &Member) -> Value {
    app.get(&format!("{N}/balances/{}", m.id), None)
        .await
        .ok(200)
}

async fn assert_ledger_ok(app: &TestApp) {
    let check = app.get(&format!("{N}/ledger/check"), None).await.ok(200);
    assert_eq!(check["ok"], true, "{check}");
}

async fn mint_transfer_reverse(app: TestApp) {
    let (_steward, ada, bob) = setup(
        &app,
        json!({ "mint_on": "validation", "per_unit": "10", "transferable": true }),
    )
    .await;
    let c = validated_work(&app, &ada, &bob, "2").await;
    assert_eq!(
        balance(&app, &ada).await["total"],
        "20.00",
        "2 hours × rate 1 × 10 tokens"
    );
    let t = app.get(&format!("{N}/token"), None).await.ok(200);
    assert_eq!(
        (t["supply"].clone(), t["minted"].clone()),
        (json!("20.00"), json!("20.00"))
    );

    // A moment between the mint and the transfer, for a read of the past below.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let xfer = json!({ "to": bob.id, "amount": "5.25", "transfer_id": "t-1" });
    let first = app
        .post(&format!("{N}/transfers"), Some(&ada.token), xfer.clone())
        .await
        .ok(201);
    assert_eq!(first["replayed"], false);
    let again = app
        .post(&format!("{N}/transfers"), Some(&ada.token), xfer)
        .await
        .ok(200);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["transaction_id"], first["transaction_id"]);
    assert_eq!(balance(&app, &ada).await["total"], "14.75");
    assert_eq!(balance(&app, &bob).await["total"], "5.25");
    // The present is read from the kept balance; the past, from the entries made by then.
    let then = app
        .get(&format!("{N}/balances/{}?at={between}", ada.id), None)
        .await
        .ok(200);
    assert_eq!(then["total"], "20.00", "before the transfer: {then}");
    app.post(
        &format!("{N}/transfers"),
        Some(&ada.token),
        json!({ "to": bob.id, "amount": "1", "transfer_id": "t-1" }),
    )
    .await
    .assert_problem(422, Some("transfer_id"));
    app.post(
        &format!("{N}/transfers"),
        Some(&ada.token),
        json!({ "to": bob.id, "amount": "14.76" }),
    )
    .await
    .assert_problem(409, None);

    let holders = app.get(&format!("{N}/holders"), None).await.ok(200);
    assert_eq!(holders["items"][0]["agent_id"], json!(ada.id));
    assert_eq!(holders["items"][1]["balance"], "5.25");
    let entries = app
        .get(&format!("{N}/balances/{}/entries", ada.id), None)
        .await
        .ok(200);
    let kinds: Vec<&str> = entries["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().expect("k"))
        .collect();
    assert_eq!(kinds, vec!["transfer", "mint"]);
    assert_eq!(entries["items"][1]["cause"], format!("contribution:{c}"));
    let before = app
        .get(
            &format!("{N}/balances/{}?at=2020-01-01T00:00:00Z", ada.id),
            None,
        )
        .await
        .ok(200);
    assert_eq!(before["total"], "0.00", "balance at a past date");

    // Correcting the validated contribution reverses its mint — only while Ada holds it.
    let mut fix = work("1");
    fix["corrects"] = json!(c);
    fix["description"] = json!("one hour, not two");
    app.post(&format!("{N}/contributions"), Some(&ada.token), fix.clone())
        .await
        .assert_problem(409, None);
    app.post(
        &format!("{N}/transfers"),
        Some(&bob.token),
        json!({ "to": ada.id, "amount": "5.25" }),
    )
    .await
    .ok(201);
    let corrected = app
        .post(&format!("{N}/contributions"), Some(&ada.token), fix)
        .await
        .ok(201);
    assert_eq!(balance(&app, &ada).await["total"], "0.00");
    assert_eq!(
        app.get(&format!("{N}/token"), None).await.ok(200)["supply"],
        "0.00"
    );
    // Validating the correction mints for it, once.
    let cid = corrected["id"].as_str().expect("id");
    app.post(
        &format!("{N}/contributions/{cid}/validations"),
        Some(&bob.token),
        json!({ "decision": "approve" }),
    )
    .await
    .ok(201);
    assert_eq!(balance(&app, &ada).await["total"], "10.00");
    assert_ledger_ok(&app).await;
}

async fn transfers_need_the_rules(app: TestApp) {
    let (_steward, ada, bob) = setup(&app, json!({ "mint_on": "validation" })).await;
    validated_work(&app, &ada, &bob, "3").await;
    assert_eq!(balance(&app, &ada).await["total"], "3.00");
    app.post(
        &format!("{N}/transfers"),
        Some(&ada.token),
        json!({ "to": bob.id, "amount": "1" }),
    )
    .await
    .assert_problem(403, None);
    assert_ledger_ok(&app).await;
}

async fn vesting_and_leavers(app: TestApp) {
    let (steward, ada, bob) = setup(
        &app,
        json!({ "mint_on": "validation", "per_unit": "1", "transferable": true, "vesting": { "cliff_days": 10, "duration_days": 100 } }),
    )
    .await;
    validated_work(&app, &ada, &bob, "100").await;
    let b = balance(&app, &ada).await;
    assert_eq!(
        (
            b["total"].clone(),
            b["vested"].clone(),
            b["unvested"].clone()
        ),
        (json!("100.00"), json!("0.00"), json!("100.00"))
    );
    app.post(
        &format!("{N}/transfers"),
        Some(&ada.token),
        json!({ "to": bob.id, "amount": "1" }),
    )
    .await
    .assert_problem(409, None);
    let later = (chrono::Utc::now() + chrono::Duration::days(50))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let half = app
        .get(&format!("{N}/balances/{}?at={later}", ada.id), None)
        .await
        .ok(200);
    assert!(
        half["vested"]
            .as_str()
            .is_some_and(|v| v.starts_with("49.") || v.starts_with("50.")),
        "{half}"
    );
    // Ada leaves (no fault): her unvested tokens are forfeited as a burn.
    let dep = app
        .post(
            &format!("{N}/departures"),
            Some(&steward.token),
            json!({ "agent_id": ada.id, "reason": "moved away" }),
        )
        .await
        .ok(201);
    assert_eq!(dep["forfeited"], "100.00");
    app.post(
        &format!("{N}/departures"),
        Some(&steward.token),
        json!({ "agent_id": ada.id, "reason": "again" }),
    )
    .await
    .assert_problem(409, None);
    assert_eq!(balance(&app, &ada).await["total"], "0.00");
    let t = app.get(&format!("{N}/token"), None).await.ok(200);
    assert_eq!(
        (
            t["minted"].clone(),
            t["burned"].clone(),
            t["supply"].clone()
        ),
        (json!("100.00"), json!("100.00"), json!("0.00"))
    );
    app.post(
        &format!("{N}/departures"),
        Some(&bob.token),
        json!({ "agent_id": bob.id, "reason": "x" }),
    )
    .await
    .assert_problem(403, None);
    assert_ledger_ok(&app).await;
}

async fn concurrent_spends_never_overdraw(app: TestApp) {
    let (_steward, ada, bob) = setup(
        &app,
        json!({ "mint_on": "validation", "per_unit": "1", "transferable": true }),
    )
    .await;
    validated_work(&app, &ada, &bob, "10").await;
    let url = format!("{}{N}/transfers", app.base);
    let mut handles = Vec::new();
    for i in 0..24 {
        let (client, url, token, to) = (
            app.client.clone(),
            url.clone(),
            ada.token.clone(),
            bob.id.clone(),
        );
        handles.push(tokio::spawn(async move {
            let body = json!({ "to": to, "amount": "1", "transfer_id": format!("drain-{i}") });
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.expect("join").expect("sent"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "exactly the transfers that fit: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        14,
        "{statuses:?}"
    );
    assert_eq!(balance(&app, &ada).await["total"], "0.00");
    assert_eq!(balance(&app, &bob).await["total"], "10.00");

    // Parallel retries of one transfer move tokens once.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (client, url, token, to) = (
            app.client.clone(),
            url.clone(),
            bob.token.clone(),
            ada.id.clone(),
        );
        handles.push(tokio::spawn(async move {
            let body = json!({ "to": to, "amount": "3", "transfer_id": "same-one" });
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for h in handles {
        let s = h.await.expect("join").expect("sent");
        assert!(s == 201 || s == 200, "{s}");
    }
    assert_eq!(balance(&app, &bob).await["total"], "7.00");

    // Two validators racing on one contribution mint once.
    let c = app
        .post(&format!("{N}/contributions"), Some(&ada.token), work("4"))
        .await
        .ok(201);
    let vurl = format!(
        "{}{N}/contributions/{}/validations",
        app.base,
        c["id"].as_str().expect("id")
    );
    let steward_token = app.token(&_steward.key).await;
    let mut handles = Vec::new();
    for token in [bob.token.clone(), steward_token] {
        let (client, vurl) = (app.client.clone(), vurl.clone());
        handles.push(tokio::spawn(async move {
            client
                .post(vurl)
                .bearer_auth(token)
                .json(&json!({ "decision": "approve" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut vs = Vec::new();
    for h in handles {
        vs.push(h.await.expect("join").expect("sent"));
    }
    vs.sort_unstable();
    assert_eq!(vs, vec![201, 409]);
    assert_eq!(
        balance(&app, &ada).await["total"],
        "7.00",
        "3 back from Bob + 4 minted once"
    );
    assert_ledger_ok(&app).await;
}

async fn redemption_at_payout(app: TestApp) {
    let (steward, ada, bob) = setup(
        &app,
        json!({ "mint_on": "validation", "per_unit": "1", "redeem_per_unit_paid": "2" }),
    )
    .await;
    validated_work(&app, &ada, &bob, "10").await;
    let i = app
        .post(&format!("{N}/income"), Some(&steward.token), json!({ "amount": "3.00", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .ok(201);
    let d = app
        .post(
            &format!("{N}/income/{}/distribution", i["id"].as_str().expect("id")),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    let line = d["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["agent_id"] == json!(ada.id))
        .expect("ada's line");
    assert_eq!(line["amount"], "3.00");
    let no = line["line_no"].as_i64().expect("no");
    app.post(
        &format!(
            "{N}/distributions/{}/lines/{no}/payment",
            d["id"].as_str().expect("id")
        ),
        Some(&steward.token),
        json!({ "reference": "r-1" }),
    )
    .await
    .ok(201);
    assert_eq!(
        balance(&app, &ada).await["total"],
        "4.00",
        "10 − 3.00 paid × 2 burned"
    );
    assert_eq!(
        app.get(&format!("{N}/token"), None).await.ok(200)["burned"],
        "6.00"
    );
    assert_ledger_ok(&app).await;
}

async fn token_bad_input(app: TestApp) {
    let (steward, ada, bob) = setup(
        &app,
        json!({ "mint_on": "validation", "transferable": true }),
    )
    .await;
    validated_work(&app, &ada, &bob, "5").await;
    let t = Some(ada.token.as_str());
    let path = format!("{N}/transfers");
    let cases = [
        (json!({ "to": bob.id, "amount": "0" }), "amount"),
        (json!({ "to": bob.id, "amount": "-1" }), "amount"),
        (json!({ "to": bob.id, "amount": "0.001" }), "amount"),
        (json!({ "to": bob.id, "amount": "abc" }), "amount"),
        (json!({ "to": ada.id, "amount": "1" }), "to"),
        (json!({ "to": uuid::Uuid::now_v7(), "amount": "1" }), "to"),
        (json!({ "to": "nobody", "amount": "1" }), "to"),
        (json!({ "to": bob.id, "amount": "1", "extra": 1 }), "extra"),
    ];
    for (body, field) in cases {
        app.post(&path, t, body)
            .await
            .assert_problem(422, Some(field));
    }
    app.send(
        Method::POST,
        &path,
        None,
        Some(json!({ "to": bob.id, "amount": "1" })),
        &[],
    )
    .await
    .assert_problem(401, None);
    let tok = Some(steward.token.as_str());
    app.post(
        &format!("{N}/token"),
        tok,
        json!({ "symbol": "FAB", "name": "again", "decimals": 2 }),
    )
    .await
    .assert_problem(409, None);
    for (body, field) in [
        (
            json!({ "symbol": "fab", "name": "x", "decimals": 2 }),
            "symbol",
        ),
        (
            json!({ "symbol": "FAB", "name": "x", "decimals": 19 }),
            "decimals",
        ),
        (
            json!({ "symbol": "FAB", "name": "x", "decimals": 2, "address": "0x12" }),
            "address",
        ),
    ] {
        app.post(&format!("{N}/token"), tok, body)
            .await
            .assert_problem(422, Some(field));
    }
    app.get("/v1/networks/lab/balances/not-an-id", None)
        .await
        .assert_problem(422, Some("agent_id"));
    assert_eq!(balance(&app, &ada).await["total"], "5.00", "nothing moved");
    assert_eq!(balance(&app, &bob).await["total"], "0.00");
    assert_ledger_ok(&app).await;
}

async fn minted_at_distribution(app: TestApp) {
    let (steward, ada, bob) =
        setup(&app, json!({ "mint_on": "distribution", "per_unit": "2" })).await;
    validated_work(&app, &ada, &bob, "1").await;
    validated_work(&app, &bob, &ada, "3").await;
    assert_eq!(
        balance(&app, &ada).await["total"],
        "0.00",
        "nothing at validation"
    );
    let i = app
        .post(&format!("{N}/income"), Some(&steward.token), json!({ "amount": "8.00", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .ok(201);
    app.post(
        &format!("{N}/income/{}/distribution", i["id"].as_str().expect("id")),
        Some(&steward.token),
        json!({}),
    )
    .await
    .ok(201);
    assert_eq!(
        balance(&app, &ada).await["total"],
        "4.00",
        "2.00 EUR paid × 2"
    );
    assert_eq!(
        balance(&app, &bob).await["total"],
        "12.00",
        "6.00 EUR paid × 2"
    );
    assert_eq!(
        app.get(&format!("{N}/token"), None).await.ok(200)["supply"],
        "16.00"
    );
    assert_ledger_ok(&app).await;
}

/// A deterministic pseudo-random sequence of mints (validations), transfers (some too large,
/// some retried), reversals (corrections) and burns (payouts), checked against a simple model
/// after every step's outcome, and the ledger check at the end.
async fn random_sequence_matches_a_model(app: TestApp) {
    let (steward, ada, bob) = setup(
        &app,
        json!({ "mint_on": "validation", "per_unit": "1", "transferable": true }),
    )
    .await;
    let cy = app.join("lab", "Cy").await;
    let members = [ada, bob, cy];
    let mut model = [0i64; 3];
    let mut minted: Vec<(String, usize, i64, bool)> = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for step in 0..30 {
        match next(4) {
            0 => {
                let who = usize::try_from(next(3)).expect("i");
                let hours = i64::try_from(next(9) + 1).expect("h");
                let id = validated_work(
                    &app,
                    &members[who],
                    &members[(who + 1) % 3],
                    &hours.to_string(),
                )
                .await;
                model[who] += hours * 100;
                minted.push((id, who, hours * 100, false));
            }
            1 | 2 => {
                let (from, to) = (
                    usize::try_from(next(3)).expect("i"),
                    usize::try_from(next(3)).expect("i"),
                );
                if from == to {
                    continue;
                }
                let cents = i64::try_from(next(800) + 1).expect("c");
                let body = json!({ "to": members[to].id, "amount": format!("{}.{:02}", cents / 100, cents % 100), "transfer_id": format!("s{step}") });
                let res = app
                    .post(
                        &format!("{N}/transfers"),
                        Some(&members[from].token),
                        body.clone(),
                    )
                    .await;
                if model[from] >= cents {
                    assert_eq!(res.status.as_u16(), 201, "step {step}: {}", res.body);
                    model[from] -= cents;
                    model[to] += cents;
                    // A retry never moves tokens twice.
                    app.post(&format!("{N}/transfers"), Some(&members[from].token), body)
                        .await
                        .ok(200);
                } else {
                    res.assert_problem(409, None);
                }
            }
            _ => {
                let open: Vec<usize> = (0..minted.len()).filter(|i| !minted[*i].3).collect();
                if open.is_empty() {
                    continue;
                }
                let k =
                    open[usize::try_from(next(u64::try_from(open.len()).expect("n"))).expect("k")];
                let (id, who, amount, _) = minted[k].clone();
                let mut fix = work("1");
                fix["corrects"] = json!(id);
                fix["description"] = json!("correction");
                let res = app
                    .post(
                        &format!("{N}/contributions"),
                        Some(&members[who].token),
                        fix,
                    )
                    .await;
                if model[who] >= amount {
                    assert_eq!(res.status.as_u16(), 201, "step {step}: {}", res.body);
                    model[who] -= amount;
                } else {
                    res.assert_problem(409, None);
                }
                // Corrected or not, this contribution is done with in the model.
                minted[k].3 = true;
            }
        }
        for (i, m) in members.iter().enumerate() {
            let total = balance(&app, m).await["total"]
                .as_str()
                .expect("total")
                .replace('.', "");
            assert_eq!(
                total.parse::<i64>().expect("cents"),
                model[i],
                "step {step}, member {i}"
            );
        }
    }
    let supply = app.get(&format!("{N}/token"), None).await.ok(200)["supply"]
        .as_str()
        .expect("s")
        .replace('.', "");
    assert_eq!(
        supply.parse::<i64>().expect("cents"),
        model.iter().sum::<i64>()
    );
    let _ = steward;
    assert_ledger_ok(&app).await;
}

/// Approvals that mint, racing: each journals (a foreign key to the network) before it takes
/// the network's minting lock. With `FOR UPDATE` that lock conflicted with the other
/// transactions' foreign-key locks, PostgreSQL found deadlocks and approvals failed; every one
/// must succeed, and the supply must be exactly the sum minted.
async fn concurrent_minting_approvals_never_deadlock(app: TestApp) {
    let (_steward, ada, bob) =
        setup(&app, json!({ "mint_on": "validation", "per_unit": "1" })).await;
    let items: Vec<Value> = (0..32).map(|_| work("1")).collect();
    let batch = app
        .post(
            &format!("{N}/contributions/batch"),
            Some(&ada.token),
            json!({ "items": items }),
        )
        .await
        .ok(201);
    let ids: Vec<String> = batch["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    let mut handles = Vec::new();
    for id in ids {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}{N}/contributions/{id}/validations", app.base),
            bob.token.clone(),
        );
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
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.expect("join").expect("sent"));
    }
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    // A generous bound (parallel tests share the machine): deadlocked approvals fail above,
    // and a lock wait that never ends would stop here.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "32 approvals took {:?}",
        started.elapsed()
    );
    assert_eq!(balance(&app, &ada).await["total"], json!("32.00"));
    assert_ledger_ok(&app).await;
}

/// Balances are summed by the database where that is exact; with 18 decimals an entry (or a
/// sum of entries) passes 64 bits, and the balance must still be exact.
async fn balances_past_64_bits(app: TestApp) {
    let (_, ada, bob) = setup_with(
        &app,
        18,
        json!({ "mint_on": "validation", "per_unit": "1", "transferable": true }),
    )
    .await;
    // 9 tokens = 9e18 units each: each entry fits 64 bits, their sum does not.
    validated_work(&app, &ada, &bob, "9").await;
    validated_work(&app, &ada, &bob, "9").await;
    // 100 tokens = 1e20 units: past 64 bits on its own.
    validated_work(&app, &bob, &ada, "100").await;
    validated_work(&app, &bob, &ada, "1").await;
    let a = balance(&app, &ada).await;
    assert_eq!(a["total"], "18.000000000000000000", "{a}");
    assert_eq!(a["vested"], "18.000000000000000000", "{a}");
    let b = balance(&app, &bob).await;
    assert_eq!(b["total"], "101.000000000000000000", "{b}");
    assert_ledger_ok(&app).await;
}

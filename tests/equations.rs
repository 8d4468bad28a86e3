//! Value equations, governance and distributions, end to end on both backends.

mod common;

use common::{work, Member, TestApp};
use serde_json::{json, Value};

on_both_backends!(
    preset_to_verified_distribution,
    governance_paths,
    equation_bad_input,
    equation_sets_validation_threshold,
    balanced_history_and_verification,
    balanced_history_past_64_bits,
    balanced_reads_kept_paid_sums,
    kept_paid_sums_stay_in_place,
    values_read_past_one_page,
    a_value_past_the_first_page_that_cannot_be_computed,
    random_distributions_sum_exactly,
    units_and_skills_read_where_the_equation_weighs_by_them,
);

const N: &str = "/v1/networks/lab";

/// Contribution pages read on a spare connection (counted for the whole test process).
const SPARE_PAGES: &str = "holoptic_contribution_pages_read_on_spare_total";

async fn log(app: &TestApp, who: &Member, hours: &str, skill: &str) -> String {
    let mut b = work(hours);
    b["skill"] = json!(skill);
    let c = app
        .post(&format!("{N}/contributions"), Some(&who.token), b)
        .await
        .ok(201);
    c["id"].as_str().expect("id").to_owned()
}

async fn post_batch(app: &TestApp, who: &Member, items: Vec<Value>) {
    app.post(
        &format!("{N}/contributions/batch"),
        Some(&who.token),
        json!({ "items": items }),
    )
    .await
    .ok(201);
}

async fn approve(app: &TestApp, by: &Member, id: &str) {
    app.post(
        &format!("{N}/contributions/{id}/validations"),
        Some(&by.token),
        json!({ "decision": "approve" }),
    )
    .await
    .ok(201);
}

async fn propose(app: &TestApp, by: &Member, body: Value) -> String {
    let p = app
        .post(&format!("{N}/proposals"), Some(&by.token), body)
        .await
        .ok(201);
    p["id"].as_str().expect("id").to_owned()
}

async fn vote(app: &TestApp, by: &Member, id: &str, v: &str) -> Value {
    app.post(
        &format!("{N}/proposals/{id}/votes"),
        Some(&by.token),
        json!({ "vote": v }),
    )
    .await
    .ok(201)
}

fn line<'a>(d: &'a Value, who: &str) -> &'a Value {
    d["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["agent_id"] == who || l["account"] == who)
        .expect("line")
}

async fn preset_to_verified_distribution(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    app.get(&format!("{N}/shares"), None)
        .await
        .assert_problem(409, None);

    // Adopt the Sensorica preset by vote: 3 eligible, quorum 50%, majority.
    let presets = app.get("/v1/presets", None).await.ok(200);
    assert!(presets
        .as_array()
        .expect("presets")
        .iter()
        .any(|p| p["name"] == "sensorica"));
    let pid = propose(
        &app,
        &ada,
        json!({ "title": "Adopt Sensorica", "preset": "sensorica" }),
    )
    .await;
    let whatif = app
        .get(&format!("{N}/proposals/{pid}/what-if?amount=1000"), None)
        .await
        .ok(200);
    assert!(whatif["current_version"].is_null());
    // Three members, the reserve, and what nobody's work can take yet, retained as its own line.
    assert_eq!(whatif["rows"].as_array().map(Vec::len), Some(5), "{whatif}");
    assert!(whatif["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .any(|r| r["account"] == "retained" && r["proposed"] == "900.00"));
    assert_eq!(vote(&app, &ada, &pid, "yes").await["status"], "open");
    let passed = vote(&app, &bob, &pid, "yes").await;
    assert_eq!(passed["status"], "passed");
    assert_eq!(passed["version"], 1);
    app.post(
        &format!("{N}/proposals/{pid}/votes"),
        Some(&steward.token),
        json!({ "vote": "no" }),
    )
    .await
    .assert_problem(409, None);
    let v1 = app.get(&format!("{N}/equation"), None).await.ok(200);
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["status"], "active");
    assert_eq!(v1["content_hash"], passed["content_hash"]);

    // Work, validated by peers: Ada 10 h design (×1.5 = 15), Bob 20 h fabrication (×1.2 = 24).
    let a = log(&app, &ada, "10", "design").await;
    let b = log(&app, &bob, "20", "fabrication").await;
    let pending = log(&app, &bob, "100", "design").await;
    approve(&app, &bob, &a).await;
    approve(&app, &ada, &b).await;
    let _ = pending;

    let income = app
        .post(&format!("{N}/income"), Some(&steward.token), json!({ "amount": "1000.00", "currency": "EUR", "source": "frames", "received_at": "2026-02-01T00:00:00Z" }))
        .await
        .ok(201);
    let iid = income["id"].as_str().expect("id");
    app.post(
        &format!("{N}/income/{iid}/distribution"),
        Some(&ada.token),
        json!({}),
    )
    .await
    .assert_problem(403, None);
    let preview = app
        .post(
            &format!("{N}/income/{iid}/preview"),
            Some(&ada.token),
            json!({}),
        )
        .await
        .ok(200);
    assert!(preview["id"].is_null());
    let committed = app
        .post(
            &format!("{N}/income/{iid}/distribution"),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    assert_eq!(
        committed["lines"], preview["lines"],
        "the preview is what gets committed"
    );
    // Reserve 10% = 100.00; 900.00 split 15:24 → 346.153… and 553.846… → 34615 and 55385 cents.
    assert_eq!(line(&committed, "reserve")["amount"], "100.00");
    assert_eq!(line(&committed, &ada.id)["amount_minor"], "34615");
    assert_eq!(
        line(&committed, &ada.id)["exact_share"],
        "34615.384615384615384615"
    );
    assert_eq!(line(&committed, &bob.id)["amount_minor"], "55385");
    let total: i64 = committed["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            l["amount_minor"]
                .as_str()
                .expect("a")
                .parse::<i64>()
                .expect("int")
        })
        .sum();
    assert_eq!(total, 100_000);
    assert_eq!(committed["equation_version"], 1);
    let did = committed["id"].as_str().expect("id");

    app.post(
        &format!("{N}/income/{iid}/distribution"),
        Some(&steward.token),
        json!({}),
    )
    .await
    .assert_problem(409, None);
    let verify = app
        .get(&format!("{N}/distributions/{did}/verify"), None)
        .await
        .ok(200);
    assert_eq!(verify["matches"], true, "{verify}");

    let paid = app
        .post(
            &format!("{N}/distributions/{did}/lines/2/payment"),
            Some(&steward.token),
            json!({ "reference": "0xabc123" }),
        )
        .await
        .ok(201);
    assert_eq!(paid["paid_reference"], "0xabc123");
    app.post(
        &format!("{N}/distributions/{did}/lines/2/payment"),
        Some(&steward.token),
        json!({ "reference": "again" }),
    )
    .await
    .assert_problem(409, None);
    app.post(
        &format!("{N}/distributions/{did}/lines/99/payment"),
        Some(&steward.token),
        json!({ "reference": "x" }),
    )
    .await
    .assert_problem(404, None);

    let shares = app
        .get(&format!("{N}/shares?amount=100"), None)
        .await
        .ok(200);
    assert_eq!(shares["total_value"], "39");
    assert_eq!(
        shares["items"][0]["agent_id"],
        json!(bob.id),
        "highest value first"
    );
    assert_eq!(shares["items"][0]["value"], "24");
    assert_eq!(
        shares["items"][0]["paid"],
        json!([{ "currency": "EUR", "amount": "553.85" }])
    );
    assert_eq!(shares["items"][1]["share"], "0.384615384615");
    assert_eq!(shares["items"][1]["would_get"], "34.62");
    let one = app
        .get(&format!("{N}/shares/{}", ada.id), None)
        .await
        .ok(200);
    assert_eq!(one["value"], "15");
    let page = app.get(&format!("{N}/shares?limit=1"), None).await.ok(200);
    let cursor = page["next_cursor"].as_str().expect("more");
    let page2 = app
        .get(&format!("{N}/shares?limit=1&cursor={cursor}"), None)
        .await
        .ok(200);
    assert_eq!(page2["items"][0]["agent_id"], json!(ada.id));
    let dists = app.get(&format!("{N}/distributions"), None).await.ok(200);
    assert_eq!(dists["items"].as_array().map(Vec::len), Some(1));
}

async fn governance_paths(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let cy = app.join("lab", "Cy").await;
    let auditor = app.join("lab", "Aud").await;
    app.set_role("lab", &steward, &auditor, "auditor").await;
    let outsider = app.agent("Out").await;

    // Fails: a majority votes no (4 eligible: steward, Ada, Bob, Cy).
    let p = propose(
        &app,
        &ada,
        json!({ "title": "Balanced", "preset": "sourcecred_balanced" }),
    )
    .await;
    app.post(
        &format!("{N}/proposals/{p}/votes"),
        Some(&outsider.token),
        json!({ "vote": "yes" }),
    )
    .await
    .assert_problem(403, None);
    app.post(
        &format!("{N}/proposals/{p}/votes"),
        Some(&auditor.token),
        json!({ "vote": "yes" }),
    )
    .await
    .assert_problem(403, None);
    vote(&app, &ada, &p, "yes").await;
    app.post(
        &format!("{N}/proposals/{p}/votes"),
        Some(&ada.token),
        json!({ "vote": "no" }),
    )
    .await
    .assert_problem(409, None);
    assert_eq!(vote(&app, &bob, &p, "no").await["status"], "open");
    // 1 yes, 2 no, 1 left: even a yes could not make a majority, so it fails at once.
    let failed = vote(&app, &cy, &p, "no").await;
    assert_eq!(failed["status"], "failed");
    assert!(failed["version"].is_null());
    app.post(
        &format!("{N}/proposals/{p}/votes"),
        Some(&steward.token),
        json!({ "vote": "yes" }),
    )
    .await
    .assert_problem(409, None);

    // Expires: one vote of four, then the period ends.
    let q = propose(
        &app,
        &bob,
        json!({ "title": "Sensorica", "preset": "sensorica" }),
    )
    .await;
    assert_eq!(vote(&app, &bob, &q, "yes").await["status"], "open");
    app.sql(&format!(
        "UPDATE proposals SET voting_ends_at = '2026-01-01 00:00:00' WHERE id = '{q}'"
    ));
    let expired = app.get(&format!("{N}/proposals/{q}"), None).await.ok(200);
    assert_eq!(expired["status"], "expired");
    app.get(&format!("{N}/equation"), None)
        .await
        .assert_problem(404, None);

    // Passes by time with quorum and majority (2 yes, 1 no), and allows fast-track.
    let mut eq = app.get("/v1/presets", None).await.ok(200)[0]["equation"].clone();
    eq["governance"] = json!({ "steward_fast_track": true, "quorum_percent": "50", "threshold_percent": "50", "voting_days": 3 });
    let r = propose(
        &app,
        &cy,
        json!({ "title": "Pie with fast track", "equation": eq }),
    )
    .await;
    vote(&app, &cy, &r, "yes").await;
    vote(&app, &ada, &r, "yes").await;
    assert_eq!(vote(&app, &bob, &r, "no").await["status"], "open");
    app.post(
        &format!("{N}/proposals/{r}/fast-track"),
        Some(&steward.token),
        json!({}),
    )
    .await
    .assert_problem(403, None);
    app.sql(&format!(
        "UPDATE proposals SET voting_ends_at = '2026-01-01 00:00:00' WHERE id = '{r}'"
    ));
    let list = app.get(&format!("{N}/proposals"), None).await.ok(200);
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["status"].as_str().expect("s"))
        .collect();
    assert_eq!(statuses, vec!["passed", "expired", "failed"]);
    assert_eq!(
        app.get(&format!("{N}/equation"), None).await.ok(200)["version"],
        1
    );

    // Under v1 stewards may fast-track: recorded on the proposal. The what-if compares.
    let s = propose(
        &app,
        &ada,
        json!({ "title": "Sensorica now", "preset": "sensorica" }),
    )
    .await;
    let whatif = app
        .get(&format!("{N}/proposals/{s}/what-if?amount=10"), None)
        .await
        .ok(200);
    assert_eq!(whatif["current_version"], 1);
    assert!(whatif["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .any(|r| r["account"] == "reserve" && r["proposed"] == "1.00" && r["current"] == "0.00"));
    app.post(
        &format!("{N}/proposals/{s}/fast-track"),
        Some(&ada.token),
        json!({}),
    )
    .await
    .assert_problem(403, None);
    let fast = app
        .post(
            &format!("{N}/proposals/{s}/fast-track"),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(fast["status"], "passed");
    assert_eq!(fast["fast_tracked_by"], json!(steward.id));
    assert_eq!(fast["version"], 2);
    let versions = app.get(&format!("{N}/equations"), None).await.ok(200);
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    assert_eq!(versions[0]["status"], "superseded");
    assert_eq!(versions[1]["status"], "active");
    let at = app
        .get(&format!("{N}/equation?at=2026-01-01T00:00:00Z"), None)
        .await
        .ok(200);
    assert_eq!(at["version"], 1, "in force at that date");
    app.get(&format!("{N}/equations/7"), None)
        .await
        .assert_problem(404, None);
}

async fn equation_bad_input(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let t = Some(steward.token.as_str());
    let path = format!("{N}/proposals");
    let pool = json!({ "name": "p", "share": "straight", "percent": "100", "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } });
    let with = |k: &str, v: Value| {
        let mut e = json!({ "buckets": [pool.clone()] });
        e[k] = v;
        json!({ "title": "t", "equation": e })
    };
    let cases = [
        (
            with("formulas", json!({ "work": "quantity * salary" })),
            "equation.formulas.work",
            "unknown variable 'salary'",
        ),
        (
            with("formulas", json!({ "work": "quantity * (rate" })),
            "equation.formulas.work",
            "position 16",
        ),
        (
            with("formulas", json!({ "work": "quantity / 0" })),
            "equation.formulas.work",
            "division by zero",
        ),
        (
            json!({ "title": "t", "equation": { "buckets": [
                { "name": "a", "share": "straight", "percent": "70", "to": { "account": "reserve" } },
                { "name": "b", "share": "straight", "percent": "40", "to": { "account": "fund" } }
            ] } }),
            "equation.buckets[1].percent",
            "more than 100",
        ),
        (
            with("default_rate", json!("-1")),
            "equation.default_rate",
            "negative",
        ),
        (
            with("buckets", json!([])),
            "equation.buckets",
            "at least one",
        ),
        (
            json!({ "title": "t", "preset": "nope" }),
            "preset",
            "unknown preset",
        ),
        (json!({ "title": "t" }), "equation", "exactly one"),
        (
            json!({ "title": "", "preset": "sensorica" }),
            "title",
            "at least",
        ),
        (
            with("surprise", json!(1)),
            "equation.surprise",
            "unknown field",
        ),
    ];
    for (body, field, words) in cases {
        let res = app.post(&path, t, body).await;
        res.assert_problem(422, Some(field));
        assert!(
            res.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(words)),
            "{field}: {}",
            res.body
        );
    }
    let list = app.get(&path, None).await.ok(200);
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(0),
        "nothing written"
    );
    app.post(&format!("{N}/income"), t, json!({ "amount": "1.001", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .assert_problem(422, Some("amount"));
    app.post(&format!("{N}/income"), t, json!({ "amount": "1", "currency": "USD", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .assert_problem(422, Some("currency"));
    app.post(&format!("{N}/income"), t, json!({ "amount": "0", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .assert_problem(422, Some("amount"));
    let income = app.post(&format!("{N}/income"), t, json!({ "amount": "5", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" })).await.ok(201);
    let iid = income["id"].as_str().expect("id");
    app.post(&format!("{N}/income/{iid}/preview"), t, json!({}))
        .await
        .assert_problem(409, None);
    app.post(
        &format!("{N}/income/{iid}/preview"),
        t,
        json!({ "cutoff": "2999-01-01T00:00:00Z" }),
    )
    .await
    .assert_problem(422, Some("cutoff"));
}

async fn equation_sets_validation_threshold(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let mut eq = app.get("/v1/presets", None).await.ok(200)[1]["equation"].clone();
    eq["validation"] = json!({ "approvals_required": 2, "rejections_required": 1 });
    eq["governance"] = json!({ "steward_fast_track": true });
    let p = propose(
        &app,
        &steward,
        json!({ "title": "Two approvals", "equation": eq.clone() }),
    )
    .await;
    vote(&app, &steward, &p, "yes").await;
    assert_eq!(vote(&app, &ada, &p, "yes").await["status"], "passed");
    let c = log(&app, &ada, "3", "design").await;
    let first = app
        .post(
            &format!("{N}/contributions/{c}/validations"),
            Some(&bob.token),
            json!({ "decision": "approve" }),
        )
        .await
        .ok(201);
    assert_eq!(
        first["contribution_status"], "pending",
        "the equation needs two approvals"
    );
    let second = app
        .post(
            &format!("{N}/contributions/{c}/validations"),
            Some(&steward.token),
            json!({ "decision": "approve" }),
        )
        .await
        .ok(201);
    assert_eq!(second["contribution_status"], "validated");
}

/// A network under the balanced preset where Ada has 10 validated hours.
async fn balanced_lab(app: &TestApp, network: Value) -> (Member, Member, Member, String) {
    let steward = app.network("lab", network).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let p = propose(
        app,
        &steward,
        json!({ "title": "Balanced", "preset": "sourcecred_balanced" }),
    )
    .await;
    vote(app, &ada, &p, "yes").await;
    vote(app, &steward, &p, "yes").await;
    let a = log(app, &ada, "10", "x").await;
    approve(app, &bob, &a).await;
    (steward, ada, bob, a)
}

async fn balanced_history_and_verification(app: TestApp) {
    let (steward, ada, bob, a) = balanced_lab(&app, json!({})).await;
    let income = |amount: &'static str| json!({ "amount": amount, "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" });
    let i1 = app
        .post(&format!("{N}/income"), Some(&steward.token), income("100"))
        .await
        .ok(201);
    let d1 = app
        .post(
            &format!("{N}/income/{}/distribution", i1["id"].as_str().expect("id")),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    assert_eq!(line(&d1, &ada.id)["amount"], "100.00");
    // Bob now contributes as much; balanced pays him toward his share first:
    // pot 100 + 100, targets 100 each, Ada already has 100 → all of it to Bob.
    let b = log(&app, &bob, "10", "x").await;
    approve(&app, &ada, &b).await;
    let i2 = app
        .post(&format!("{N}/income"), Some(&steward.token), income("100"))
        .await
        .ok(201);
    let d2 = app
        .post(
            &format!("{N}/income/{}/distribution", i2["id"].as_str().expect("id")),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    assert_eq!(line(&d2, &bob.id)["amount"], "100.00");
    assert_eq!(d2["lines"].as_array().map(Vec::len), Some(1));
    // Later changes do not disturb earlier distributions' verification.
    let late = log(&app, &ada, "50", "x").await;
    approve(&app, &bob, &late).await;
    let mut fix = work("9");
    fix["corrects"] = json!(a);
    fix["description"] = json!("was nine hours");
    app.post(&format!("{N}/contributions"), Some(&ada.token), fix)
        .await
        .ok(201);
    for d in [&d1, &d2] {
        let v = app
            .get(
                &format!("{N}/distributions/{}/verify", d["id"].as_str().expect("id")),
                None,
            )
            .await
            .ok(200);
        assert_eq!(v["matches"], true, "{v}");
    }
    // Tampering with a stored line is caught (SQLite; PostgreSQL refuses the UPDATE itself).
    if let common::Backend::Sqlite = app.backend {
        app.sql("DROP TRIGGER distribution_lines_no_update");
        app.sql(&format!(
            "UPDATE distribution_lines SET amount_minor = '9999' WHERE distribution_id = '{}'",
            d2["id"].as_str().expect("id")
        ));
        let v = app
            .get(
                &format!(
                    "{N}/distributions/{}/verify",
                    d2["id"].as_str().expect("id")
                ),
                None,
            )
            .await
            .ok(200);
        assert_eq!(v["matches"], false);
        assert!(
            v["mismatches"][0]
                .as_str()
                .is_some_and(|m| m.starts_with("line 1")),
            "{v}"
        );
    }
}

/// The paid history is summed by the database where it can be exact; amounts of an
/// 18-decimal currency pass 64 bits (SQLite's integer sum) and must still count exactly.
async fn balanced_history_past_64_bits(app: TestApp) {
    let (steward, ada, bob, _) = balanced_lab(
        &app,
        json!({ "currencies": [{ "code": "ETH", "scale": 18 }] }),
    )
    .await;
    let distribute = |amount| app.income_then("lab", &steward, amount, "ETH", "distribution");
    // 9 ETH twice: each line fits 64 bits (9e18 minor units), their sum does not.
    let d1 = distribute("9").await;
    let d2 = distribute("9").await;
    assert_eq!(line(&d2, &ada.id)["amount_minor"], "9000000000000000000");
    // Bob now has as much value: pot 18 + 18, Ada already has her 18, so Bob gets all.
    let b = log(&app, &bob, "10", "x").await;
    approve(&app, &ada, &b).await;
    let d3 = distribute("18").await;
    assert_eq!(d3["lines"].as_array().map(Vec::len), Some(1), "{d3}");
    assert_eq!(line(&d3, &bob.id)["amount_minor"], "18000000000000000000");
    // A line past 64 bits on its own: pot 36 + 100, targets 68 each, so 50 and 50.
    let d4 = distribute("100").await;
    assert_eq!(line(&d4, &ada.id)["amount"], "50.000000000000000000");
    assert_eq!(line(&d4, &bob.id)["amount"], "50.000000000000000000");
    // Then 2 more: both at 118 paid, equal targets: 1 and 1.
    let d5 = distribute("2").await;
    assert_eq!(line(&d5, &ada.id)["amount_minor"], "1000000000000000000");
    assert_eq!(line(&d5, &bob.id)["amount_minor"], "1000000000000000000");
    for d in [&d1, &d2, &d3, &d4, &d5] {
        app.verifies("lab", d).await;
    }
}

/// Each commit rewrites the kept sums (`paid_totals`) of every agent it pays. After many
/// commits among enough members to fill several of the table's pages, the sums are exact on
/// both backends. On PostgreSQL the migration `paid_totals_updated_in_place` leaves half of
/// each page free, so that a commit writes each new sum beside the one it replaces (a
/// heap-only update) instead of on a new page. The first commit's sums fill their pages to
/// half, and the second commit's fit beside them whether or not the first's have been pruned
/// yet: the table keeps its size (a page more at most). Without the migration this test failed:
/// the second commit moved every sum, and the table grew from 3 pages to 6.
///
/// Later commits find the old versions pruned when PostgreSQL has read their page again and
/// no transaction can still see them; that can be put off while connections open and close
/// around it, so the size after many commits is not asserted (alone: 6 pages after the first
/// commit and 7 after the twentieth, against 3 and 25 without the migration).
async fn kept_paid_sums_stay_in_place(app: TestApp) {
    const MEMBERS: usize = 200;
    const COMMITS: i64 = 20;
    let steward = app.network("lab", json!({})).await;
    let eq = json!({
        "counting": { "statuses": ["pending", "validated"] },
        "buckets": [{ "name": "all", "share": "straight", "percent": "100",
                      "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } }]
    });
    // Adopted while the steward is the only member, whose vote carries it.
    let p = propose(&app, &steward, json!({ "title": "Even", "equation": eq })).await;
    vote(&app, &steward, &p, "yes").await;
    let mut items = Vec::new();
    for i in 0..MEMBERS {
        let m = app.join("lab", &format!("Member {i}")).await;
        let mut w = work("1");
        w["agent_id"] = json!(m.id);
        items.push(w);
    }
    post_batch(&app, &steward, items).await;
    let pages = || app.sql_count("SELECT (pg_relation_size('paid_totals') / 8192)::bigint AS n");
    let postgres = matches!(app.backend, common::Backend::Postgres);
    let mut after = Vec::new();
    for commit in 1..=COMMITS {
        // 200.00 EUR among 200 equal members: 1.00 each.
        let d = app
            .income_then("lab", &steward, "200", "EUR", "distribution")
            .await;
        assert_eq!(d["lines"].as_array().map(Vec::len), Some(MEMBERS), "{d}");
        if commit <= 2 && postgres {
            after.push(pages());
        }
    }
    let members = i64::try_from(MEMBERS).expect("fits");
    assert_eq!(
        app.sql_count(&format!(
            "SELECT COUNT(*) AS n FROM paid_totals WHERE CAST(amount_minor AS BIGINT) = {}",
            COMMITS * 100
        )),
        members,
        "every member's kept sum is what the commits paid them"
    );
    if let [first, second] = after[..] {
        assert!(
            second <= first + 1,
            "paid_totals grew from {first} pages to {second} in the second commit"
        );
    } else {
        assert!(!postgres, "pages read after the first two commits");
    }
}

/// A balanced pool reads what earlier distributions paid from the sums each commit keeps
/// (`paid_totals`), not from every line: tampered sums show in a preview, sums that do not
/// cover every distribution (as after an upgrade) are not read, and the next commit sums the
/// lines afresh. Every commit still verifies against the lines.
async fn balanced_reads_kept_paid_sums(app: TestApp) {
    let (steward, ada, bob, _) = balanced_lab(&app, json!({})).await;
    let d1 = app
        .income_then("lab", &steward, "100", "EUR", "distribution")
        .await;
    let b = log(&app, &bob, "10", "x").await;
    approve(&app, &ada, &b).await;
    let d2 = app
        .income_then("lab", &steward, "30", "EUR", "distribution")
        .await;
    let income = app
        .post(
            &format!("{N}/income"),
            Some(&steward.token),
            json!({ "amount": "50", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }),
        )
        .await
        .ok(201);
    let id = income["id"].as_str().expect("id").to_owned();
    // One cut-off for every computation of this income, so their digests compare.
    let cutoff = json!({ "cutoff": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true) });
    let preview = || async {
        app.post(
            &format!("{N}/income/{id}/preview"),
            Some(&steward.token),
            cutoff.clone(),
        )
        .await
        .ok(200)
    };
    // Paid so far: Ada 100, Bob 30. Pot 180, targets 90 each: all 50 to Bob.
    let kept = preview().await;
    assert_eq!(line(&kept, &bob.id)["amount"], "50.00", "{kept}");
    app.sql("UPDATE paid_totals SET amount_minor = 0");
    let tampered = preview().await;
    assert_eq!(line(&tampered, &ada.id)["amount"], "25.00", "{tampered}");
    assert_ne!(tampered["inputs_digest"], kept["inputs_digest"]);
    app.sql("DELETE FROM paid_totals_state");
    let summed = preview().await;
    assert_eq!(summed["lines"], kept["lines"]);
    assert_eq!(summed["inputs_digest"], kept["inputs_digest"]);
    let d3 = app
        .post(
            &format!("{N}/income/{id}/distribution"),
            Some(&steward.token),
            cutoff.clone(),
        )
        .await
        .ok(201);
    assert_eq!(d3["inputs_digest"], kept["inputs_digest"]);
    let c = log(&app, &ada, "20", "x").await;
    approve(&app, &bob, &c).await;
    let d4 = app
        .income_then("lab", &steward, "70", "EUR", "distribution")
        .await;
    for d in [&d1, &d2, &d3, &d4] {
        app.verifies("lab", d).await;
    }
}

/// Shares and distributions read contributions 10,000 at a time: 21,001 contributions cross
/// page boundaries, with tags and a correction on later pages, and nothing is counted twice
/// or missed.
/// A contribution whose value cannot be computed, on the second of three pages: shares and the
/// preview answer 422 naming the formula and the contribution (the pages are weighed as they
/// are read, so the error comes while later pages are still to be read), and the network
/// goes on answering.
async fn a_value_past_the_first_page_that_cannot_be_computed(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let eq = json!({
        "counting": { "statuses": ["pending", "validated"] },
        "formulas": { "work": "quantity / (quantity - 3)" },
        "buckets": [{ "name": "all", "share": "straight", "percent": "100",
                      "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } }]
    });
    let p = propose(
        &app,
        &steward,
        json!({ "title": "Fragile", "equation": eq }),
    )
    .await;
    for m in [&steward, &ada] {
        vote(&app, m, &p, "yes").await;
    }
    let ones = |n: usize| (0..n).map(|_| work("1")).collect::<Vec<Value>>();
    for _ in 0..10 {
        post_batch(&app, &ada, ones(1000)).await;
    }
    post_batch(&app, &ada, ones(500)).await;
    let bad = log(&app, &ada, "3", "x").await;
    for _ in 0..10 {
        post_batch(&app, &ada, ones(1000)).await;
    }
    let refused = |res: common::Res| {
        res.assert_problem(422, Some("formulas"));
        let detail = res.body["detail"].as_str().expect("detail");
        assert!(
            detail.contains(&bad),
            "names the contribution: {}",
            res.body
        );
    };
    for _ in 0..2 {
        refused(app.get(&format!("{N}/shares"), None).await);
    }
    let income = app
        .post(
            &format!("{N}/income"),
            Some(&steward.token),
            json!({ "amount": "100", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }),
        )
        .await
        .ok(201);
    let id = income["id"].as_str().expect("id");
    refused(
        app.post(
            &format!("{N}/income/{id}/preview"),
            Some(&steward.token),
            json!({}),
        )
        .await,
    );
    app.get(&format!("{N}/contributions?limit=5"), None)
        .await
        .ok(200);
}

async fn values_read_past_one_page(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let cy = app.join("lab", "Cy").await;
    let pool = |tags: Option<Vec<&str>>| {
        let mut p = json!({ "policy": { "type": "pro_rata", "claim": "equity" } });
        if let Some(t) = tags {
            p["tags"] = json!(t);
        }
        p
    };
    let eq = json!({
        "counting": { "statuses": ["pending", "validated"] },
        "buckets": [
            { "name": "all", "share": "straight", "percent": "50", "pool": pool(None) },
            { "name": "design", "share": "straight", "percent": "50", "pool": pool(Some(vec!["design"])) }
        ]
    });
    let p = propose(&app, &steward, json!({ "title": "Paged", "equation": eq })).await;
    for m in [&steward, &ada, &bob] {
        vote(&app, m, &p, "yes").await;
    }
    let items = |n: usize, tag: Option<&str>| -> Vec<Value> {
        (0..n)
            .map(|_| {
                let mut w = work("1");
                if let Some(t) = tag {
                    w["tags"] = json!([t]);
                }
                w
            })
            .collect()
    };
    let c = log(&app, &cy, "5", "x").await;
    for _ in 0..12 {
        post_batch(&app, &ada, items(1000, None)).await;
    }
    for _ in 0..9 {
        post_batch(&app, &bob, items(999, Some("design"))).await;
    }
    // Cy's 5 hours are corrected to 10 after everything else: the correction and the
    // contribution it supersedes are on different pages.
    let mut fix = work("10");
    fix["corrects"] = json!(c);
    fix["description"] = json!("was ten hours");
    app.post(&format!("{N}/contributions"), Some(&cy.token), fix)
        .await
        .ok(201);
    let shares = app.get(&format!("{N}/shares"), None).await.ok(200);
    assert_eq!(shares["total_value"], "21001", "{shares}");
    let value = |who: &Member| {
        shares["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["agent_id"] == json!(who.id))
            .map(|i| i["value"].clone())
    };
    assert_eq!(value(&ada), Some(json!("12000")));
    assert_eq!(value(&bob), Some(json!("8991")));
    assert_eq!(value(&cy), Some(json!("10")));
    // On SQLite the preview reads pages on two threads when the pool has a connection to
    // spare; the commit, inside its transaction, reads them one after another. Both must see
    // the same.
    let spare_before = app.metric(SPARE_PAGES).await;
    let income = app
        .post(
            &format!("{N}/income"),
            Some(&steward.token),
            json!({ "amount": "42002", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }),
        )
        .await
        .ok(201);
    let id = income["id"].as_str().expect("id");
    let cutoff = json!({ "cutoff": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true) });
    let preview = app
        .post(
            &format!("{N}/income/{id}/preview"),
            Some(&steward.token),
            cutoff.clone(),
        )
        .await
        .ok(200);
    if matches!(app.backend, common::Backend::Sqlite) {
        assert!(
            app.metric(SPARE_PAGES).await > spare_before,
            "read on a spare connection"
        );
    }
    let committed = app
        .post(
            &format!("{N}/income/{id}/distribution"),
            Some(&steward.token),
            cutoff,
        )
        .await
        .ok(201);
    assert_eq!(committed["inputs_digest"], preview["inputs_digest"]);
    assert_eq!(committed["lines"], preview["lines"]);
    app.verifies("lab", &committed).await;
    let amounts: Vec<(String, String)> = preview["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["bucket"].as_str().unwrap_or_default().to_owned(),
                l["amount"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    // all: 21,001 to split 12,000 / 8,991 / 10; design: Bob alone.
    let want: Vec<(String, String)> = [
        ("all", "12000.00"),
        ("all", "8991.00"),
        ("all", "10.00"),
        ("design", "21001.00"),
    ]
    .iter()
    .map(|(b, a)| ((*b).to_owned(), (*a).to_owned()))
    .collect();
    let mut got = amounts.clone();
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want, "{preview}");
}

async fn random_distributions_sum_exactly(app: TestApp) {
    let steward = app.network("lab", json!({ "currencies": [{ "code": "EUR", "scale": 2 }, { "code": "ETH", "scale": 18 }] })).await;
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(app.join("lab", &format!("m{i}")).await);
    }
    let eq = json!({
        "rates": [{ "kind": "work", "skill": "design", "rate": "1.7" }],
        "multipliers": { "cash": "4" },
        "decay_half_life_days": 30,
        "buckets": [
            { "name": "reserve", "share": "straight", "percent": "7.5", "to": { "account": "reserve" } },
            { "name": "recent", "share": "remaining", "percent": "33.3", "pool": { "policy": { "type": "recent", "period_days": 7, "discount": "0.2" } } },
            { "name": "equity", "share": "remaining", "percent": "100", "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } }
        ],
        "leftover": { "type": "account", "account": "treasury" }
    });
    let p = propose(&app, &steward, json!({ "title": "Mixed", "equation": eq })).await;
    for m in &members[..3] {
        vote(&app, m, &p, "yes").await;
    }
    assert_eq!(
        vote(&app, &steward, &p, "yes").await["status"],
        "passed",
        "4 of 6"
    );
    // A deterministic pseudo-random set of contributions, each approved by the next member.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for _ in 0..24 {
        let who = usize::try_from(next(5)).expect("index");
        let mut b = work(&format!("{}.{}", next(40) + 1, next(100)));
        b["skill"] = json!(if next(2) == 0 { "design" } else { "build" });
        b["occurred_at"] = json!(format!("2026-01-{:02}T10:00:00Z", next(28) + 1));
        let c = app
            .post(&format!("{N}/contributions"), Some(&members[who].token), b)
            .await
            .ok(201);
        approve(&app, &members[(who + 1) % 5], c["id"].as_str().expect("id")).await;
    }
    for (amount, currency) in [
        ("1000.01", "EUR"),
        ("0.07", "EUR"),
        ("3.141592653589793238", "ETH"),
    ] {
        let income = json!({ "amount": amount, "currency": currency, "source": "s", "received_at": "2026-02-01T00:00:00Z" });
        let i = app
            .post(&format!("{N}/income"), Some(&steward.token), income)
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
        let sum: u128 = d["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| {
                l["amount_minor"]
                    .as_str()
                    .expect("a")
                    .parse::<u128>()
                    .expect("int")
            })
            .sum();
        assert_eq!(
            sum.to_string(),
            d["amount_minor"].as_str().expect("amount"),
            "{currency} {amount}"
        );
        for l in d["lines"].as_array().expect("lines") {
            let exact = l["exact_share"].as_str().expect("exact");
            let floor: u128 = exact
                .split('.')
                .next()
                .expect("int")
                .parse()
                .expect("floor");
            let amount: u128 = l["amount_minor"]
                .as_str()
                .expect("a")
                .parse()
                .expect("amount");
            assert!(amount == floor || amount == floor + 1, "{l}");
        }
        let v = app
            .get(
                &format!("{N}/distributions/{}/verify", d["id"].as_str().expect("id")),
                None,
            )
            .await
            .ok(200);
        assert_eq!(v["matches"], true, "{v}");
    }
}

/// A computation's pages leave the unit and the skill out where the equation reads neither;
/// where it reads them (a rate for a skill, a formula reading `hours`), they are read and
/// weigh as written: in the shares, a preview, a commit and its verification alike.
async fn units_and_skills_read_where_the_equation_weighs_by_them(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let eq = json!({
        "rates": [{ "kind": "work", "skill": "design", "rate": "3" }],
        "formulas": { "equipment_use": "hours * 2 + quantity" },
        "buckets": [{ "name": "all", "share": "straight", "percent": "100",
                      "pool": { "policy": { "type": "pro_rata", "claim": "equity" } } }]
    });
    let adopted = app
        .adopt(
            "lab",
            &steward,
            json!({ "title": "By unit and skill", "equation": eq }),
            &[&steward, &ada],
        )
        .await;
    assert_eq!(adopted["status"], "passed");
    let equipment = |quantity: &str, unit: &str| json!({ "kind": "equipment_use", "quantity": quantity, "unit": unit, "occurred_at": "2026-01-15T10:00:00Z" });
    // Ada: 2 h of design at 3 (6), 3 h of equipment (3 × 2 + 3 = 9): 15.
    // Bob: 2 h of building at the default 1 (2), 2 days of equipment (0 × 2 + 2 = 2): 4.
    let a1 = log(&app, &ada, "2", "design").await;
    let b1 = log(&app, &bob, "2", "build").await;
    let mut logged = vec![(a1, &bob), (b1, &ada)];
    for (who, by, body) in [
        (&ada, &bob, equipment("3", "hours")),
        (&bob, &ada, equipment("2", "days")),
    ] {
        let c = app
            .post(&format!("{N}/contributions"), Some(&who.token), body)
            .await
            .ok(201);
        logged.push((c["id"].as_str().expect("id").to_owned(), by));
    }
    for (id, by) in &logged {
        approve(&app, by, id).await;
    }
    let shares = app.get(&format!("{N}/shares"), None).await.ok(200);
    assert_eq!(shares["total_value"], "19", "{shares}");
    let preview = app
        .income_then("lab", &steward, "190.00", "EUR", "preview")
        .await;
    assert_eq!(line(&preview, &ada.id)["amount"], "150.00", "{preview}");
    assert_eq!(line(&preview, &bob.id)["amount"], "40.00", "{preview}");
    let committed = app
        .income_then("lab", &steward, "190.00", "EUR", "distribution")
        .await;
    assert_eq!(committed["lines"], preview["lines"]);
    app.verifies("lab", &committed).await;
}

//! Contributions: single and batch, corrections, filters, bots, idempotency, bad input.

mod common;

use common::{work, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    log_and_read,
    batch_is_all_or_nothing,
    corrections_supersede,
    filters_and_pages,
    bots_record_on_behalf,
    idempotent_retries,
    large_answers_replay_from_their_compressed_store,
    stale_claims_are_taken_over,
    retries_replay_what_would_now_be_refused,
    a_slug_given_to_another_network_is_followed,
    bad_input_writes_nothing,
    cross_network_access_refused,
    csv_import_dry_run_then_all_or_nothing,
);

const PATH: &str = "/v1/networks/lab/contributions";

async fn log_and_read(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let body = json!({
        "kind": "work", "quantity": "2.50", "unit": "hours", "skill": "cnc", "tags": ["frame", "v2"],
        "description": "Milled the frame", "evidence_url": "https://example.org/pr/1",
        "occurred_at": "2026-01-15T10:00:00.123456789Z"
    });
    let c = app.post(PATH, Some(&ada.token), body).await.ok(201);
    assert_eq!(c["quantity"], "2.5");
    assert_eq!(c["status"], "pending");
    assert_eq!(c["agent_id"], json!(ada.id));
    assert_eq!(c["recorded_by"], json!(ada.id));
    assert_eq!(c["tags"], json!(["frame", "v2"]));
    assert_eq!(
        c["occurred_at"], "2026-01-15T10:00:00.123456Z",
        "stored to the microsecond on both backends"
    );
    let got = app
        .get(&format!("{PATH}/{}", c["id"].as_str().expect("id")), None)
        .await
        .ok(200);
    assert_eq!(got, c);

    // Exact decimals: cash to the currency's scale, other kinds up to 18 fraction digits.
    let cash = json!({ "kind": "cash", "quantity": "1234567.89", "unit": "EUR", "occurred_at": "2026-01-15T10:00:00Z" });
    assert_eq!(
        app.post(PATH, Some(&ada.token), cash).await.ok(201)["quantity"],
        "1234567.89"
    );
    let fine = json!({ "kind": "material", "quantity": "9999999999.123456789012345678", "unit": "g", "occurred_at": "2026-01-15T10:00:00Z" });
    assert_eq!(
        app.post(PATH, Some(&ada.token), fine).await.ok(201)["quantity"],
        "9999999999.123456789012345678"
    );
    // A citation points at an earlier contribution.
    let cite = json!({ "kind": "citation", "quantity": "1", "unit": "each", "cites": c["id"], "occurred_at": "2026-01-16T10:00:00Z" });
    assert_eq!(
        app.post(PATH, Some(&ada.token), cite).await.ok(201)["cites"],
        c["id"]
    );
}

async fn batch_is_all_or_nothing(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let items: Vec<Value> = (1..=1000)
        .map(|i| work(&format!("{}.25", i % 7 + 1)))
        .collect();
    let out = app
        .post(
            &format!("{PATH}/batch"),
            Some(&ada.token),
            json!({ "items": items }),
        )
        .await
        .ok(201);
    assert_eq!(out["items"].as_array().map(Vec::len), Some(1000));
    assert_eq!(app.count_contributions("lab", None).await, 1000);

    // One bad item in the middle: nothing of the batch is written, and the error names it.
    let mut items: Vec<Value> = (0..10).map(|_| work("1")).collect();
    items[7] = work("-3");
    let res = app
        .post(
            &format!("{PATH}/batch"),
            Some(&ada.token),
            json!({ "items": items }),
        )
        .await;
    res.assert_problem(422, Some("items[7].quantity"));
    let mut items: Vec<Value> = (0..3).map(|_| work("1")).collect();
    items[2]["kind"] = json!("dance");
    app.post(
        &format!("{PATH}/batch"),
        Some(&ada.token),
        json!({ "items": items }),
    )
    .await
    .assert_problem(422, Some("items[2].kind"));
    assert_eq!(app.count_contributions("lab", None).await, 1000);

    let too_many: Vec<Value> = (0..1001).map(|_| work("1")).collect();
    app.post(
        &format!("{PATH}/batch"),
        Some(&ada.token),
        json!({ "items": too_many }),
    )
    .await
    .assert_problem(422, Some("items"));
    app.post(
        &format!("{PATH}/batch"),
        Some(&ada.token),
        json!({ "items": [] }),
    )
    .await
    .assert_problem(422, Some("items"));
    assert_eq!(app.count_contributions("lab", None).await, 1000);
}

async fn corrections_supersede(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    let first = app.work("lab", &ada, "3").await;
    let id = first["id"].as_str().expect("id");
    // Approved first, then corrected: the original stays visible, superseded.
    app.post(
        &format!("{PATH}/{id}/validations"),
        Some(&bob.token),
        json!({ "decision": "approve" }),
    )
    .await
    .ok(201);
    let mut fix = work("2");
    fix["corrects"] = json!(id);
    app.post(PATH, Some(&ada.token), fix.clone())
        .await
        .assert_problem(422, Some("description"));
    fix["description"] = json!("It was two hours, not three");
    app.post(PATH, Some(&bob.token), fix.clone())
        .await
        .assert_problem(403, None);
    let second = app.post(PATH, Some(&ada.token), fix.clone()).await.ok(201);
    assert_eq!(second["corrects"], json!(id));
    assert_eq!(second["agent_id"], json!(ada.id));
    assert_eq!(second["status"], "pending");
    let old = app.get(&format!("{PATH}/{id}"), None).await.ok(200);
    assert_eq!(old["status"], "superseded");
    assert_eq!(old["corrected_by"], second["id"]);
    assert_eq!(old["quantity"], "3", "never edited in place");
    // Only the latest version can be corrected, and a superseded one cannot be validated.
    app.post(PATH, Some(&steward.token), fix)
        .await
        .assert_problem(409, None);
    app.post(
        &format!("{PATH}/{id}/validations"),
        Some(&steward.token),
        json!({ "decision": "reject" }),
    )
    .await
    .assert_problem(409, None);
    let superseded = app
        .get(&format!("{PATH}?status=superseded"), None)
        .await
        .ok(200);
    assert_eq!(superseded["items"].as_array().map(Vec::len), Some(1));
    let pending = app
        .get(&format!("{PATH}?status=pending"), None)
        .await
        .ok(200);
    assert_eq!(pending["items"][0]["id"], second["id"]);
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(1));
    let validated = app
        .get(&format!("{PATH}?status=validated"), None)
        .await
        .ok(200);
    assert_eq!(
        validated["items"].as_array().map(Vec::len),
        Some(0),
        "superseded wins over validated"
    );
}

async fn filters_and_pages(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bob = app.join("lab", "Bob").await;
    for i in 0..5 {
        let mut b = work("1");
        b["tags"] = json!(["even"]);
        b["occurred_at"] = json!(format!("2026-01-{:02}T10:00:00Z", i + 1));
        if i % 2 == 1 {
            b["tags"] = json!(["odd"]);
        }
        app.post(PATH, Some(&ada.token), b).await.ok(201);
    }
    let mat = json!({ "kind": "material", "quantity": "3", "unit": "kg", "occurred_at": "2026-02-01T00:00:00Z" });
    app.post(PATH, Some(&bob.token), mat).await.ok(201);
    let count = |v: &Value| v["items"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count(
            &app.get(&format!("{PATH}?agent={}", ada.id), None)
                .await
                .ok(200)
        ),
        5
    );
    assert_eq!(
        count(
            &app.get(&format!("{PATH}?kind=material"), None)
                .await
                .ok(200)
        ),
        1
    );
    assert_eq!(
        count(&app.get(&format!("{PATH}?tag=odd"), None).await.ok(200)),
        2
    );
    assert_eq!(
        count(
            &app.get(
                &format!("{PATH}?from=2026-01-02T00:00:00Z&to=2026-01-04T00:00:00Z"),
                None
            )
            .await
            .ok(200)
        ),
        2
    );
    // Pages of two, newest first, no overlap, all six seen.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&format!("{PATH}?limit=2{cursor}"), None)
            .await
            .ok(200);
        for item in page["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted);
    app.get(&format!("{PATH}?kind=dance"), None)
        .await
        .assert_problem(422, Some("kind"));
    app.get(&format!("{PATH}?status=maybe"), None)
        .await
        .assert_problem(422, Some("status"));
    app.get(&format!("{PATH}?from=yesterday"), None)
        .await
        .assert_problem(422, Some("from"));
    app.get(&format!("{PATH}?agent=bob"), None)
        .await
        .assert_problem(422, Some("agent"));
    app.get(
        &format!("{PATH}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
        None,
    )
    .await
    .assert_problem(422, Some("to"));
    app.get(&format!("{PATH}?limit=1000"), None)
        .await
        .assert_problem(422, Some("limit"));
}

async fn bots_record_on_behalf(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let bot = app.join("lab", "repo-bot").await;
    app.set_role("lab", &steward, &bot, "bot").await;
    app.post(PATH, Some(&bot.token), work("1"))
        .await
        .assert_problem(422, Some("agent_id"));
    let mut b = work("1.5");
    b["agent_id"] = json!(ada.id);
    let c = app.post(PATH, Some(&bot.token), b.clone()).await.ok(201);
    assert_eq!(c["agent_id"], json!(ada.id));
    assert_eq!(c["recorded_by"], json!(bot.id));
    // Plain members cannot record for others; nobody records for a non-member.
    app.post(PATH, Some(&ada.token), {
        let mut x = work("1");
        x["agent_id"] = json!(bot.id);
        x
    })
    .await
    .assert_problem(403, None);
    let outsider = app.agent("Out").await;
    b["agent_id"] = json!(outsider.id);
    app.post(PATH, Some(&bot.token), b)
        .await
        .assert_problem(422, Some("agent_id"));
    // Auditors read everything and write nothing.
    let auditor = app.join("lab", "Aud").await;
    app.set_role("lab", &steward, &auditor, "auditor").await;
    app.post(PATH, Some(&auditor.token), work("1"))
        .await
        .assert_problem(403, None);
    assert_eq!(app.count_contributions("lab", None).await, 1);
}

async fn idempotent_retries(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let key = [("idempotency-key", "retry-1")];
    let first = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("4")), &key)
        .await;
    assert_eq!(first.status.as_u16(), 201);
    let again = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("4")), &key)
        .await;
    assert_eq!(again.status.as_u16(), 201);
    assert_eq!(again.body, first.body, "the first response is replayed");
    assert!(again.replayed());
    assert_eq!(app.count_contributions("lab", None).await, 1);
    // Same key, different body: refused.
    app.send(Method::POST, PATH, Some(&ada.token), Some(work("5")), &key)
        .await
        .assert_problem(422, None);
    // Same key from another agent is another key.
    let bob = app.join("lab", "Bob").await;
    app.send(Method::POST, PATH, Some(&bob.token), Some(work("4")), &key)
        .await
        .ok(201);
    // Batches too.
    let batch = json!({ "items": [work("1"), work("2")] });
    let bkey = [("idempotency-key", "batch-1")];
    let b1 = app
        .send(
            Method::POST,
            &format!("{PATH}/batch"),
            Some(&ada.token),
            Some(batch.clone()),
            &bkey,
        )
        .await;
    let b2 = app
        .send(
            Method::POST,
            &format!("{PATH}/batch"),
            Some(&ada.token),
            Some(batch),
            &bkey,
        )
        .await;
    assert_eq!(b1.body, b2.body);
    assert_eq!(app.count_contributions("lab", None).await, 4);
    // Concurrent retries of one request: one write.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}{PATH}", app.base),
            ada.token.clone(),
        );
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "race")
                .json(&work("9"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.expect("join").expect("sent"));
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(
        app.count_contributions("lab", None).await,
        5,
        "{statuses:?}"
    );
    // A request whose write committed but whose process died before storing the response
    // (simulated: the key is left "applied" and stale) is never applied again.
    let lost = [("idempotency-key", "lost-response")];
    app.send(Method::POST, PATH, Some(&ada.token), Some(work("6")), &lost)
        .await
        .ok(201);
    app.sql("UPDATE idempotency_keys SET state = 'applied', created_at = '2026-01-01 00:00:00' WHERE idem_key = 'lost-response'");
    let before = app.count_contributions("lab", None).await;
    let retry = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("6")), &lost)
        .await;
    retry.assert_problem(409, None);
    assert!(retry.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("response was lost")));
    assert_eq!(app.count_contributions("lab", None).await, before);
    // Keys must be sane.
    let long = "k".repeat(256);
    app.send(
        Method::POST,
        PATH,
        Some(&ada.token),
        Some(work("1")),
        &[("idempotency-key", long.as_str())],
    )
    .await
    .assert_problem(422, Some("Idempotency-Key"));
}

/// A key left `in_progress` long ago, by an earlier version that claimed keys before
/// writing and whose process died, is taken over by the next request with it. On PostgreSQL
/// the single POST's one-statement write finds the key's row there, fails whole, and goes
/// the way of a transaction, which takes the row over.
/// An answer of 16 KiB or more (here a batch of 100) is stored compressed, not as text, and a
/// retry replays it as it was.
async fn large_answers_replay_from_their_compressed_store(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let items: Vec<Value> = (1..=100).map(|i| work(&i.to_string())).collect();
    let batch = json!({ "items": items });
    let key = [("idempotency-key", "big-batch")];
    let path = format!("{PATH}/batch");
    let first = app
        .send(
            Method::POST,
            &path,
            Some(&ada.token),
            Some(batch.clone()),
            &key,
        )
        .await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.body);
    assert!(first.body.to_string().len() >= 16 * 1024);
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM idempotency_keys WHERE idem_key = 'big-batch' \
             AND response_body IS NULL AND response_zstd IS NOT NULL"
        ),
        1,
        "stored compressed"
    );
    let again = app
        .send(Method::POST, &path, Some(&ada.token), Some(batch), &key)
        .await;
    assert_eq!(again.status.as_u16(), 201);
    assert!(again.replayed());
    assert_eq!(again.body, first.body);
    assert_eq!(again.content_type, first.content_type);
    assert_eq!(app.count_contributions("lab", None).await, 100);
}

async fn stale_claims_are_taken_over(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let key = [("idempotency-key", "left-behind")];
    let first = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("3")), &key)
        .await
        .ok(201);
    app.sql(
        "UPDATE idempotency_keys SET state = 'in_progress', status_code = NULL, \
         content_type = NULL, response_body = NULL, created_at = '2026-01-01 00:00:00' \
         WHERE idem_key = 'left-behind'",
    );
    let again = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("3")), &key)
        .await;
    assert_eq!(again.status.as_u16(), 201, "{:?}", again.body);
    assert_ne!(again.body["id"], first["id"], "the request ran again");
    assert_eq!(app.count_contributions("lab", None).await, 2);
    let replay = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("3")), &key)
        .await;
    assert_eq!(
        replay.body, again.body,
        "the key now holds the second answer"
    );
    assert_eq!(app.count_contributions("lab", None).await, 2);
    app.get("/v1/networks/lab/journal/verify", Some(&ada.token))
        .await
        .ok(200);
}

/// A retry is answered as its key says, even when the write would now be refused. On
/// PostgreSQL the single POST checks the write before it looks the key up (its one statement
/// finds the key's row by inserting it), so the 403 it meets here is held back while the
/// idempotency middleware looks the key up and replays the first answer.
async fn retries_replay_what_would_now_be_refused(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let key = [("idempotency-key", "before-the-change")];
    let first = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("2")), &key)
        .await
        .ok(201);
    app.set_role("lab", &steward, &ada, "auditor").await;
    let retry = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("2")), &key)
        .await;
    assert_eq!(retry.status.as_u16(), 201, "{:?}", retry.body);
    assert_eq!(retry.body, first, "the first answer is replayed");
    assert!(retry.replayed());
    // A new request is refused, and its refusal is what its key replays.
    let new = [("idempotency-key", "after-the-change")];
    let refused = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("2")), &new)
        .await;
    refused.assert_problem(403, None);
    app.set_role("lab", &steward, &ada, "member").await;
    let again = app
        .send(Method::POST, PATH, Some(&ada.token), Some(work("2")), &new)
        .await;
    assert_eq!(again.status.as_u16(), 403);
    assert_eq!(again.body, refused.body);
    assert_eq!(app.count_contributions("lab", None).await, 1);
}

/// On PostgreSQL a single contribution, its tags, its journal entry and its request's key
/// go in as one statement: all of their rows, or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_statement_writes_all_or_nothing_on_postgres() {
    use diesel::prelude::*;
    use holoptic::db::as_member::{insert_as_member, insert_as_members, MemberWrite};
    use holoptic::db::contributions::insert_together;
    use holoptic::db::idempotency::is_key_taken;
    use holoptic::db::rows::{now, ContributionRow, IdempotencyRow, JournalRow, TagRow};
    use holoptic::db::schema::{
        contribution_tags, contributions, idempotency_keys, journal_entries, journal_seals,
        journal_unsealed, networks,
    };
    use holoptic::db::types::DbDecimal;
    use holoptic::db::AnyConnection;

    let app = TestApp::spawn(common::Backend::Postgres).await;
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let url = holoptic::db::DatabaseUrl::parse(&app.database_url).expect("url");
    let AnyConnection::Postgres(mut pg) = holoptic::db::conn::establish(&url).expect("connect")
    else {
        panic!("a PostgreSQL test database");
    };
    let network_id: String = networks::table
        .filter(networks::slug.eq("lab"))
        .select(networks::id)
        .first(&mut pg)
        .expect("network");
    let at = now();
    let rows = |n: &str| {
        let id = format!("{n}-contribution");
        let row = ContributionRow {
            id: id.clone(),
            network_id: network_id.clone(),
            agent_id: ada.id.clone(),
            recorded_by: ada.id.clone(),
            kind: "work".into(),
            quantity: DbDecimal("2.5".parse().expect("decimal")),
            unit: "hours".into(),
            // Every column its own value, so that two columns swapped show.
            skill: Some("welding".into()),
            description: "a frame".into(),
            evidence_url: Some("https://example.org/frame".into()),
            cites: None,
            corrects: None,
            occurred_at: at - chrono::Duration::hours(1),
            recorded_at: at,
        };
        let tags = vec![TagRow {
            contribution_id: id,
            tag: "design".into(),
            network_id: network_id.clone(),
        }];
        let entry = JournalRow {
            id: format!("{n}-entry"),
            network_id: network_id.clone(),
            recorded_at: at,
            actor: Some(ada.id.clone()),
            kind: "contribution.recorded".into(),
            body: "{}".into(),
        };
        (row, tags, entry)
    };
    let key = |k: &str| IdempotencyRow {
        scope: "one-statement".into(),
        idem_key: k.into(),
        request_hash: "hash".into(),
        state: "done".into(),
        status_code: Some(201),
        content_type: Some("application/json".into()),
        response_body: Some("{}".into()),
        created_at: at,
        // Never beside a text answer in a real row, but each column its own value here.
        response_zstd: Some(b"zstd".to_vec()),
    };
    let count = |pg: &mut PgConnection, n: &str| -> [i64; 5] {
        let (id, entry) = (format!("{n}-contribution"), format!("{n}-entry"));
        let queued: i64 = journal_unsealed::table
            .filter(journal_unsealed::entry_id.eq(&entry))
            .count()
            .get_result(pg)
            .expect("count");
        let sealed: i64 = journal_seals::table
            .filter(journal_seals::entry_id.eq(&entry))
            .count()
            .get_result(pg)
            .expect("count");
        [
            contributions::table
                .find(&id)
                .count()
                .get_result(pg)
                .expect("count"),
            contribution_tags::table
                .filter(contribution_tags::contribution_id.eq(&id))
                .count()
                .get_result(pg)
                .expect("count"),
            journal_entries::table
                .find(&entry)
                .count()
                .get_result(pg)
                .expect("count"),
            queued + sealed,
            idempotency_keys::table
                .filter(idempotency_keys::idem_key.eq(n))
                .count()
                .get_result(pg)
                .expect("count"),
        ]
    };

    // The key's row is there already: the last part fails, and the parts before it with it.
    diesel::insert_into(idempotency_keys::table)
        .values(key("taken"))
        .execute(&mut pg)
        .expect("key");
    let (row, tags, entry) = rows("taken");
    let err = insert_together(&mut pg, &row, &tags, &entry, Some(&key("taken")))
        .expect_err("the key is taken");
    assert!(is_key_taken(&err), "{err}");
    assert_eq!(count(&mut pg, "taken"), [0, 0, 0, 0, 1]);

    // A fresh key: every row, the entry queued for the sealer (or sealed by now).
    let (row, tags, entry) = rows("fresh");
    insert_together(&mut pg, &row, &tags, &entry, Some(&key("fresh"))).expect("written");
    assert_eq!(count(&mut pg, "fresh"), [1, 1, 1, 1, 1]);
    // Without a key and without tags: the two-part statement.
    let (row, _, entry) = rows("bare");
    insert_together(&mut pg, &row, &[], &entry, None).expect("written");
    assert_eq!(count(&mut pg, "bare"), [1, 0, 1, 1, 0]);
    // A failure in the last part (an entry whose id is taken) leaves none of the parts before
    // it: neither the contribution nor the tag given to "bare".
    let (mut row, tags, entry) = rows("bare");
    row.id = "another-contribution".into();
    insert_together(&mut pg, &row, &tags, &entry, None).expect_err("the entry's id is taken");
    let left: i64 = contributions::table
        .find("another-contribution")
        .count()
        .get_result(&mut pg)
        .expect("count");
    assert_eq!(left, 0);
    assert_eq!(count(&mut pg, "bare"), [1, 0, 1, 1, 0]);

    // The statement that also checks who writes: it writes the same rows as the one above,
    // column for column (its columns are written by hand), ...
    let (row, _, entry) = rows("member");
    assert!(insert_as_member(&mut pg, "lab", &row, &entry, Some(&key("member"))).expect("ran"));
    assert_eq!(count(&mut pg, "member"), [1, 0, 1, 1, 1]);
    let stored = |pg: &mut PgConnection, n: &str| {
        let mut c: ContributionRow = contributions::table
            .find(format!("{n}-contribution"))
            .select(ContributionRow::as_select())
            .first(pg)
            .expect("row");
        let mut e: JournalRow = journal_entries::table
            .find(format!("{n}-entry"))
            .select(JournalRow::as_select())
            .first(pg)
            .expect("entry");
        let mut k: IdempotencyRow = idempotency_keys::table
            .filter(idempotency_keys::idem_key.eq(n))
            .select(IdempotencyRow::as_select())
            .first(pg)
            .expect("key");
        (c.id, e.id, k.idem_key) = (String::new(), String::new(), String::new());
        format!("{c:?} {e:?} {k:?}")
    };
    assert_eq!(stored(&mut pg, "member"), stored(&mut pg, "fresh"));
    // ... by network id as well as by slug, and without a key (the journal entry last);
    let (row, _, entry) = rows("by-id");
    assert!(insert_as_member(&mut pg, &network_id, &row, &entry, None).expect("ran"));
    assert_eq!(count(&mut pg, "by-id"), [1, 0, 1, 1, 0]);
    // ... and writes nothing at all when the recorder is no member, an auditor, or when the
    // path names another network.
    let zed = app.agent("Zed").await;
    let (mut row, _, entry) = rows("stranger");
    row.recorded_by = zed.id.clone();
    assert!(!insert_as_member(&mut pg, "lab", &row, &entry, Some(&key("stranger"))).expect("ran"));
    assert_eq!(count(&mut pg, "stranger"), [0, 0, 0, 0, 0]);
    let (row, _, entry) = rows("elsewhere");
    assert!(!insert_as_member(&mut pg, "another-lab", &row, &entry, None).expect("ran"));
    assert_eq!(count(&mut pg, "elsewhere"), [0, 0, 0, 0, 0]);
    // Several writes in one statement (`insert_as_members`): each is written where
    // `insert_as_member` writes it, and not where it does not, the same rows column for
    // column; ...
    let write = |n: &str, network_key: &str, recorded_by: &str, k: Option<&str>| {
        let (mut row, _, entry) = rows(n);
        row.recorded_by = recorded_by.to_owned();
        MemberWrite {
            network_key: network_key.into(),
            row,
            entry,
            key: k.map(key),
        }
    };
    let group = [
        write("group-1", "lab", &ada.id, Some("group-1")),
        write("group-stranger", "lab", &zed.id, Some("group-stranger")),
        write("group-2", &network_id, &ada.id, None),
        write(
            "group-elsewhere",
            "another-lab",
            &ada.id,
            Some("group-elsewhere"),
        ),
    ];
    let written = insert_as_members(&mut pg, &group.iter().collect::<Vec<_>>()).expect("ran");
    assert_eq!(written, [true, false, true, false]);
    assert_eq!(count(&mut pg, "group-1"), [1, 0, 1, 1, 1]);
    assert_eq!(stored(&mut pg, "group-1"), stored(&mut pg, "fresh"));
    assert_eq!(count(&mut pg, "group-stranger"), [0, 0, 0, 0, 0]);
    assert_eq!(count(&mut pg, "group-2"), [1, 0, 1, 1, 0]);
    assert_eq!(count(&mut pg, "group-elsewhere"), [0, 0, 0, 0, 0]);
    // ... and nothing at all when one of its keys is taken.
    let group = [
        write("group-3", "lab", &ada.id, Some("group-3")),
        write("group-4", "lab", &ada.id, Some("taken")),
    ];
    let err =
        insert_as_members(&mut pg, &group.iter().collect::<Vec<_>>()).expect_err("a key is taken");
    assert!(is_key_taken(&err), "{err}");
    assert_eq!(count(&mut pg, "group-3"), [0, 0, 0, 0, 0]);
    assert_eq!(count(&mut pg, "group-4")[..4], [0, 0, 0, 0]);
    app.set_role("lab", &steward, &ada, "auditor").await;
    let (row, _, entry) = rows("auditor");
    assert!(!insert_as_member(&mut pg, "lab", &row, &entry, Some(&key("auditor"))).expect("ran"));
    assert_eq!(count(&mut pg, "auditor"), [0, 0, 0, 0, 0]);
    let group = [
        write("group-auditor", "lab", &ada.id, Some("group-auditor")),
        write("group-auditor-2", &network_id, &ada.id, None),
    ];
    let written = insert_as_members(&mut pg, &group.iter().collect::<Vec<_>>()).expect("ran");
    assert_eq!(written, [false, false]);
    assert_eq!(count(&mut pg, "group-auditor"), [0, 0, 0, 0, 0]);
    assert_eq!(count(&mut pg, "group-auditor-2"), [0, 0, 0, 0, 0]);
    // A key that is taken fails it whole, as above.
    app.set_role("lab", &steward, &ada, "member").await;
    let (row, _, entry) = rows("again");
    let err = insert_as_member(&mut pg, "lab", &row, &entry, Some(&key("taken")))
        .expect_err("the key is taken");
    assert!(is_key_taken(&err), "{err}");
    assert_eq!(count(&mut pg, "again")[..4], [0, 0, 0, 0]);
    app.get("/v1/networks/lab/journal/verify", Some(&ada.token))
        .await
        .ok(200);
}

/// A path's network is remembered by single writes (on PostgreSQL they then go in one round
/// trip), but never trusted: when the slug names another network, the write lands there.
async fn a_slug_given_to_another_network_is_followed(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let first = app.post(PATH, Some(&ada.token), work("1")).await.ok(201);
    let again = app.post(PATH, Some(&ada.token), work("2")).await.ok(201);
    assert_eq!(again["network_id"], first["network_id"]);
    app.sql("UPDATE networks SET slug = 'old-lab' WHERE slug = 'lab'");
    let steward = app.network("lab", json!({})).await;
    // Not a member of the new "lab": refused, and nothing is written to the old one.
    app.post(PATH, Some(&ada.token), work("3"))
        .await
        .assert_problem(403, None);
    app.post("/v1/networks/lab/members", Some(&ada.token), json!({}))
        .await
        .ok(201);
    let moved = app.post(PATH, Some(&ada.token), work("4")).await.ok(201);
    assert_ne!(moved["network_id"], first["network_id"]);
    assert_eq!(
        app.count_contributions("old-lab", Some(&ada.token)).await,
        2
    );
    assert_eq!(
        app.count_contributions("lab", Some(&steward.token)).await,
        1
    );
}

/// A keyed write is one database task: the key's lookup rides on the write's task (no hop
/// of its own), and a retry is one task that stops at the lookup.
async fn keyed_writes_are_one_database_task(backend: common::Backend) {
    // No webhook sender polling in the background: only the requests run database tasks.
    let app = TestApp::spawn_configured(backend, |c| c.webhook_poll_ms = 3_600_000).await;
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let tasks = || app.metric("holoptic_db_tasks_total");
    let key = [("idempotency-key", "one-task")];
    let mut before = tasks().await;
    for (body, status) in [(work("3"), 201), (work("3"), 201), (work("4"), 422)] {
        let res = app
            .send(Method::POST, PATH, Some(&ada.token), Some(body), &key)
            .await;
        assert_eq!(res.status.as_u16(), status, "{:?}", res.body);
        let after = tasks().await;
        assert_eq!(after - before, 1, "database tasks for one keyed request");
        before = after;
    }
    assert_eq!(app.count_contributions("lab", None).await, 1);
    // Bodies refused before any database work (here by the JSON extractor, before the
    // handler): the key is looked up when the answer would be stored. The earlier request's
    // key refuses another body as a mismatch...
    let malformed = json!({ "kind": "work" });
    let res = app
        .send(
            Method::POST,
            PATH,
            Some(&ada.token),
            Some(malformed.clone()),
            &key,
        )
        .await;
    res.assert_problem(422, None);
    assert!(
        res.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("different request")),
        "{:?}",
        res.body
    );
    // ...and a new key stores the refusal, which a retry replays.
    let fresh = [("idempotency-key", "refused-early")];
    let first = app
        .send(
            Method::POST,
            PATH,
            Some(&ada.token),
            Some(malformed.clone()),
            &fresh,
        )
        .await;
    assert!(first.status.is_client_error(), "{first:?}");
    assert!(!first.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("different request")));
    let again = app
        .send(
            Method::POST,
            PATH,
            Some(&ada.token),
            Some(malformed),
            &fresh,
        )
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.headers.contains_key("idempotent-replayed"));
    assert_eq!(app.count_contributions("lab", None).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_writes_are_one_database_task_on_sqlite() {
    keyed_writes_are_one_database_task(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_writes_are_one_database_task_on_postgres() {
    keyed_writes_are_one_database_task(common::Backend::Postgres).await;
}

async fn bad_input_writes_nothing(app: TestApp) {
    app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let t = Some(ada.token.as_str());
    let with = |k: &str, v: Value| {
        let mut b = work("1");
        b[k] = v;
        b
    };
    let future = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let cases = [
        (with("quantity", json!("0")), "quantity"),
        (with("quantity", json!("-1")), "quantity"),
        (with("quantity", json!("10001")), "quantity"),
        (with("quantity", json!("99999999999999999999")), "quantity"),
        (with("quantity", json!("1e3")), "quantity"),
        (with("quantity", json!("1,5")), "quantity"),
        (with("quantity", json!("abc")), "quantity"),
        (with("quantity", json!(1.5)), "quantity"),
        (with("quantity", json!("0.0000000000000000001")), "quantity"),
        (with("kind", json!("dance")), "kind"),
        (with("unit", json!("kg")), "unit"),
        (
            json!({ "kind": "cash", "quantity": "1.001", "unit": "EUR", "occurred_at": "2026-01-01T00:00:00Z" }),
            "quantity",
        ),
        (
            json!({ "kind": "cash", "quantity": "1", "unit": "USD", "occurred_at": "2026-01-01T00:00:00Z" }),
            "unit",
        ),
        (
            json!({ "kind": "citation", "quantity": "1", "unit": "each", "occurred_at": "2026-01-01T00:00:00Z" }),
            "cites",
        ),
        (with("cites", json!(uuid::Uuid::now_v7())), "cites"),
        (with("corrects", json!(uuid::Uuid::now_v7())), "corrects"),
        (with("description", json!("x".repeat(4001))), "description"),
        (with("skill", json!("Has Spaces")), "skill"),
        (with("tags", json!(["ok", "ok"])), "tags[1]"),
        (
            with(
                "tags",
                json!((0..17).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            ),
            "tags",
        ),
        (with("evidence_url", json!("ftp://x")), "evidence_url"),
        (
            with(
                "evidence_url",
                json!(format!("https://x.org/{}", "a".repeat(2100))),
            ),
            "evidence_url",
        ),
        (with("occurred_at", json!(future)), "occurred_at"),
        (with("occurred_at", json!("last tuesday")), "occurred_at"),
        (with("agent_id", json!("not-a-uuid")), "agent_id"),
        (with("surprise", json!(true)), "surprise"),
        (
            json!({ "kind": "work", "unit": "hours", "occurred_at": "2026-01-01T00:00:00Z" }),
            "quantity",
        ),
    ];
    for (body, field) in cases {
        app.post(PATH, t, body)
            .await
            .assert_problem(422, Some(field));
    }
    app.send_raw(
        Method::POST,
        PATH,
        t,
        "application/json",
        b"{\"kind\": ".to_vec(),
    )
    .await
    .assert_problem(400, None);
    app.send_raw(
        Method::POST,
        PATH,
        t,
        "application/xml",
        b"<work/>".to_vec(),
    )
    .await
    .assert_problem(415, None);
    let huge = vec![b' '; 5 * 1024 * 1024];
    app.send_raw(Method::POST, PATH, t, "application/json", huge)
        .await
        .assert_problem(413, None);
    app.get(&format!("{PATH}/not-a-uuid"), None)
        .await
        .assert_problem(422, Some("id"));
    app.get(&format!("{PATH}/{}", uuid::Uuid::now_v7()), None)
        .await
        .assert_problem(404, None);
    app.post("/v1/networks/nowhere/contributions", t, work("1"))
        .await
        .assert_problem(404, None);
    assert_eq!(
        app.count_contributions("lab", None).await,
        0,
        "no bad request wrote anything"
    );
}

async fn cross_network_access_refused(app: TestApp) {
    app.network("lab", json!({})).await;
    let steward_b = app
        .network(
            "other",
            json!({ "visibility": "members", "join_policy": "invite" }),
        )
        .await;
    let ada = app.join("lab", "Ada").await;
    let b_member = {
        let invite = app
            .post(
                "/v1/networks/other/invites",
                Some(&steward_b.token),
                json!({}),
            )
            .await
            .ok(201);
        let joined = app
            .post(
                "/v1/networks/other/members",
                None,
                json!({ "display_name": "Bea", "invite_code": invite["code"] }),
            )
            .await
            .ok(201);
        let key = joined["api_key"].as_str().expect("key").to_owned();
        app.token(&key).await
    };
    let in_b = app
        .post(
            "/v1/networks/other/contributions",
            Some(&b_member),
            work("2"),
        )
        .await
        .ok(201);
    let id = in_b["id"].as_str().expect("id");
    // Ada (a member of lab only) cannot read, write or validate in other.
    app.get("/v1/networks/other/contributions", Some(&ada.token))
        .await
        .assert_problem(403, None);
    app.get(
        &format!("/v1/networks/other/contributions/{id}"),
        Some(&ada.token),
    )
    .await
    .assert_problem(403, None);
    app.post(
        "/v1/networks/other/contributions",
        Some(&ada.token),
        work("1"),
    )
    .await
    .assert_problem(403, None);
    app.post(
        &format!("/v1/networks/other/contributions/{id}/validations"),
        Some(&ada.token),
        json!({ "decision": "approve" }),
    )
    .await
    .assert_problem(403, None);
    // Nor reach it through her own network's paths.
    app.get(&format!("{PATH}/{id}"), Some(&ada.token))
        .await
        .assert_problem(404, None);
    app.post(
        &format!("{PATH}/{id}/validations"),
        Some(&ada.token),
        json!({ "decision": "approve" }),
    )
    .await
    .assert_problem(404, None);
    let mut cite = json!({ "kind": "citation", "quantity": "1", "unit": "each", "occurred_at": "2026-01-01T00:00:00Z" });
    cite["cites"] = json!(id);
    app.post(PATH, Some(&ada.token), cite)
        .await
        .assert_problem(422, Some("cites"));
    let still = app
        .get(
            &format!("/v1/networks/other/contributions/{id}"),
            Some(&b_member),
        )
        .await
        .ok(200);
    assert_eq!(still["approvals"], 0);
    assert_eq!(still["status"], "pending");
}

async fn csv_import_dry_run_then_all_or_nothing(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let path = "/v1/networks/lab/imports/contributions";
    let future = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let bad = format!(
        "kind,quantity,unit,occurred_at,agent_id,tags,description\n\
         work,2.5,hours,2025-03-01T10:00:00Z,{a},design;cnc,Frame\n\
         work,1,hours,{future},{a},,Too early\n\
         material,3,hours,2025-03-02T10:00:00Z,{a},,Wrong unit\n\
         cash,10,EUR,2025-03-03T10:00:00Z,{a},,Seed money\n",
        a = ada.id
    );
    let send = |body: String, q: &'static str, token: String| {
        let (client, url) = (app.client.clone(), format!("{}{path}{q}", app.base));
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .expect("sent");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, dry) = send(bad.clone(), "", steward.token.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["rows"], 4);
    let lines: Vec<(i64, String)> = dry["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().expect("line"),
                e["field"].as_str().expect("f").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![(3, "occurred_at".to_owned()), (4, "unit".to_owned())]
    );
    let (status, refused) = send(bad, "?dry_run=false", steward.token.clone()).await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["imported"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        app.count_contributions("lab", None).await,
        0,
        "all or nothing"
    );
    let good = format!(
        "kind,quantity,unit,occurred_at,agent_id,tags,description\n\
         work,2.5,hours,2025-03-01T10:00:00Z,{a},design;cnc,Frame\n\
         cash,10,EUR,2025-03-03T10:00:00Z,{a},,\"Seed money, first round\"\n",
        a = ada.id
    );
    let (status, done) = send(good.clone(), "?dry_run=false", steward.token.clone()).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["imported"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        done["imported"][0]["tags"],
        json!(["cnc", "design"]),
        "tags come back sorted"
    );
    assert_eq!(
        done["imported"][1]["description"],
        "Seed money, first round"
    );
    assert_eq!(app.count_contributions("lab", None).await, 2);
    let (status, _) = send(good.clone(), "?dry_run=false", ada.token.clone()).await;
    assert_eq!(status, 403, "stewards only");
    let r = app
        .send_raw(
            Method::POST,
            path,
            Some(&steward.token),
            "application/json",
            good.into_bytes(),
        )
        .await;
    r.assert_problem(415, None);
    let (status, unknown) = send("kind,qty\nwork,1\n".into(), "", steward.token.clone()).await;
    assert_eq!((status, unknown["field"].clone()), (422, json!("header")));
    assert_eq!(app.count_contributions("lab", None).await, 2);
}

/// A fresh, migrated PostgreSQL database and a connection to it, opened as the pool opens
/// its connections.
fn migrated_postgres() -> (common::TestDb, holoptic::db::conn::AnyConnection) {
    migrated(common::Backend::Postgres)
}

fn migrated(backend: common::Backend) -> (common::TestDb, holoptic::db::conn::AnyConnection) {
    use holoptic::db::{self, conn::establish, DatabaseUrl};
    let (db, url) = common::TestDb::create(backend);
    let mut conn = establish(&DatabaseUrl::parse(&url).expect("url")).expect("connect");
    db::migrate(&mut conn).expect("migrate");
    (db, conn)
}

#[derive(diesel::QueryableByName)]
struct Plans {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    statements: i64,
}

/// The page of `network`'s contributions after `after` as a computation that counts validated
/// contributions reads it at `at` (on PostgreSQL, one query with the outcomes joined).
fn read_page(
    conn: &mut holoptic::db::conn::AnyConnection,
    network: &str,
    at: chrono::NaiveDateTime,
    after: Option<&str>,
    limit: i64,
) -> diesel::QueryResult<Vec<holoptic::db::contributions::Counted>> {
    use holoptic::db::contributions::{snapshot_page, PageBounds, PageFacts};
    let page = PageBounds {
        network_id: network,
        cutoff: at,
        as_of: at,
        after: after.unwrap_or(""),
        upto: None,
        limit,
        facts: PageFacts::All,
    };
    snapshot_page(
        conn,
        &page,
        &[holoptic::domain::contribution::Status::Validated],
    )
}

/// On PostgreSQL the pages a computation reads are planned for their own network on every
/// run. A prepared statement that diesel caches gets a generic plan after five runs, chosen
/// without knowing the network: for a page of one network's contributions it scanned the
/// primary key and filtered by network, walking every later contribution of every other
/// network.
#[test]
fn postgres_plans_each_page_for_its_network() {
    use diesel::RunQueryDsl;

    let (_db, mut conn) = migrated_postgres();
    let now = chrono::Utc::now().naive_utc();
    for _ in 0..8 {
        let page = read_page(&mut conn, "n1", now, Some("c1"), 5000).expect("page");
        assert!(page.is_empty());
    }
    // Statements diesel keeps prepared, with how often each ran on a generic plan.
    let plans: Plans = diesel::sql_query(
        "SELECT coalesce(sum(generic_plans), 0)::bigint AS generic, count(*) AS statements \
         FROM pg_prepared_statements WHERE statement LIKE '%FROM (\"contributions\"%'",
    )
    .get_result(&mut conn)
    .expect("prepared statements");
    assert_eq!(
        plans.generic, 0,
        "{} cached page statement(s) ran on a generic plan",
        plans.statements
    );
}

/// Inserts `n` contributions with validated outcomes, ids `{prefix}-00000001` on, in the
/// network `network` (an SQL expression of `i`, the row's number). Rows only: the networks and
/// agents they name do not exist, which does not matter to how pages are read.
fn seed_rows(conn: &mut holoptic::db::conn::AnyConnection, prefix: &str, network: &str, n: u32) {
    use diesel::RunQueryDsl;
    for sql in [
        "SET session_replication_role = replica".to_owned(),
        format!(
            "INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, quantity, \
             unit, description, occurred_at, recorded_at) \
             SELECT '{prefix}-' || lpad(i::text, 8, '0'), {network}, 'a', 'a', 'work', 1, \
             'hours', 'x', now(), now() FROM generate_series(1, {n}) i"
        ),
        format!(
            "INSERT INTO contribution_outcomes (contribution_id, status, decided_at, network_id) \
             SELECT '{prefix}-' || lpad(i::text, 8, '0'), 'validated', now(), {network} \
             FROM generate_series(1, {n}) i"
        ),
        "SET session_replication_role = origin".to_owned(),
    ] {
        diesel::sql_query(&sql).execute(conn).expect("seed");
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Rows this transaction has read from `table` so far: returned by sequential scans, fetched
/// by bitmap scans (both counted on the table), and fetched through each of its indexes
/// (counted on the index).
fn rows_read(conn: &mut holoptic::db::conn::AnyConnection, table: &str) -> i64 {
    use diesel::RunQueryDsl;
    diesel::sql_query(format!(
        "SELECT (pg_stat_get_xact_tuples_returned(t) + pg_stat_get_xact_tuples_fetched(t) \
         + coalesce((SELECT sum(pg_stat_get_xact_tuples_fetched(indexrelid)) FROM pg_index \
         WHERE indrelid = t), 0))::bigint AS n FROM (SELECT '{table}'::regclass::oid AS t) r"
    ))
    .get_result::<Count>(conn)
    .expect("counter")
    .n
}

/// A page of `network`'s contributions read as a computation reads it (on PostgreSQL, in
/// index order), every one of them validated, with the rows PostgreSQL read for it from the
/// contributions, the outcomes and the tags.
fn validated_page(
    conn: &mut holoptic::db::conn::AnyConnection,
    network: &str,
    after: Option<&str>,
    limit: i64,
) -> (Vec<holoptic::db::contributions::Counted>, [i64; 3]) {
    use holoptic::db::contributions::in_id_order;
    let now = chrono::Utc::now().naive_utc();
    let read = in_id_order(conn, |c| {
        let page = read_page(c, network, now, after, limit)?;
        let read = [
            "contributions",
            "contribution_outcomes",
            "contribution_tags",
        ]
        .map(|table| rows_read(c, table));
        Ok::<_, diesel::result::Error>((page, read))
    })
    .expect("page");
    assert!(read
        .0
        .iter()
        .all(|c| c.status == holoptic::domain::contribution::Status::Validated));
    read
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// The session's value of PostgreSQL's setting `name`.
fn setting(conn: &mut holoptic::db::conn::AnyConnection, name: &str) -> String {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT current_setting($1) AS value")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Setting>(conn)
        .expect("setting")
        .value
}

/// Pages of contributions are read in index order on PostgreSQL even when its statistics do
/// not know the table's rows (autovacuum off, or not yet run after a burst of writes): then it
/// planned each page as a scan of the whole network and a sort, or a nested loop over every
/// outcome, so a computation took time in the square of the network's size. The planner's
/// settings are put back afterwards, inside a caller's transaction too.
#[test]
fn postgres_reads_pages_in_index_order_without_statistics() {
    use diesel::{Connection, RunQueryDsl};
    use holoptic::db::contributions::in_id_order;

    let (_db, mut conn) = migrated_postgres();
    for table in ["contributions", "contribution_outcomes"] {
        diesel::sql_query(format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        ))
        .execute(&mut conn)
        .expect("no autovacuum");
    }
    // Two networks interleaved in id order, never analyzed.
    seed_rows(&mut conn, "c", "'n' || (i % 2)", 30_000);
    let now = chrono::Utc::now().naive_utc();
    // A page of 100 of n1's 15,000, from the middle of its history.
    let read = |c: &mut holoptic::db::conn::AnyConnection| {
        let page = read_page(c, "n1", now, Some("c-00010000"), 100)?;
        let read = (
            rows_read(c, "contributions"),
            rows_read(c, "contribution_outcomes"),
        );
        Ok::<_, diesel::result::Error>((page, read))
    };
    let (page, (contributions, outcomes)) = in_id_order(&mut conn, read).expect("page");
    assert_eq!(page.len(), 100);
    assert!(
        contributions <= 1_000 && outcomes <= 1_000,
        "a page of 100 read {contributions} contributions and {outcomes} outcomes"
    );
    let sort = |conn: &mut holoptic::db::conn::AnyConnection| setting(conn, "enable_sort");
    assert_eq!(sort(&mut conn), "on", "put back after the read");
    conn.transaction(|c| {
        in_id_order(c, read)?;
        assert_eq!(sort(c), "on", "put back inside the caller's transaction");
        Ok::<_, diesel::result::Error>(())
    })
    .expect("transaction");
}

/// A page's plan starts no parallel workers on PostgreSQL: they start afresh for every page,
/// and take the cores the pages are weighed on (with the outcomes joined, the second half of
/// a 1M network's pages was planned as a parallel walk of the primary key, and a preview took
/// 2.5 s instead of 1.6). The session's setting is put back afterwards.
#[test]
fn postgres_pages_start_no_parallel_workers() {
    use holoptic::db::contributions::in_id_order;

    let (_db, mut conn) = migrated_postgres();
    let workers =
        |c: &mut holoptic::db::conn::AnyConnection| setting(c, "max_parallel_workers_per_gather");
    let before = workers(&mut conn);
    assert_ne!(before, "0", "PostgreSQL's default allows parallel workers");
    let inside = in_id_order(&mut conn, |c| {
        read_page(c, "n1", chrono::Utc::now().naive_utc(), None, 100)?;
        Ok::<_, diesel::result::Error>(workers(c))
    })
    .expect("page");
    assert_eq!(inside, "0");
    assert_eq!(workers(&mut conn), before);
}

/// A network's first page on PostgreSQL reads its outcomes from the network's first
/// contribution on, not every outcome whose id sorts before it: beside 1.2 million outcomes of
/// other networks, the first page of a 52-week preview took 590 ms instead of 35.
#[test]
fn postgres_first_page_skips_other_networks_outcomes() {
    use diesel::RunQueryDsl;

    let (_db, mut conn) = migrated_postgres();
    seed_rows(&mut conn, "a", "'earlier'", 20_000);
    seed_rows(&mut conn, "b", "'later'", 100);
    diesel::sql_query("ANALYZE")
        .execute(&mut conn)
        .expect("analyze");
    let (page, [_, returned, _]) = validated_page(&mut conn, "later", None, 5000);
    assert_eq!(page.len(), 100);
    assert!(
        returned <= 200,
        "the first page read {returned} outcomes for its 100 contributions"
    );
}

/// A page reads its own network's rows only, on PostgreSQL: ids are ordered by time, so with
/// networks writing at the same time a page's id range holds every network's rows. The merge
/// join walked the outcomes' primary key through all of them, and later pages walked the
/// contributions' too (here one network in 50: about 5,000 rows of each for a page of 100).
#[test]
fn postgres_pages_read_only_their_networks_rows() {
    use diesel::RunQueryDsl;

    let (_db, mut conn) = migrated_postgres();
    seed_rows(&mut conn, "c", "'n' || (i % 50)", 50_000);
    for sql in [
        "SET session_replication_role = replica",
        // From the series, not from the contributions: a scan of them here would count as
        // rows read by the page (PostgreSQL's per-transaction counts may hold a backend's
        // earlier transactions until they are flushed).
        "INSERT INTO contribution_tags (contribution_id, tag, network_id) \
         SELECT 'c-' || lpad(i::text, 8, '0'), 'tagged', 'n' || (i % 50) \
         FROM generate_series(1, 50000) i",
        "SET session_replication_role = origin",
    ] {
        diesel::sql_query(sql).execute(&mut conn).expect("tags");
    }
    diesel::sql_query("ANALYZE")
        .execute(&mut conn)
        .expect("analyze");
    for after in [None, Some("c-00020000")] {
        let (page, read) = validated_page(&mut conn, "n7", after, 100);
        assert_eq!(page.len(), 100);
        assert!(page.iter().all(|c| c.tags == ["tagged"]));
        assert!(
            read.iter().all(|&rows| rows <= 300),
            "a page of 100 after {after:?} read {read:?} contributions, outcomes and tags"
        );
    }
}

/// On PostgreSQL a page's contributions are read from the `(network_id, id)` index alone once
/// the table's pages are all-visible (as vacuum leaves them): the index carries every fact a
/// page selects or filters on, so no row of the table is visited. Without those facts in the
/// index, a page of 1,000 visited the table for each of its rows.
#[test]
fn postgres_pages_are_read_from_the_index_alone() {
    use diesel::RunQueryDsl;
    use holoptic::db::contributions::in_id_order;

    let (_db, mut conn) = migrated_postgres();
    seed_rows(&mut conn, "c", "'n' || (i % 2)", 4_000);
    diesel::sql_query("VACUUM ANALYZE contributions, contribution_outcomes")
        .execute(&mut conn)
        .expect("vacuum");
    let (page, visited) = in_id_order(&mut conn, |c| {
        let before = rows_read(c, "contributions");
        let page = read_page(c, "n1", chrono::Utc::now().naive_utc(), None, 1_000)?;
        Ok::<_, diesel::result::Error>((page, rows_read(c, "contributions") - before))
    })
    .expect("page");
    assert_eq!(page.len(), 1_000);
    assert!(page
        .iter()
        .all(|c| c.unit == "hours" && c.kind == holoptic::domain::contribution::Kind::Work));
    assert_eq!(
        visited, 0,
        "a page of 1,000 visited {visited} rows of the table"
    );
}

/// On SQLite a page's outcomes and tags are read from the network's range of a covering
/// `(network_id, contribution_id, ...)` index, not from the range of every network's rows
/// between the page's first and last id. The statement the page really
/// ran is captured and its plan asked for.
#[test]
fn sqlite_pages_read_only_their_networks_outcomes_and_tags() {
    use diesel::connection::{Connection, InstrumentationEvent};
    use diesel::RunQueryDsl;
    use holoptic::db::conn::AnyConnection;
    use std::sync::{Arc, Mutex};

    let (_db, mut conn) = migrated(common::Backend::Sqlite);
    for sql in [
        "PRAGMA foreign_keys = OFF",
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000) \
         INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, quantity, unit, \
         description, occurred_at, recorded_at) SELECT printf('c-%08d', i), 'n' || (i % 50), \
         'a', 'a', 'work', '1', 'hours', 'x', '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM s",
        "INSERT INTO contribution_outcomes (contribution_id, status, decided_at, network_id) \
         SELECT id, 'validated', '2026-01-01 00:00:00', network_id FROM contributions",
        "INSERT INTO contribution_tags (contribution_id, tag, network_id) \
         SELECT id, 'tagged', network_id FROM contributions",
        "ANALYZE",
    ] {
        diesel::sql_query(sql).execute(&mut conn).expect("seed");
    }
    let ran = Arc::new(Mutex::new(Vec::<String>::new()));
    let AnyConnection::Sqlite(lite) = &mut conn else {
        panic!("an SQLite connection")
    };
    let log = Arc::clone(&ran);
    lite.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            log.lock().expect("log").push(query.to_string());
        }
    });
    let now = chrono::Utc::now().naive_utc();
    let page = read_page(&mut conn, "n7", now, None, 100).expect("page");
    assert_eq!(page.len(), 40);
    assert!(page
        .iter()
        .all(|c| c.status == holoptic::domain::contribution::Status::Validated));
    assert!(page.iter().all(|c| c.tags == ["tagged"]));
    let ran = ran.lock().expect("log").clone();
    #[derive(diesel::QueryableByName)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    for table in ["contribution_outcomes", "contribution_tags"] {
        let read = ran
            .iter()
            .find(|q| q.starts_with(&format!("SELECT `{table}`.")))
            .unwrap_or_else(|| panic!("no {table} read among {ran:#?}"));
        let sql = read.split(" -- binds:").next().unwrap_or_default();
        let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<Step>(&mut conn)
            .expect("plan")
            .into_iter()
            .map(|s| s.detail)
            .collect();
        let by_network = format!(
            "USING COVERING INDEX {table}_network (network_id=? AND contribution_id>? AND contribution_id<?)"
        );
        assert!(
            plan.iter().any(|d| d.contains(&by_network)),
            "{sql}: {plan:?}"
        );
    }
}

/// `GET /contributions` far back in one network's history reads that network's rows, not
/// every network's in between: at PostgreSQL's default `random_page_cost` the page was a
/// backward walk of the primary key filtered by network (here one network in 50: about
/// 1,000 rows for a page of 20).
#[test]
fn postgres_lists_old_pages_by_network() {
    use diesel::{Connection, RunQueryDsl};
    use holoptic::db::contributions::{list, ListFilter};

    let (_db, mut conn) = migrated_postgres();
    seed_rows(&mut conn, "c", "'n' || (i % 50)", 50_000);
    diesel::sql_query("ANALYZE")
        .execute(&mut conn)
        .expect("analyze");
    let filter = ListFilter {
        before: Some("c-00002000".into()),
        ..ListFilter::default()
    };
    let (rows, read) = conn
        .transaction(|c| {
            let rows = list(c, "n7", &filter, 20)?;
            Ok::<_, diesel::result::Error>((rows, rows_read(c, "contributions")))
        })
        .expect("list");
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.network_id == "n7"));
    assert!(read <= 100, "a page of 20 read {read} contributions");
}

/// Decimals read from PostgreSQL's binary `NUMERIC` (read straight into a `Decimal` without
/// rust_decimal's conversion where they fit one) are the values written, normalised, whether
/// the column pads them to 18 decimals as `quantity` does or not; and what does not fit a
/// `Decimal` is refused as before, not misread.
#[test]
fn postgres_numerics_read_back_exactly() {
    use diesel::dsl::sql;
    use diesel::RunQueryDsl;
    use holoptic::db::types::{DbDecimal, Dec};
    use rust_decimal::Decimal;

    let (_db, mut conn) = migrated_postgres();
    let read = |conn: &mut holoptic::db::conn::AnyConnection, expr: &str| {
        diesel::select(sql::<Dec>(expr)).get_result::<DbDecimal>(conn)
    };
    for text in [
        "0",
        "1",
        "-1",
        "2.5",
        "0.000000000000000001",
        "-0.000000000000000001",
        "12345678.9",
        "9999999999.999999999999999999",
        "1000000000",
        "0.1000",
        "123456789012345678901234567",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "0.0000000000000000000000000001",
    ] {
        let want = text.parse::<Decimal>().expect("decimal").normalize();
        for cast in ["NUMERIC", "NUMERIC(40,18)", "NUMERIC(60,28)"] {
            let Ok(got) = read(&mut conn, &format!("CAST('{text}' AS {cast})")) else {
                // PostgreSQL itself refuses more than 22 whole digits in NUMERIC(40,18).
                assert_eq!(cast, "NUMERIC(40,18)", "{text} as {cast}");
                continue;
            };
            // And a scale of 18 rounds away the decimals past it.
            if cast == "NUMERIC(40,18)" && want.scale() > 18 {
                continue;
            }
            assert_eq!(
                (got.0, got.0.scale(), got.0.to_string()),
                (want, want.scale(), want.to_string()),
                "{text} as {cast}"
            );
        }
    }
    // A quantity as stored: NUMERIC(28,18), padded to 18 decimals.
    let got = read(&mut conn, "CAST('2.5' AS NUMERIC(28,18))").expect("read");
    assert_eq!((got.0.to_string(), got.0.scale()), ("2.5".to_owned(), 1));
    // Too large, or not a number: refused.
    for expr in [
        "CAST('79228162514264337593543950336' AS NUMERIC)",
        "CAST('NaN' AS NUMERIC)",
        "CAST('Infinity' AS NUMERIC)",
    ] {
        assert!(read(&mut conn, expr).is_err(), "{expr}");
    }
}

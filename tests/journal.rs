//! The audit journal: every change recorded in its own transaction, sealed into a hash
//! chain, verified (including tampering done directly in the database), and checkpoints
//! signed with a key anyone can check offline.

mod common;

use common::{work, Backend, TestApp, TestDb};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde_json::{json, Value};

on_both_backends!(
    every_change_is_journaled_and_verifies,
    tampering_is_caught,
    checkpoints_verify_offline,
    a_long_tail_is_sealed_in_chunks,
    a_sealing_pass_ends_where_the_queue_ended,
    a_batch_is_one_entry_and_pages_stop_at_a_mebibyte
);

const N: &str = "/v1/networks/lab";

/// A little of everything: network, members, work, validation, a vote, a distribution, a payout.
async fn activity(app: &TestApp) -> common::Member {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    let c = app.work("lab", &ada, "2").await;
    let id = c["id"].as_str().expect("id");
    app.post(
        &format!("{N}/contributions/{id}/validations"),
        Some(&steward.token),
        json!({ "decision": "approve" }),
    )
    .await
    .ok(201);
    app.adopt(
        "lab",
        &steward,
        json!({ "title": "t", "preset": "sourcecred_balanced" }),
        &[&steward, &ada],
    )
    .await;
    let i = app
        .post(&format!("{N}/income"), Some(&steward.token), json!({ "amount": "10", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
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
    app.post(
        &format!(
            "{N}/distributions/{}/lines/1/payment",
            d["id"].as_str().expect("id")
        ),
        Some(&steward.token),
        json!({ "reference": "tx-1" }),
    )
    .await
    .ok(201);
    let mut batch = Vec::new();
    for h in ["1", "2", "3"] {
        batch.push(work(h));
    }
    app.post(
        &format!("{N}/contributions/batch"),
        Some(&ada.token),
        json!({ "items": batch }),
    )
    .await
    .ok(201);
    steward
}

async fn every_change_is_journaled_and_verifies(app: TestApp) {
    let steward = activity(&app).await;
    let page = app
        .get(&format!("{N}/journal?limit=200"), None)
        .await
        .ok(200);
    let kinds: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    for k in [
        "network.created",
        "member.joined",
        "contribution.recorded",
        "contribution.validation",
        "contribution.decided",
        "proposal.created",
        "proposal.vote",
        "proposal.decided",
        "equation.adopted",
        "income.recorded",
        "distribution.committed",
        "payout.marked",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(count("contribution.recorded"), 1, "the one recorded alone");
    assert_eq!(count("contribution.batch_recorded"), 1, "one for the batch");
    let batch = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["kind"] == "contribution.batch_recorded")
        .expect("the batch's entry");
    let hours: Vec<&Value> = batch["body"]["items"]
        .as_array()
        .expect("the batch's contributions")
        .iter()
        .map(|c| &c["quantity"])
        .collect();
    assert_eq!(hours, [&json!("1"), &json!("2"), &json!("3")], "{batch}");
    let seqs: Vec<i64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(seqs.len()).expect("n")).collect::<Vec<_>>(),
        "gapless"
    );
    assert_eq!(page["items"][1]["prev_hash"], page["items"][0]["hash"]);
    let v = app.get(&format!("{N}/journal/verify"), None).await.ok(200);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["unsealed"], 0);
    assert_eq!(v["entries"], json!(seqs.len()));
    // Filters and paging.
    let votes = app
        .get(&format!("{N}/journal?kind=proposal.vote"), None)
        .await
        .ok(200);
    assert_eq!(votes["items"].as_array().map(Vec::len), Some(2));
    let first = app.get(&format!("{N}/journal?limit=3"), None).await.ok(200);
    let next = first["next_after_seq"].as_i64().expect("more");
    let second = app
        .get(&format!("{N}/journal?limit=3&after_seq={next}"), None)
        .await
        .ok(200);
    assert_eq!(second["items"][0]["seq"], next + 1);
    app.get(&format!("{N}/journal?after_seq=-1"), None)
        .await
        .assert_problem(422, Some("after_seq"));
    // A NUL in a filter (found by schemathesis: a 500 on PostgreSQL, whose text cannot hold
    // it) is a 422 naming the parameter, for every query.
    app.get(&format!("{N}/journal?kind=%C2%B8%00%7D&after_seq=1"), None)
        .await
        .assert_problem(422, Some("kind"));
    app.get(&format!("{N}/contributions?tag=a%00b"), None)
        .await
        .assert_problem(422, Some("tag"));
    // In the path too, and in a URL field of a body.
    app.get(&format!("{N}%00/journal"), None)
        .await
        .assert_problem(422, Some("path"));
    let mut item = work("1");
    item["evidence_url"] = json!("https://example.org/a\u{0}b");
    app.post(&format!("{N}/contributions"), Some(&steward.token), item)
        .await
        .assert_problem(422, Some("evidence_url"));
}

async fn tampering_is_caught(app: TestApp) {
    activity(&app).await;
    assert_eq!(
        app.get(&format!("{N}/journal/verify"), None).await.ok(200)["ok"],
        true
    );
    // The database itself refuses edits and deletions of the journal.
    for sql in [
        "UPDATE journal_entries SET kind = 'x'",
        "DELETE FROM journal_seals",
        "UPDATE contributions SET quantity = quantity",
    ] {
        let refused = app.try_sql(sql);
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("append-only")),
            "{sql}: {refused:?}"
        );
    }
    unlock(&app, "journal_entries");
    unlock(&app, "journal_seals");
    let bad = |v: &Value| (v["ok"].clone(), v["first_bad_entry"]["seq"].clone());
    // Edit the body of entry 3.
    app.sql("UPDATE journal_entries SET body = '{\"forged\":true}' WHERE id = (SELECT entry_id FROM journal_seals WHERE seq = 3)");
    let v = app.get(&format!("{N}/journal/verify"), None).await.ok(200);
    assert_eq!(bad(&v), (json!(false), json!(3)), "{v}");
    assert!(v["first_bad_entry"]["problem"]
        .as_str()
        .is_some_and(|p| p.contains("edited")));
}

/// Lets the test edit an append-only table directly, as an attacker with database access could.
fn unlock(app: &TestApp, table: &str) {
    match app.backend {
        Backend::Sqlite => {
            app.sql(&format!("DROP TRIGGER {table}_no_update"));
            app.sql(&format!("DROP TRIGGER {table}_no_delete"));
        }
        Backend::Postgres => app.sql(&format!(
            "ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"
        )),
    }
}

async fn checkpoints_verify_offline(app: TestApp) {
    let steward = activity(&app).await;
    let anyone = app.agent("x").await;
    app.post(&format!("{N}/checkpoints"), Some(&anyone.token), json!({}))
        .await
        .assert_problem(403, None);
    let cp = app
        .post(&format!("{N}/checkpoints"), Some(&steward.token), json!({}))
        .await
        .ok(201);
    let key = app.get("/v1/keys/checkpoint", None).await.ok(200);
    assert_eq!(key["algorithm"], "Ed25519");
    assert_eq!(cp["key_id"], key["key_id"]);
    let pk_bytes: [u8; 32] = hex::decode(key["public_key"].as_str().expect("pk"))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let pk = VerifyingKey::from_bytes(&pk_bytes).expect("key");
    let sig_bytes: [u8; 64] = hex::decode(cp["signature"].as_str().expect("sig"))
        .expect("hex")
        .try_into()
        .expect("64 bytes");
    let sig = Signature::from_bytes(&sig_bytes);
    let message = cp["message"].as_str().expect("message");
    assert!(
        pk.verify(message.as_bytes(), &sig).is_ok(),
        "the signature checks offline"
    );
    assert!(
        pk.verify(message.replace("\"seq\":", "\"seq\":1").as_bytes(), &sig)
            .is_err(),
        "and only for that message"
    );
    let seq = cp["seq"].as_i64().expect("seq");
    let head = app
        .get(&format!("{N}/journal?after_seq={}&limit=1", seq - 1), None)
        .await
        .ok(200);
    assert_eq!(head["items"][0]["hash"], cp["head_hash"]);
    assert!(message.contains(cp["head_hash"].as_str().expect("hash")));
    let list = app.get(&format!("{N}/checkpoints"), None).await.ok(200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}

/// Deleting or reordering sealed rows is caught too (SQLite, where triggers can be dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_reordered_rows_are_caught() {
    for case in ["delete", "reorder"] {
        let app = TestApp::spawn(Backend::Sqlite).await;
        activity(&app).await;
        assert_eq!(
            app.get(&format!("{N}/journal/verify"), None).await.ok(200)["ok"],
            true
        );
        app.sql("DROP TRIGGER journal_seals_no_update");
        app.sql("DROP TRIGGER journal_seals_no_delete");
        if case == "delete" {
            app.sql("DELETE FROM journal_seals WHERE seq = 4");
        } else {
            app.sql("UPDATE journal_seals SET seq = -5 WHERE seq = 5");
            app.sql("UPDATE journal_seals SET seq = 5 WHERE seq = 6");
            app.sql("UPDATE journal_seals SET seq = 6 WHERE seq = -5");
        }
        let v = app.get(&format!("{N}/journal/verify"), None).await.ok(200);
        assert_eq!(v["ok"], false, "{case}: {v}");
        let expected = if case == "delete" { 4 } else { 5 };
        assert_eq!(v["first_bad_entry"]["seq"], expected, "{case}: {v}");
    }
}

/// The background sealer seals without anyone asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sealer_runs_by_itself() {
    let (db, url) = TestDb::create(Backend::Sqlite);
    let mut config = holoptic::Config::for_database(&url);
    config.seal_interval_ms = 50;
    let app = TestApp::spawn_with(Backend::Sqlite, db, url, config).await;
    app.network("lab", json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let url = holoptic::db::DatabaseUrl::parse(&app.database_url).expect("url");
    let mut conn = holoptic::db::conn::establish(&url).expect("conn");
    use diesel::prelude::*;
    let sealed: i64 = holoptic::db::schema::journal_seals::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert!(sealed >= 1, "the network's creation is sealed: {sealed}");
}

/// One sealing pass seals what was queued when it began and stops at the queue's end as it
/// then stood: entries written meanwhile wait for the next pass. Here every seal writes a new
/// entry just behind the one it sealed (a trigger the test adds), as writers do while the
/// sealer runs. A pass that went on until it found the queue empty, as it did before, chased
/// those entries one transaction after another and never ended.
async fn a_sealing_pass_ends_where_the_queue_ended(app: TestApp) {
    app.network("lab", json!({})).await;
    let network = app.get(N, None).await.ok(200);
    let network_id = network["id"].as_str().expect("id").to_owned();
    let url = holoptic::db::DatabaseUrl::parse(&app.database_url).expect("url");
    let mut conn = holoptic::db::conn::establish(&url).expect("conn");
    holoptic::journal::seal(&mut conn, &network_id).expect("the network's entries sealed");
    let bodies: Vec<Value> = (0..10).map(|i| json!({ "n": i })).collect();
    holoptic::db::write_tx(&mut conn, |conn| {
        holoptic::journal::record_many(conn, &network_id, None, "test.queued", bodies)
    })
    .expect("appended");
    let meanwhile = "INSERT INTO journal_entries (id, network_id, recorded_at, actor, kind, body) \
                     VALUES (NEW.entry_id || '+', NEW.network_id, CURRENT_TIMESTAMP, NULL, 'test.meanwhile', '{}')";
    match app.backend {
        Backend::Sqlite => app.sql(&format!(
            "CREATE TRIGGER test_meanwhile AFTER INSERT ON journal_seals BEGIN {meanwhile}; END"
        )),
        Backend::Postgres => {
            app.sql(&format!(
                "CREATE FUNCTION test_meanwhile() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN {meanwhile}; RETURN NULL; END $$"
            ));
            app.sql(
                "CREATE TRIGGER test_meanwhile AFTER INSERT ON journal_seals \
                 FOR EACH ROW EXECUTE FUNCTION test_meanwhile()",
            );
        }
    }
    // On a thread of its own, so that a pass that never ends fails the test instead of
    // hanging it.
    let (done, passes) = std::sync::mpsc::channel();
    let id = network_id.clone();
    std::thread::spawn(move || {
        let first = holoptic::journal::seal(&mut conn, &id).map_err(|e| format!("{e:?}"));
        let _ = done.send(first);
    });
    let sealed = passes
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the pass ended")
        .expect("the pass sealed");
    assert_eq!(
        sealed, 10,
        "the ten entries queued before the pass, and no more"
    );
    let waiting = || {
        app.sql_count(&format!(
            "SELECT COUNT(*) AS n FROM journal_unsealed WHERE network_id = '{network_id}'"
        ))
    };
    assert_eq!(
        waiting(),
        10,
        "the entries written during the pass wait for the next one"
    );
    // Without the trigger, the next pass (here the one verification runs) seals them, and
    // the chain holds every entry in one piece.
    app.sql(match app.backend {
        Backend::Sqlite => "DROP TRIGGER test_meanwhile",
        Backend::Postgres => "DROP TRIGGER test_meanwhile ON journal_seals",
    });
    let v = app.get(&format!("{N}/journal/verify"), None).await.ok(200);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["unsealed"], 0, "{v}");
    assert_eq!(waiting(), 0);
}

/// More unsealed entries than one sealing transaction takes: all are sealed, gapless, in
/// one unbroken chain.
async fn a_long_tail_is_sealed_in_chunks(app: TestApp) {
    app.network("lab", json!({})).await;
    let network = app.get(N, None).await.ok(200);
    let network_id = network["id"].as_str().expect("id");
    // A tail longer than two sealing chunks, appended as a SourceCred import appends its
    // payouts: many entries in one transaction.
    let url = holoptic::db::DatabaseUrl::parse(&app.database_url).expect("url");
    let mut conn = holoptic::db::conn::establish(&url).expect("conn");
    let bodies: Vec<Value> = (0..2_500).map(|i| json!({ "n": i })).collect();
    holoptic::db::write_tx(&mut conn, |conn| {
        holoptic::journal::record_many(conn, network_id, None, "test.tail", bodies)
    })
    .expect("appended");
    let v = app.get(&format!("{N}/journal/verify"), None).await.ok(200);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["unsealed"], 0);
    let entries = v["entries"].as_i64().expect("entries");
    assert!(
        entries > 2 * holoptic::journal::SEAL_CHUNK,
        "{entries} entries"
    );
    assert_eq!(v["head_seq"], json!(entries));
    // The sealer's queue holds only the tail: empty once everything is sealed.
    use diesel::prelude::*;
    let queued: i64 = holoptic::db::schema::journal_unsealed::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(queued, 0);
    // The sealer vacuums the queue on PostgreSQL after long passes (a no-op on SQLite).
    holoptic::db::journal::vacuum_queue(&mut conn).expect("vacuum");
    // Verification reads the chain a page at a time: an edit on a later page is found.
    unlock(&app, "journal_entries");
    app.sql("UPDATE journal_entries SET body = '{\"n\":-1}' WHERE id = (SELECT entry_id FROM journal_seals WHERE seq = 2345)");
    let v = app.get(&format!("{N}/journal/verify"), None).await.ok(200);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad_entry"]["seq"], 2345, "{v}");
    assert_eq!(v["entries"], json!(entries));
    assert_eq!(v["head_seq"], json!(entries));
}

/// A batch is journaled as one entry holding its contributions, and a journal page stops
/// before its bodies pass 1 MiB, so two large batches take two pages.
async fn a_batch_is_one_entry_and_pages_stop_at_a_mebibyte(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let items: Vec<Value> = (0..1000)
            .map(|i| {
                let mut w = work("1");
                w["description"] = json!(format!("{i:04} {}", "x".repeat(600)));
                w
            })
            .collect();
        let out = app
            .post(
                &format!("{N}/contributions/batch"),
                Some(&steward.token),
                json!({ "items": items }),
            )
            .await
            .ok(201);
        ids.push(out["items"][999]["id"].clone());
    }
    let kind = "contribution.batch_recorded";
    let first = app
        .get(&format!("{N}/journal?kind={kind}&limit=200"), None)
        .await
        .ok(200);
    assert_eq!(
        first["items"].as_array().map(Vec::len),
        Some(1),
        "cut at 1 MiB"
    );
    let body = &first["items"][0]["body"]["items"];
    assert_eq!(body.as_array().map(Vec::len), Some(1000));
    assert_eq!(body[999]["id"], ids[0]);
    assert!(body[999]["description"]
        .as_str()
        .is_some_and(|d| d.starts_with("0999 ")));
    let next = first["next_after_seq"].as_i64().expect("a next page");
    let second = app
        .get(
            &format!("{N}/journal?kind={kind}&limit=200&after_seq={next}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["items"][0]["body"]["items"][999]["id"], ids[1]);
    assert!(
        second.get("next_after_seq").is_none(),
        "{}",
        second["next_after_seq"]
    );
    // The small entries before the batches (the network's creation, the steward joining)
    // share a page with the first batch while their bodies fit.
    let all = app
        .get(&format!("{N}/journal?limit=200"), None)
        .await
        .ok(200);
    let kinds: Vec<&Value> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["kind"])
        .collect();
    assert_eq!(kinds.last(), Some(&&json!(kind)), "{kinds:?}");
    assert!(kinds.len() > 1, "{kinds:?}");
    let v = app.get(&format!("{N}/journal/verify"), None).await.ok(200);
    assert_eq!(v["ok"], true, "{v}");
}

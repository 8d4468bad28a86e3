//! SQLite's write lock held by another process: the service's writers wait at most 10 s
//! (for this process's writer turn, then for SQLite's `busy_timeout`) and answer 503 with
//! problem+json; reads go on; once the lock is free the same requests, retried with their
//! Idempotency-Keys, apply once. SQLite only, and alone in its test binary: the writer turn is
//! one per process, so holding it would stall every other SQLite test running beside it.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{work, Backend, TestApp};
use diesel::{Connection as _, RunQueryDsl as _, SqliteConnection};
use reqwest::Method;
use serde_json::json;

/// How long the other process keeps the write lock: long enough for three writers queued
/// behind each other to see their waits end (10 s each, the second starting when the first
/// gives up), short of a third wait.
const HELD: Duration = Duration::from_secs(23);

/// Holds SQLite's write lock on `path` (`BEGIN IMMEDIATE`) on its own thread, as another
/// process would, until `HELD` has passed. Returns once the lock is taken.
fn hold_write_lock(path: &str) -> std::thread::JoinHandle<()> {
    let path = path.to_owned();
    let (taken, is_taken) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut conn = SqliteConnection::establish(&path).expect("open the database");
        diesel::sql_query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .expect("take the write lock");
        taken.send(()).expect("the test waits");
        std::thread::sleep(HELD);
        diesel::sql_query("ROLLBACK")
            .execute(&mut conn)
            .expect("release the write lock");
    });
    is_taken.recv().expect("the lock is taken");
    holder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_give_up_after_their_wait_and_retries_apply_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let steward = app.network("locked", json!({})).await;
    let member = app.join("locked", "Member").await;
    let path = app
        .database_url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL")
        .to_owned();
    let post = |key: &'static str| {
        let app = &app;
        let token = member.token.clone();
        async move {
            let sent = Instant::now();
            let res = app
                .send(
                    Method::POST,
                    "/v1/networks/locked/contributions",
                    Some(&token),
                    Some(work("2")),
                    &[("idempotency-key", key)],
                )
                .await;
            (res, sent.elapsed())
        }
    };

    let holder = hold_write_lock(&path);
    let locked_at = Instant::now();
    // Three writers, each a moment after the one before: the first takes the writer turn
    // and waits for SQLite's lock; the others wait for the turn.
    let staggered = |key: &'static str, after: u64| {
        let post = &post;
        async move {
            tokio::time::sleep(Duration::from_millis(after)).await;
            post(key).await
        }
    };
    let reads = async {
        // Reads do not wait for the write lock (WAL: readers see the last commit).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let listed = app
            .get("/v1/networks/locked/contributions", Some(&steward.token))
            .await;
        (listed, started.elapsed())
    };
    let ((a, a_took), (b, b_took), (c, c_took), (listed, read_took)) = tokio::join!(
        staggered("lock-a", 0),
        staggered("lock-b", 300),
        staggered("lock-c", 600),
        reads
    );
    let answered_within = locked_at.elapsed();
    let took = [a_took, b_took, c_took];
    assert!(
        answered_within < HELD,
        "every writer answered while the lock was held ({answered_within:?} of {HELD:?}; waits {took:?})"
    );
    for res in [&a, &b, &c] {
        res.assert_problem(503, None);
        assert!(
            res.headers.contains_key("retry-after"),
            "a 503 says when to retry: {:?}",
            res.headers
        );
    }
    // No wait is longer than two bounded waits in a row (the turn, then SQLite's lock).
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(21)),
        "waits {took:?}"
    );
    assert_eq!(listed.status.as_u16(), 200, "{:?}", listed.body);
    assert!(
        read_took < Duration::from_secs(2),
        "a read waited {read_took:?} behind the write lock"
    );

    holder.join().expect("the holder released the lock");
    for key in ["lock-a", "lock-b", "lock-c"] {
        post(key).await.0.ok(201);
    }
    // A second retry replays the stored answer rather than writing again.
    let (replayed, _) = post("lock-a").await;
    assert_eq!(replayed.status.as_u16(), 201, "{:?}", replayed.body);
    assert_eq!(
        app.count_contributions("locked", Some(&steward.token))
            .await,
        3
    );
}

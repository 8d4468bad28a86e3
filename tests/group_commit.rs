//! Group commit: writes that queue while the writer waits commit together in one
//! transaction, each in its own savepoint. A write that fails inside its savepoint leaves the
//! others of its group applied; two requests with one Idempotency-Key in the same group write
//! once and answer alike. On both backends, with group commit on.
//!
//! The writer is made to wait by another connection holding a lock its first write needs
//! (SQLite's write lock; on PostgreSQL a lock on the contributions table), so the group the
//! others form is known. SQLite's test holds the process's writer turn while it waits, so
//! this file keeps to these tests.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{work, Backend, TestApp, TestDb};
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use holoptic::config::GroupCommit;
use holoptic::db::conn::write_tx_reply;
use holoptic::db::idempotency::{claim, Claim, Outcome, RequestKey, Verdict, REQUEST_CLAIM};
use holoptic::db::{self, write_tx, DatabaseUrl, Db, DbError, PoolSettings};
use reqwest::Method;
use serde_json::{json, Value};

/// How long the lock is held: the queued writes wait about this long, under the pool's
/// 3 s connection timeout, past which a queued write is answered 503 without running.
const HELD: Duration = Duration::from_millis(1500);

/// Takes a lock on `url`'s database that the writer's first statement of a contribution
/// waits for, on its own thread, and releases it after [`HELD`]. Returns once it is taken.
fn hold_lock(backend: Backend, url: &str) -> std::thread::JoinHandle<()> {
    let url = url.to_owned();
    let (taken, is_taken) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        let hold = |conn: &mut dyn FnMut(&str)| {
            conn("BEGIN");
            taken.send(()).expect("the test waits");
            std::thread::sleep(HELD);
            conn("ROLLBACK");
        };
        match backend {
            Backend::Sqlite => {
                let path = url.strip_prefix("sqlite://").expect("a SQLite URL");
                let mut conn = SqliteConnection::establish(path).expect("open the database");
                hold(&mut |sql| {
                    let sql = if sql == "BEGIN" {
                        "BEGIN IMMEDIATE"
                    } else {
                        sql
                    };
                    diesel::sql_query(sql).execute(&mut conn).expect(sql);
                });
            }
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&url).expect("connect");
                hold(&mut |sql| {
                    diesel::sql_query(sql).execute(&mut conn).expect(sql);
                    if sql == "BEGIN" {
                        // Reads go on; inserts wait.
                        diesel::sql_query("LOCK TABLE contributions IN SHARE MODE")
                            .execute(&mut conn)
                            .expect("lock");
                    }
                });
            }
        }
    });
    is_taken.recv().expect("the lock is taken");
    holder
}

async fn writes_queued_behind_a_lock_commit_as_one_group(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |c| c.group_commit = GroupCommit::On).await;
    let steward = app.network("grouped", json!({})).await;
    let member = app.join("grouped", "Member").await;
    let groups = || app.metric("holoptic_db_write_groups_total");
    let grouped = || app.metric("holoptic_db_grouped_writes_total");
    let (groups_before, grouped_before) = (groups().await, grouped().await);
    let post = |key: String, body: Value| {
        let (app, token) = (&app, member.token.clone());
        async move {
            app.send(
                Method::POST,
                "/v1/networks/grouped/contributions",
                Some(&token),
                Some(body),
                &[("idempotency-key", key.as_str())],
            )
            .await
        }
    };

    let holder = hold_lock(backend, &app.database_url);
    // The writer takes the first write alone and waits for the lock with it.
    let first = post("first".into(), work("1"));
    let rest = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let good = (0..6).map(|i| post(format!("good-{i}"), work("2")));
        // Fails inside its savepoint, after the key's lookup and the network's reads.
        let mut bad = work("3");
        bad["corrects"] = json!(uuid::Uuid::now_v7().to_string());
        bad["description"] = json!("a correction of nothing");
        let twice = [
            post("twice".into(), work("4")),
            post("twice".into(), work("4")),
        ];
        futures_util::future::join3(
            futures_util::future::join_all(good),
            post("bad".into(), bad),
            futures_util::future::join_all(twice),
        )
        .await
    };
    let (first, (good, bad, twice)) = tokio::join!(first, rest);
    holder.join().expect("the lock was released");

    first.ok(201);
    for res in good {
        res.ok(201);
    }
    bad.assert_problem(422, Some("corrects"));
    let [a, b] = <[_; 2]>::try_from(twice).expect("two answers");
    let (a, b) = (a.ok(201), b.ok(201));
    assert_eq!(a["id"], b["id"], "one key, one contribution: {a} {b}");

    // 1 + 6 + 1 contributions: the failed one is not there, the doubled key wrote once.
    assert_eq!(
        app.count_contributions("grouped", Some(&steward.token))
            .await,
        8
    );
    // Two groups: the first write alone, then the nine that queued behind it (the failed one
    // and the replay included). One transaction per write would have made ten.
    assert_eq!(groups().await - groups_before, 2);
    assert_eq!(grouped().await - grouped_before, 10);
    let verified = app
        .get("/v1/networks/grouped/journal/verify", None)
        .await
        .ok(200);
    assert_eq!(verified["ok"], true, "{verified}");
}

/// On PostgreSQL, with group commit off, single writes that arrive while another is being
/// written go to the database together, as one statement (`db::gather`): while the first
/// write waits for a lock, the next six queue behind it and go as one statement. A group
/// holding two requests with one key fails whole, and each of its writes then goes alone:
/// every write lands once, and the doubled key writes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_writes_arriving_together_go_as_one_statement_on_postgres() {
    let app = TestApp::spawn_configured(Backend::Postgres, |c| c.db_pool_size = 10).await;
    let steward = app.network("gathered", json!({})).await;
    let member = app.join("gathered", "Member").await;
    let metric = |name: &'static str| app.metric(name);
    let counts = || async {
        [
            metric("holoptic_db_gathered_statements_total").await,
            metric("holoptic_db_gathered_writes_total").await,
            metric("holoptic_db_gathered_statements_failed_total").await,
        ]
    };
    let post = |key: String| {
        let (app, token) = (&app, member.token.clone());
        async move {
            app.send(
                Method::POST,
                "/v1/networks/gathered/contributions",
                Some(&token),
                Some(work("2")),
                &[("idempotency-key", key.as_str())],
            )
            .await
        }
    };
    // The first write finds the network; the next ones know it, and gather.
    post("known".into()).await.ok(201);

    // While write `first` waits for a lock, the writes `keys` queue behind it.
    let url = app.database_url.as_str();
    let behind_a_lock = |first: &'static str, keys: Vec<String>| {
        let post = &post;
        async move {
            let holder = hold_lock(Backend::Postgres, url);
            let rest = async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                futures_util::future::join_all(keys.into_iter().map(post)).await
            };
            let (first, rest) = tokio::join!(post(first.into()), rest);
            holder.join().expect("the lock was released");
            first.ok(201);
            rest.into_iter().map(|r| r.ok(201)).collect::<Vec<Value>>()
        }
    };

    // A group of six.
    let before = counts().await;
    let rest = behind_a_lock("first", (0..6).map(|i| format!("good-{i}")).collect()).await;
    let mut ids: Vec<Value> = rest.into_iter().map(|r| r["id"].clone()).collect();
    ids.sort_by_key(ToString::to_string);
    ids.dedup();
    assert_eq!(ids.len(), 6);
    let after = counts().await;
    assert_eq!(
        std::array::from_fn::<_, 3, _>(|i| after[i] - before[i]),
        [1, 6, 0],
        "one statement of six writes"
    );

    // A group of five with one key twice: its statement fails, and each write goes alone.
    let before = after;
    let keys = ["more-0", "more-1", "more-2", "twice", "twice"];
    let answers = behind_a_lock("first-again", keys.map(String::from).into()).await;
    assert_eq!(answers[3], answers[4], "one key, one contribution");
    let after = counts().await;
    assert_eq!(
        std::array::from_fn::<_, 3, _>(|i| after[i] - before[i]),
        [0, 0, 1],
        "one statement failed"
    );

    // 1 + 1 + 6 + 1 + 4 contributions, each once; the journal verifies.
    assert_eq!(
        app.count_contributions("gathered", Some(&steward.token))
            .await,
        13
    );
    let verified = app
        .get("/v1/networks/gathered/journal/verify", None)
        .await
        .ok(200);
    assert_eq!(verified["ok"], true, "{verified}");
}

/// A pool with group commit on, migrated.
fn grouped_db(url: &str) -> Db {
    let settings = PoolSettings {
        max_size: 2,
        connection_timeout: Duration::from_secs(3),
        group_commit: true,
    };
    let db = Db::new(&DatabaseUrl::parse(url).expect("url"), &settings).expect("pool");
    db::migrate(&mut db.get().expect("conn")).expect("migrate");
    db
}

/// Marks written by the grouped writes (rows of their own scope in the keys table).
fn marks(db: &Db) -> Vec<String> {
    use holoptic::db::schema::idempotency_keys::dsl::*;
    let mut conn = db.get().expect("conn");
    idempotency_keys
        .filter(scope.eq("mark"))
        .select(idem_key)
        .order(idem_key)
        .load(&mut conn)
        .expect("rows")
}

/// A write that leaves mark `name`, sleeping `slow` first, then fails if `fail` says so.
async fn mark(
    db: &Db,
    name: &str,
    slow: Duration,
    fail: Option<&'static str>,
) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, created_at) \
         VALUES ('mark', '{name}', 'h', 'applied', CURRENT_TIMESTAMP)"
    );
    db.write(move |conn| {
        write_tx(conn, |conn| {
            std::thread::sleep(slow);
            diesel::sql_query(&sql).execute(conn)?;
            match fail {
                Some("panic") => panic!("a write that panics"),
                Some(why) => Err(DbError::Task(why.into())),
                None => Ok(()),
            }
        })
    })
    .await
}

/// While a slow write holds the writer, the next writes queue and commit as one group; the
/// one that fails after its insert loses its insert and nothing else. A write that panics
/// rolls its whole group back (every write of it fails, nothing is applied), and the writer
/// goes on.
async fn a_failed_write_rolls_back_alone(backend: Backend) {
    let (_guard, url) = TestDb::create(backend);
    let db = grouped_db(&url);
    let none = Duration::ZERO;
    let (slow, rest) = tokio::join!(mark(&db, "a", Duration::from_millis(400), None), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        futures_util::future::join4(
            mark(&db, "b", none, None),
            mark(&db, "c", none, Some("refused after its insert")),
            mark(&db, "d", none, None),
            mark(&db, "e", none, None),
        )
        .await
    });
    slow.expect("a");
    let (b, c, d, e) = rest;
    b.expect("b");
    assert!(
        matches!(c, Err(DbError::Task(ref why)) if why == "refused after its insert"),
        "{c:?}"
    );
    d.expect("d");
    e.expect("e");
    assert_eq!(marks(&db), ["a", "b", "d", "e"]);
    assert_eq!(
        db.group_counts(),
        (2, 5),
        "the slow write alone, then the four behind it"
    );

    let (slow, rest) = tokio::join!(mark(&db, "f", Duration::from_millis(400), None), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        futures_util::future::join3(
            mark(&db, "g", none, None),
            mark(&db, "h", none, Some("panic")),
            mark(&db, "i", none, None),
        )
        .await
    });
    slow.expect("f");
    let (g, h, i) = rest;
    for out in [g, h, i] {
        assert!(
            out.is_err(),
            "the group of a panicking write is rolled back: {out:?}"
        );
    }
    assert_eq!(marks(&db), ["a", "b", "d", "e", "f"]);
    mark(&db, "j", none, None)
        .await
        .expect("the writer goes on");
    assert_eq!(marks(&db), ["a", "b", "d", "e", "f", "j"]);

    // A lone write runs in the transaction itself, without a savepoint: failing or panicking,
    // it is rolled back with it.
    let lone = mark(&db, "k", none, Some("refused after its insert")).await;
    assert!(
        matches!(lone, Err(DbError::Task(ref why)) if why == "refused after its insert"),
        "{lone:?}"
    );
    let lone = mark(&db, "l", none, Some("panic")).await;
    assert!(lone.is_err(), "{lone:?}");
    mark(&db, "m", none, None)
        .await
        .expect("the writer goes on");
    assert_eq!(marks(&db), ["a", "b", "d", "e", "f", "j", "m"]);
    assert_eq!(
        db.group_counts().0,
        5,
        "the failed lone writes did not commit"
    );
}

#[derive(QueryableByName)]
struct TempStore {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    temp_store: i32,
}

/// SQLite: the writer keeps its statement journals in memory (`temp_store = MEMORY`, 2), so a
/// group's savepoints never spill them to a temporary file; pooled connections keep the
/// default (0), so large reads may still sort on disk rather than in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_keeps_statement_journals_in_memory() {
    let (_guard, url) = TestDb::create(Backend::Sqlite);
    let db = grouped_db(&url);
    let read = |conn: &mut db::AnyConnection| {
        diesel::sql_query("PRAGMA temp_store")
            .get_result::<TempStore>(conn)
            .map(|s| s.temp_store)
            .map_err(DbError::from)
    };
    assert_eq!(db.write(read).await.expect("the writer's"), 2);
    assert_eq!(db.run(read).await.expect("a pooled one's"), 0);
}

/// A group whose commit fails (here a deferred foreign key, checked at `COMMIT`) answers every
/// write of it with the failure and applies none. A request whose key's lookup saw a key
/// recorded earlier in that group (a replay of an answer that was never kept) is answered with
/// the failure too, and its lookup is forgotten, so the middleware does not replay it.
async fn a_failed_commit_fails_every_write_and_replays_nothing(backend: Backend) {
    let (_guard, url) = TestDb::create(backend);
    let db = grouped_db(&url);
    {
        let mut conn = db.get().expect("conn");
        for sql in [
            "CREATE TABLE t_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE t_child (parent INTEGER REFERENCES t_parent(id) DEFERRABLE INITIALLY DEFERRED)",
        ] {
            diesel::sql_query(sql).execute(&mut conn).expect(sql);
        }
    }
    let stale = db::rows::now() - chrono::Duration::minutes(5);
    // Two requests with one key, as the middleware makes them: each its own `RequestKey`.
    let key = || RequestKey::new("scope".into(), "k".into(), "hash".into(), stale);
    let (one, other) = (key(), key());
    // Orphans a child row: accepted now, refused at the commit.
    let keyed = |key: RequestKey| {
        REQUEST_CLAIM.scope(
            Some(key),
            db.write(|conn| {
                write_tx_reply(conn, 201, |conn| {
                    diesel::sql_query("INSERT INTO t_child (parent) VALUES (42)").execute(conn)?;
                    Ok::<_, DbError>("written")
                })
            }),
        )
    };
    let (slow, (first, second)) =
        tokio::join!(mark(&db, "a", Duration::from_millis(400), None), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tokio::join!(keyed(one.clone()), keyed(other.clone()))
        });
    slow.expect("the slow write commits alone");
    for out in [&first, &second] {
        assert!(
            matches!(out, Err(DbError::Task(why)) if why.contains("commit")),
            "{out:?}"
        );
    }
    // The first recorded the key in the group, and the second's lookup saw it there.
    for key in [&one, &other] {
        assert!(
            matches!(key.verdict(), Verdict::Unchecked),
            "a lookup made in a group that rolled back is forgotten: {:?}",
            key.verdict()
        );
        assert_eq!(key.outcome(), Outcome::Unwritten);
    }
    let mut conn = db.get().expect("conn");
    let children: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT COUNT(*) FROM t_child)",
    ))
    .get_result(&mut conn)
    .expect("count");
    assert_eq!(children, 0);
    assert!(
        matches!(
            claim(&mut conn, "scope", "k", "hash", stale).expect("lookup"),
            Claim::Fresh
        ),
        "the key was not kept"
    );
    drop(conn);
    assert_eq!(
        db.group_counts(),
        (1, 1),
        "only the slow write's group committed"
    );
}

for_both_backends!(
    writes_queued_behind_a_lock_commit_as_one_group,
    a_failed_write_rolls_back_alone,
    a_failed_commit_fails_every_write_and_replays_nothing,
);

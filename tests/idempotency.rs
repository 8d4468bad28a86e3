//! The outermost write transaction of a request records its Idempotency-Key, in the same
//! transaction: committed writes and recorded keys can never disagree.

mod common;

use common::{Backend, TestDb};
use diesel::prelude::*;
use holoptic::db::conn::write_tx_reply;
use holoptic::db::idempotency::{
    claim, Claim, Outcome, RequestKey, Verdict, KEY_TAKEN, REQUEST_CLAIM,
};
use holoptic::db::{self, write_tx, DatabaseUrl, Db, DbError, PoolSettings};

fn states(db: &Db) -> Vec<(String, String)> {
    use holoptic::db::schema::idempotency_keys::dsl::*;
    let mut conn = db.get().expect("conn");
    idempotency_keys
        .select((idem_key, state))
        .order(idem_key)
        .load(&mut conn)
        .expect("rows")
}

async fn look(db: &Db, key: &'static str, later_minutes: i64) -> Claim {
    let stale = db::rows::now() + chrono::Duration::minutes(later_minutes - 5);
    db.run(move |conn| claim(conn, "scope", key, "hash", stale).map_err(DbError::from))
        .await
        .expect("claim")
}

fn key(k: &str) -> RequestKey {
    keyed(k, "hash")
}

fn keyed(k: &str, hash: &str) -> RequestKey {
    let stale = db::rows::now() - chrono::Duration::minutes(5);
    RequestKey::new("scope".into(), k.into(), hash.into(), stale)
}

/// Runs a database task for the request with `key`: whether its work ran, and its result.
async fn task(db: &Db, key: &RequestKey) -> (bool, Result<(), DbError>) {
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let out = REQUEST_CLAIM
        .scope(
            Some(key.clone()),
            db.run(move |_| {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, DbError>(())
            }),
        )
        .await;
    (ran.load(std::sync::atomic::Ordering::SeqCst), out)
}

async fn records(backend: Backend) {
    let (_guard, url) = TestDb::create(backend);
    let db = Db::new(
        &DatabaseUrl::parse(&url).expect("url"),
        &PoolSettings {
            max_size: 2,
            connection_timeout: std::time::Duration::from_secs(3),
            group_commit: false,
        },
    )
    .expect("pool");
    db::migrate(&mut db.get().expect("conn")).expect("migrate");
    // Looking a key up writes nothing.
    assert!(matches!(look(&db, "k", 0).await, Claim::Fresh));
    assert!(states(&db).is_empty());
    // A racing request with the key, looked up before the first one writes (its first
    // database task looks the key up, before its work).
    let racer = key("k");
    assert!(matches!(task(&db, &racer).await, (true, Ok(()))));
    assert!(matches!(racer.verdict(), Verdict::Fresh));
    // A write that fails records nothing.
    let first = key("k");
    let failed: Result<(), DbError> = REQUEST_CLAIM
        .scope(
            Some(first.clone()),
            db.run(|conn| write_tx(conn, |_| Err(DbError::Task("boom".into())))),
        )
        .await;
    assert!(failed.is_err());
    assert!(states(&db).is_empty());
    assert_eq!(first.outcome(), Outcome::Unwritten);
    // A write that commits records the key applied, nested transactions included.
    REQUEST_CLAIM
        .scope(
            Some(first.clone()),
            db.run(|conn| write_tx(conn, |conn| write_tx(conn, |_| Ok::<_, DbError>(())))),
        )
        .await
        .expect("write");
    assert_eq!(states(&db), [("k".to_owned(), "applied".to_owned())]);
    assert_eq!(first.outcome(), Outcome::Applied);
    assert!(matches!(look(&db, "k", 0).await, Claim::InProgress));
    // The racer, looked up before that write, writes second: it is refused and rolled back.
    let lost: Result<(), DbError> = REQUEST_CLAIM
        .scope(
            Some(racer.clone()),
            db.run(|conn| {
                write_tx(conn, |conn| {
                    diesel::sql_query(
                        "UPDATE idempotency_keys SET state = 'done' WHERE idem_key = 'k'",
                    )
                    .execute(conn)?;
                    Ok(())
                })
            }),
        )
        .await;
    let Err(DbError::Query(diesel::result::Error::DatabaseError(_, info))) = lost else {
        panic!("the second write must fail: {lost:?}");
    };
    assert_eq!(info.message(), KEY_TAKEN);
    assert_eq!(states(&db), [("k".to_owned(), "applied".to_owned())]);
    assert_eq!(racer.outcome(), Outcome::Unwritten);
    // Applied and stale: the claim says the response was lost, so nothing runs twice.
    assert!(matches!(
        look(&db, "k", 10).await,
        Claim::AppliedResponseLost
    ));
    // A write that builds its answer stores it with the write, replayed afterwards.
    let replied = key("r");
    let body = REQUEST_CLAIM
        .scope(
            Some(replied.clone()),
            db.run(|conn| write_tx_reply(conn, 201, |_| Ok::<_, DbError>(vec![1, 2]))),
        )
        .await
        .expect("reply");
    assert_eq!(body, "[1,2]");
    assert_eq!(replied.outcome(), Outcome::Stored);
    let Claim::Replay { status, body, .. } = look(&db, "r", 0).await else {
        panic!("a stored answer is replayed");
    };
    assert_eq!((status, body.as_str()), (201, "[1,2]"));
    // A later request with the key: its first database task looks the key up and stops
    // before its work, and the verdict says what to answer instead.
    let retry = key("r");
    let (ran, out) = task(&db, &retry).await;
    assert!(!ran, "a replayed request's work must not run");
    assert!(matches!(out, Err(DbError::Refused)), "{out:?}");
    let Verdict::Refused(Claim::Replay { status, .. }) = retry.verdict() else {
        panic!("the retry replays: {:?}", retry.verdict());
    };
    assert_eq!(status, 201);
    // The key with another request: refused as a mismatch.
    let other = keyed("r", "another hash");
    assert!(matches!(
        task(&db, &other).await,
        (false, Err(DbError::Refused))
    ));
    assert!(matches!(other.verdict(), Verdict::Refused(Claim::Mismatch)));
    // A request's later tasks keep its first verdict without looking again: with the key's
    // row gone, a new lookup would let the work run, but the retry's next task still stops.
    {
        use holoptic::db::schema::idempotency_keys::dsl::*;
        let mut conn = db.get().expect("conn");
        diesel::delete(idempotency_keys.filter(idem_key.eq("r")))
            .execute(&mut conn)
            .expect("delete the key");
    }
    assert!(matches!(
        task(&db, &retry).await,
        (false, Err(DbError::Refused))
    ));
    assert!(matches!(task(&db, &key("r")).await, (true, Ok(()))));
    // A request that never touched the database was never looked up.
    assert!(matches!(key("r").verdict(), Verdict::Unchecked));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    records(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    records(Backend::Postgres).await;
}

//! The outermost write transaction of a request marks its Idempotency-Key applied, in the
//! same transaction: committed writes and applied keys can never disagree.

mod common;

use common::{Backend, TestDb};
use diesel::prelude::*;
use holoptic::db::idempotency::{claim, Claim, REQUEST_CLAIM};
use holoptic::db::{self, write_tx, DatabaseUrl, Db, DbError, PoolSettings};

fn state(db: &Db) -> String {
    let mut conn = db.get().expect("conn");
    holoptic::db::schema::idempotency_keys::table
        .select(holoptic::db::schema::idempotency_keys::state)
        .first::<String>(&mut conn)
        .expect("row")
}

async fn marks(backend: Backend) {
    let (_guard, url) = TestDb::create(backend);
    let db = Db::new(
        &DatabaseUrl::parse(&url).expect("url"),
        &PoolSettings {
            max_size: 2,
            connection_timeout: std::time::Duration::from_secs(3),
        },
    )
    .expect("pool");
    db::migrate(&mut db.get().expect("conn")).expect("migrate");
    let now = db::rows::now();
    let fresh = db
        .run(move |conn| {
            claim(
                conn,
                "scope",
                "k",
                "hash",
                now,
                now - chrono::Duration::minutes(5),
            )
            .map_err(DbError::from)
        })
        .await
        .expect("claim");
    assert!(matches!(fresh, Claim::Fresh));
    assert_eq!(state(&db), "in_progress");
    // A write that fails leaves the key in progress (rolled back with it).
    let failed: Result<(), DbError> = REQUEST_CLAIM
        .scope(
            Some(("scope".into(), "k".into())),
            db.run(|conn| write_tx(conn, |_| Err(DbError::Task("boom".into())))),
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(state(&db), "in_progress");
    // A write that commits marks it applied, nested transactions included.
    REQUEST_CLAIM
        .scope(
            Some(("scope".into(), "k".into())),
            db.run(|conn| write_tx(conn, |conn| write_tx(conn, |_| Ok::<_, DbError>(())))),
        )
        .await
        .expect("write");
    assert_eq!(state(&db), "applied");
    // Applied and stale: the claim says the response was lost, so nothing runs twice.
    let later = now + chrono::Duration::minutes(10);
    let again = db
        .run(move |conn| {
            claim(
                conn,
                "scope",
                "k",
                "hash",
                later,
                later - chrono::Duration::minutes(5),
            )
            .map_err(DbError::from)
        })
        .await
        .expect("claim");
    assert!(matches!(again, Claim::AppliedResponseLost));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    marks(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    marks(Backend::Postgres).await;
}

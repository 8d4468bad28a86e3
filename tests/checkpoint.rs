//! SQLite checkpoints: the pool's commits leave them to the pool's checkpoint thread
//! (`db::checkpoint`), which copies the log into the database file and keeps the log from
//! growing under a steady stream of writes. SQLite only: PostgreSQL has no such log to tend.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Backend, TestApp, TestDb};
use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl as _};
use holoptic::db::{DatabaseUrl, Db, DbError, PoolSettings};
use serde_json::json;

fn file_len(path: &PathBuf) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn sqlite_path(app: &TestApp) -> PathBuf {
    PathBuf::from(
        app.database_url
            .strip_prefix("sqlite://")
            .expect("a SQLite URL"),
    )
}

const MIB: u64 = 1 << 20;

/// 24 batches of 1,000 contributions with long descriptions write about 60 MiB of pages:
/// the log must stay far shorter than that (it starts over once a checkpoint has copied it
/// all), and the database file must receive what was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_stays_short_and_reaches_the_database_file() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let steward = app.network("ckpt", json!({})).await;
    let db_file = sqlite_path(&app);
    let wal_file = PathBuf::from(format!("{}-wal", db_file.display()));
    let description = "x".repeat(1_000);
    let items: Vec<_> = (0..1_000)
        .map(|_| json!({ "kind": "work", "quantity": "1", "unit": "hours", "occurred_at": "2026-01-15T10:00:00Z", "description": description }))
        .collect();
    let body = json!({ "items": items });
    // Three writers at once, as under load: with one, the log is all copied between two
    // writes often enough to start over without the checkpoint thread's help.
    let writer = || async {
        let mut longest_log = 0;
        for _ in 0..8 {
            app.post(
                "/v1/networks/ckpt/contributions/batch",
                Some(&steward.token),
                body.clone(),
            )
            .await
            .ok(201);
            longest_log = longest_log.max(file_len(&wal_file));
        }
        longest_log
    };
    let (a, b, c) = tokio::join!(writer(), writer(), writer());
    let longest_log = a.max(b).max(c);
    assert!(
        longest_log < 24 * MIB,
        "the log grew to {} MiB",
        longest_log / MIB
    );
    // The last checkpoint comes at most a rest after the last write.
    let deadline = Instant::now() + Duration::from_secs(10);
    while file_len(&db_file) < 50 * MIB && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        file_len(&db_file) >= 50 * MIB,
        "the database file holds {} MiB",
        file_len(&db_file) / MIB
    );
    assert_eq!(
        app.count_contributions("ckpt", Some(&steward.token)).await,
        24_000
    );
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Integer)]
    wal_autocheckpoint: i32,
}

/// The pool's connections never checkpoint in their own commits (SQLite's default would,
/// every 1,000 pages, while holding the process's writer turn).
#[tokio::test]
async fn sqlite_pool_connections_leave_checkpoints_to_the_thread() {
    let (_db, url) = TestDb::create(Backend::Sqlite);
    let url = DatabaseUrl::parse(&url).expect("url");
    let settings = PoolSettings {
        max_size: 2,
        connection_timeout: Duration::from_secs(5),
        group_commit: false,
    };
    let db = Db::new(&url, &settings).expect("pool");
    let setting = db
        .run(|conn| {
            diesel::sql_query("PRAGMA wal_autocheckpoint")
                .get_result::<Setting>(conn)
                .map_err(DbError::from)
        })
        .await
        .expect("reads the setting");
    assert_eq!(setting.wal_autocheckpoint, 0);
}

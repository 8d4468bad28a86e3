//! The bundled SQLite is built with the options `.cargo/config.toml` sets: without them every
//! call on a connection takes a mutex, every allocation and page fetch a global one, and a
//! kept statement with a bound LIMIT is compiled again on every run.

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::Integer;

fn used(conn: &mut SqliteConnection, option: &str) -> bool {
    diesel::select(diesel::dsl::sql::<Integer>(&format!(
        "sqlite_compileoption_used('{option}')"
    )))
    .get_result::<i32>(conn)
    .expect("compile option")
        == 1
}

#[test]
fn bundled_sqlite_has_the_projects_build_options() {
    let mut conn = SqliteConnection::establish(":memory:").expect("open");
    conn.batch_execute("SELECT 1").expect("runs");
    assert!(used(&mut conn, "THREADSAFE=2"), "multi-thread mode");
    assert!(
        used(&mut conn, "DEFAULT_MEMSTATUS=0"),
        "no memory statistics"
    );
    assert!(
        !used(&mut conn, "ENABLE_MEMORY_MANAGEMENT"),
        "a page cache per connection"
    );
    // Still thread-safe: connections may move between threads, one at a time.
    assert!(!used(&mut conn, "THREADSAFE=0"));
    assert!(used(&mut conn, "ENABLE_QPSG"), "query planner stability");
    assert!(used(&mut conn, "ENABLE_STMTVTAB"), "the sqlite_stmt table");
}

diesel::table! {
    kept (id) {
        id -> Integer,
        name -> Text,
    }
}

#[derive(QueryableByName, Debug)]
struct Reprepared {
    #[diesel(sql_type = diesel::sql_types::Text)]
    sql: String,
    #[diesel(sql_type = Integer)]
    reprep: i32,
}

/// diesel binds a statement's parameters again on every run, its LIMIT's too (`.first()`).
/// Without the query planner stability guarantee, SQLite 3.53 marks such a statement to be
/// compiled again whenever that parameter is bound, so every run parsed and planned it anew.
#[test]
fn a_kept_statement_with_a_bound_limit_is_not_prepared_again() {
    let mut conn = SqliteConnection::establish(":memory:").expect("open");
    conn.batch_execute(
        "CREATE TABLE kept (id INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL);
         INSERT INTO kept VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    )
    .expect("table");
    for id in [1, 2, 3, 1, 2, 3] {
        let name: String = kept::table
            .filter(kept::id.ge(id))
            .order(kept::id)
            .select(kept::name)
            .first(&mut conn)
            .expect("row");
        assert_eq!(
            name,
            ["one", "two", "three"][usize::try_from(id - 1).expect("index")]
        );
    }
    // Every statement the connection keeps, this query's own among them.
    let kept: Vec<Reprepared> = diesel::sql_query("SELECT sql, reprep FROM sqlite_stmt")
        .load(&mut conn)
        .expect("sqlite_stmt");
    let limited: Vec<&Reprepared> = kept
        .iter()
        .filter(|s| s.sql.contains("FROM `kept`") && s.sql.contains("LIMIT ?"))
        .collect();
    assert_eq!(limited.len(), 1, "diesel kept the statement: {kept:?}");
    assert_eq!(limited[0].reprep, 0, "prepared once, run six times");
}

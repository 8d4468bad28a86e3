//! The bundled SQLite is built with the options `.cargo/config.toml` sets: without them every
//! call on a connection takes a mutex, and every allocation and page fetch a global one.

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
}

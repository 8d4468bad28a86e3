//! Both migration trees: same names, same tables and columns, up/down/up on both backends.

mod common;

use common::{Backend, TestDb};
use holoptic::db::{self, conn::establish, DatabaseUrl};

fn names(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("migration dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn trees_have_the_same_migrations() {
    let root = env!("CARGO_MANIFEST_DIR");
    let sqlite = names(&format!("{root}/migrations/sqlite"));
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names(&format!("{root}/migrations/postgres")));
}

fn columns_after_up_down_up(backend: Backend) -> Vec<String> {
    let (_db, url) = TestDb::create(backend);
    let mut conn = establish(&DatabaseUrl::parse(&url).expect("url")).expect("connect");
    db::migrate(&mut conn).expect("up");
    let first = db::describe_columns(&mut conn).expect("columns");
    db::revert_all(&mut conn).expect("down");
    assert!(
        db::describe_columns(&mut conn).expect("columns").is_empty(),
        "down removes every table"
    );
    db::migrate(&mut conn).expect("up again");
    let second = db::describe_columns(&mut conn).expect("columns");
    assert_eq!(first, second);
    second
}

#[test]
fn both_backends_create_the_same_tables_and_columns() {
    let sqlite = columns_after_up_down_up(Backend::Sqlite);
    let postgres = columns_after_up_down_up(Backend::Postgres);
    assert!(sqlite.contains(&"contributions.quantity".to_owned()));
    assert_eq!(sqlite, postgres);
}

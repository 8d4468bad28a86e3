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

#[derive(diesel::QueryableByName)]
struct OfNetwork {
    #[diesel(sql_type = diesel::sql_types::Text)]
    contribution_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    network_id: String,
}

/// Migrations 000011 and 000012 give every outcome and tag recorded before them their
/// contribution's network, and the outcomes stay append-only.
fn outcomes_get_their_networks(backend: Backend) {
    use diesel::RunQueryDsl;
    use diesel_migrations::MigrationHarness;
    use holoptic::db::conn::AnyConnection;

    let (_db, url) = TestDb::create(backend);
    let mut conn = establish(&DatabaseUrl::parse(&url).expect("url")).expect("connect");
    db::migrate(&mut conn).expect("up");
    // Back to just before 000011 (and whatever came after it).
    let before = |conn: &mut AnyConnection| {
        let applied = match conn {
            AnyConnection::Postgres(pg) => pg.applied_migrations(),
            AnyConnection::Sqlite(lite) => lite.applied_migrations(),
        }
        .expect("applied");
        !applied.iter().any(|v| v.to_string() == "20261203000011")
    };
    while !before(&mut conn) {
        match &mut conn {
            AnyConnection::Postgres(pg) => pg.revert_last_migration(db::POSTGRES_MIGRATIONS),
            AnyConnection::Sqlite(lite) => lite.revert_last_migration(db::SQLITE_MIGRATIONS),
        }
        .expect("down one");
    }
    let at = "'2026-01-01 00:00:00'";
    for (i, network) in ["n1", "n2"].iter().enumerate() {
        for sql in [
            format!(
                "INSERT INTO networks (id, slug, name, description, join_policy, visibility, \
                 approvals_required, rejections_required, created_at, updated_at) \
                 VALUES ('{network}', 'net-{network}', 'N', '', 'open', 'public', 1, 1, {at}, {at})"
            ),
            format!(
                "INSERT INTO agents (id, display_name, wallet_address, created_at) \
                 VALUES ('a{i}', 'A', NULL, {at})"
            ),
            format!(
                "INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, \
                 quantity, unit, description, occurred_at, recorded_at) \
                 VALUES ('c{i}', '{network}', 'a{i}', 'a{i}', 'work', '1', 'hours', 'x', {at}, {at})"
            ),
            format!(
                "INSERT INTO contribution_outcomes (contribution_id, status, decided_at) \
                 VALUES ('c{i}', 'validated', {at})"
            ),
            format!("INSERT INTO contribution_tags (contribution_id, tag) VALUES ('c{i}', 't')"),
        ] {
            diesel::sql_query(sql).execute(&mut conn).expect("old rows");
        }
    }
    db::migrate(&mut conn).expect("up again");
    for table in ["contribution_outcomes", "contribution_tags"] {
        let rows = diesel::sql_query(format!(
            "SELECT contribution_id, network_id FROM {table} ORDER BY contribution_id"
        ))
        .load::<OfNetwork>(&mut conn)
        .expect("rows");
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|o| (o.contribution_id.as_str(), o.network_id.as_str()))
            .collect();
        assert_eq!(got, [("c0", "n1"), ("c1", "n2")], "{table}");
    }
    for refused in [
        "UPDATE contribution_outcomes SET status = 'rejected'",
        "DELETE FROM contribution_outcomes",
    ] {
        assert!(
            diesel::sql_query(refused).execute(&mut conn).is_err(),
            "{refused} must be refused"
        );
    }
}

#[test]
fn outcomes_get_their_networks_on_sqlite() {
    outcomes_get_their_networks(Backend::Sqlite);
}

#[test]
fn outcomes_get_their_networks_on_postgres() {
    outcomes_get_their_networks(Backend::Postgres);
}

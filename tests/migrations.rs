//! Both migration trees: same names, same tables and columns, up/down/up on both backends.

mod common;

use common::{Backend, TestDb};
use holoptic::db::{self, conn::establish, conn::AnyConnection, DatabaseUrl};

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
    let (_db, mut conn) = migrated(backend);
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

/// A fresh database on `backend` with every migration applied (it lasts as long as the
/// `TestDb`).
fn migrated(backend: Backend) -> (TestDb, AnyConnection) {
    let (test_db, _, conn) = migrated_at(backend);
    (test_db, conn)
}

/// Like [`migrated`], with the database's URL.
fn migrated_at(backend: Backend) -> (TestDb, String, AnyConnection) {
    let (test_db, url) = TestDb::create(backend);
    let mut conn = establish(&DatabaseUrl::parse(&url).expect("url")).expect("connect");
    db::migrate(&mut conn).expect("up");
    (test_db, url, conn)
}

/// Reverts migrations until `version` and every later one are undone.
fn down_to_before(conn: &mut AnyConnection, version: &str) {
    use diesel_migrations::MigrationHarness;

    loop {
        let applied = match &mut *conn {
            AnyConnection::Postgres(pg) => pg.applied_migrations(),
            AnyConnection::Sqlite(lite) => lite.applied_migrations(),
        }
        .expect("applied");
        if !applied.iter().any(|v| v.to_string() == version) {
            return;
        }
        match &mut *conn {
            AnyConnection::Postgres(pg) => pg.revert_last_migration(db::POSTGRES_MIGRATIONS),
            AnyConnection::Sqlite(lite) => lite.revert_last_migration(db::SQLITE_MIGRATIONS),
        }
        .expect("down one");
    }
}

/// When the rows the tests below write by hand happened and were recorded.
const AT: &str = "'2026-01-01 00:00:00'";

/// A network `id`, as a row written by hand.
fn network_sql(id: &str) -> String {
    format!(
        "INSERT INTO networks (id, slug, name, description, join_policy, visibility, \
         approvals_required, rejections_required, created_at, updated_at) \
         VALUES ('{id}', 'net-{id}', 'N', '', 'open', 'public', 1, 1, {AT}, {AT})"
    )
}

/// An agent `id`, as a row written by hand.
fn agent_sql(id: &str) -> String {
    format!(
        "INSERT INTO agents (id, display_name, wallet_address, created_at) \
         VALUES ('{id}', 'A', NULL, {AT})"
    )
}

/// An hour of work `id` by `agent` in `network`, correcting `corrects` (SQL: `NULL` or a
/// quoted id), as a row written by hand.
fn contribution_sql(id: &str, network: &str, agent: &str, corrects: &str) -> String {
    recorded_sql(id, network, agent, agent, corrects)
}

/// As [`contribution_sql`], recorded by `recorder`.
fn recorded_sql(id: &str, network: &str, agent: &str, recorder: &str, corrects: &str) -> String {
    format!(
        "INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, quantity, \
         unit, description, corrects, occurred_at, recorded_at) \
         VALUES ('{id}', '{network}', '{agent}', '{recorder}', 'work', '1', 'hours', 'x', \
         {corrects}, {AT}, {AT})"
    )
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

    let (_db, mut conn) = migrated(backend);
    // Back to just before 000011 (and whatever came after it).
    down_to_before(&mut conn, "20261203000011");
    for (i, network) in ["n1", "n2"].iter().enumerate() {
        for sql in [
            network_sql(network),
            agent_sql(&format!("a{i}")),
            contribution_sql(&format!("c{i}"), network, &format!("a{i}"), "NULL"),
            format!(
                "INSERT INTO contribution_outcomes (contribution_id, status, decided_at) \
                 VALUES ('c{i}', 'validated', {AT})"
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

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

/// Migration 000013 (fewer pages per write): the sealer's queue keeps its entries, keyed by
/// network and entry; `corrects` stays unique, now in an index of the corrections alone, which
/// the corrections read uses.
fn fewer_pages_per_write(backend: Backend) {
    use diesel::RunQueryDsl;

    let (_db, mut conn) = migrated(backend);
    down_to_before(&mut conn, "20261206000013");
    let contribution = |id: &str, corrects: &str| contribution_sql(id, "n1", "a1", corrects);
    for sql in [
        network_sql("n1"),
        agent_sql("a1"),
        contribution("c0", "NULL"),
        contribution("c1", "'c0'"),
        "INSERT INTO journal_unsealed (entry_id, network_id) VALUES ('e1', 'n1')".to_owned(),
    ] {
        diesel::sql_query(sql).execute(&mut conn).expect("old rows");
    }
    db::migrate(&mut conn).expect("up again");

    let queued: Vec<OfNetwork> =
        diesel::sql_query("SELECT entry_id AS contribution_id, network_id FROM journal_unsealed")
            .load(&mut conn)
            .expect("queue");
    let queued: Vec<(&str, &str)> = queued
        .iter()
        .map(|q| (q.contribution_id.as_str(), q.network_id.as_str()))
        .collect();
    assert_eq!(queued, [("e1", "n1")]);
    assert!(
        diesel::sql_query(
            "INSERT INTO journal_unsealed (entry_id, network_id) VALUES ('e1', 'n1')"
        )
        .execute(&mut conn)
        .is_err(),
        "an entry is queued once"
    );

    // Contributions without `corrects` are not in the index; a second correction of c0 is
    // still refused.
    diesel::sql_query(contribution("c2", "NULL"))
        .execute(&mut conn)
        .expect("a second contribution that corrects nothing");
    assert!(
        diesel::sql_query(contribution("c3", "'c0'"))
            .execute(&mut conn)
            .is_err(),
        "c0 is corrected once"
    );
    let (definition, plan) = match backend {
        Backend::Sqlite => (
            "SELECT sql AS text FROM sqlite_master WHERE name = 'contributions_corrects'",
            "EXPLAIN QUERY PLAN SELECT corrects FROM contributions \
             WHERE recorded_at <= '2027-01-01' AND corrects >= 'c0' AND corrects <= 'c9'",
        ),
        Backend::Postgres => (
            "SELECT indexdef AS text FROM pg_indexes WHERE indexname = 'contributions_corrects'",
            // The planner's other choices turned off, as for the pages of a computation.
            "EXPLAIN SELECT corrects FROM contributions \
             WHERE recorded_at <= '2027-01-01' AND corrects >= 'c0' AND corrects <= 'c9'",
        ),
    };
    let definition = diesel::sql_query(definition)
        .get_result::<Text>(&mut conn)
        .expect("index")
        .text;
    assert!(
        definition.contains("WHERE") && definition.contains("corrects IS NOT NULL"),
        "{definition}"
    );
    if matches!(backend, Backend::Postgres) {
        diesel::sql_query("SET enable_seqscan = off")
            .execute(&mut conn)
            .expect("set");
    }
    #[derive(diesel::QueryableByName)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = "detail")]
        sqlite: String,
    }
    #[derive(diesel::QueryableByName)]
    struct PgStep {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = "QUERY PLAN")]
        postgres: String,
    }
    let plan: Vec<String> = match backend {
        Backend::Sqlite => diesel::sql_query(plan)
            .load::<Step>(&mut conn)
            .expect("plan")
            .into_iter()
            .map(|s| s.sqlite)
            .collect(),
        Backend::Postgres => diesel::sql_query(plan)
            .load::<PgStep>(&mut conn)
            .expect("plan")
            .into_iter()
            .map(|s| s.postgres)
            .collect(),
    };
    assert!(
        plan.iter()
            .any(|step| step.contains("contributions_corrects")),
        "{plan:?}"
    );
}

#[test]
fn fewer_pages_per_write_on_sqlite() {
    fewer_pages_per_write(Backend::Sqlite);
}

#[test]
fn fewer_pages_per_write_on_postgres() {
    fewer_pages_per_write(Backend::Postgres);
}

/// Migration 000014: the database queues every appended journal entry for the sealer, one at
/// a time and many in one statement, and dropping the trigger (down) stops it.
fn appended_entries_are_queued(backend: Backend) {
    use diesel::prelude::*;
    use holoptic::db::schema::journal_unsealed;

    let (_db, url, mut conn) = migrated_at(backend);
    diesel::sql_query(network_sql("n1"))
        .execute(&mut conn)
        .expect("network");
    let entry = |id: &str| journal_row(id, "n1");
    let queued = |conn: &mut AnyConnection| -> Vec<(String, String)> {
        journal_unsealed::table
            .select((journal_unsealed::network_id, journal_unsealed::entry_id))
            .order(journal_unsealed::entry_id)
            .load(conn)
            .expect("queue")
    };
    db::journal::append(&mut conn, &entry("e1")).expect("one");
    db::journal::append_many(&mut conn, &[entry("e2"), entry("e3"), entry("e4")]).expect("many");
    let want: Vec<(String, String)> = ["e1", "e2", "e3", "e4"]
        .iter()
        .map(|e| ("n1".to_owned(), (*e).to_owned()))
        .collect();
    assert_eq!(queued(&mut conn), want);

    down_to_before(&mut conn, "20261206000014");
    // Reverting 000017 changed the type (collation) of the columns the statements above keep
    // prepared read, which PostgreSQL then refuses to run: a new connection prepares them anew.
    let mut conn = establish(&DatabaseUrl::parse(&url).expect("url")).expect("connect");
    db::journal::append(&mut conn, &entry("e5")).expect("appended without the trigger");
    assert_eq!(queued(&mut conn), want, "nothing queues it after down");
}

#[test]
fn appended_entries_are_queued_on_sqlite() {
    appended_entries_are_queued(Backend::Sqlite);
}

#[test]
fn appended_entries_are_queued_on_postgres() {
    appended_entries_are_queued(Backend::Postgres);
}

/// Migration 000020 (the journal's index by network dropped): the index is gone, and entries
/// appended before and after it are still queued, sealed and read per network.
fn journal_entries_one_index_less(backend: Backend) {
    use diesel::RunQueryDsl;
    use holoptic::db::rows::JournalRow;

    let (_db, mut conn) = migrated(backend);
    down_to_before(&mut conn, "20261208000020");
    for sql in [network_sql("n1"), network_sql("n2")] {
        diesel::sql_query(sql).execute(&mut conn).expect("network");
    }
    db::journal::append_many(
        &mut conn,
        &[
            journal_row("e1", "n1"),
            journal_row("e2", "n1"),
            journal_row("e3", "n2"),
        ],
    )
    .expect("before");
    db::migrate(&mut conn).expect("up again");
    let index = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'journal_entries_network'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = 'journal_entries_network'"
        }
    };
    assert_eq!(count(&mut conn, index), 0, "the index is gone");
    db::journal::append(&mut conn, &journal_row("e4", "n1")).expect("after");

    let ids = |rows: &[JournalRow]| rows.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    let queued = db::journal::unsealed(&mut conn, "n1", None, 10).expect("queue");
    assert_eq!(ids(&queued), ["e1", "e2", "e4"]);
    let head = db::journal::head(&mut conn, "n1").expect("head");
    let now = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("time");
    assert_eq!(
        db::journal::seal(&mut conn, head, &queued, now).expect("seal"),
        3
    );
    let (page, more) =
        db::journal::filtered(&mut conn, "n1", 0, None, None, 10, 1 << 20).expect("page");
    assert!(!more);
    let sealed: Vec<(i64, String)> = page.iter().map(|(e, s)| (s.seq, e.id.clone())).collect();
    assert_eq!(
        sealed,
        [
            (1, "e1".to_owned()),
            (2, "e2".to_owned()),
            (3, "e4".to_owned())
        ]
    );
    assert!(db::journal::unsealed(&mut conn, "n1", None, 10)
        .expect("queue")
        .is_empty());
    let other = db::journal::unsealed(&mut conn, "n2", None, 10).expect("the other network");
    assert_eq!(ids(&other), ["e3"]);
}

#[test]
fn journal_entries_one_index_less_on_sqlite() {
    journal_entries_one_index_less(Backend::Sqlite);
}

#[test]
fn journal_entries_one_index_less_on_postgres() {
    journal_entries_one_index_less(Backend::Postgres);
}

/// Migration 000015: a contribution whose network, agent or recorder is missing is refused with
/// a foreign-key violation on both backends (PostgreSQL checks them once a statement, SQLite
/// with its foreign keys), alone, in a multi-row statement, and in PostgreSQL's `COPY`, which
/// then writes none of its rows. No network or agent can be deleted or have its id changed;
/// their other columns can still be edited. Down puts PostgreSQL's foreign keys back.
fn contribution_references_are_kept(backend: Backend) {
    use diesel::result::{DatabaseErrorKind, Error};
    use diesel::RunQueryDsl;
    use holoptic::db::rows::ContributionRow;

    let (_db, mut conn) = migrated(backend);
    for sql in [
        network_sql("n1"),
        network_sql("n2"),
        agent_sql("a1"),
        agent_sql("a2"),
        contribution_sql("c0", "n1", "a1", "NULL"),
    ] {
        diesel::sql_query(sql).execute(&mut conn).expect("rows");
    }
    // Refused as a foreign key refuses; PostgreSQL's check names the reference missing.
    let refused = |out: Result<usize, Error>, what: &str, names: &str| match out {
        Err(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info))
            if matches!(backend, Backend::Sqlite) || info.message().contains(names) => {}
        other => panic!("{what}: {other:?}"),
    };
    let one = |id: &str, network: &str, agent: &str, recorder: &str| {
        recorded_sql(id, network, agent, recorder, "NULL")
    };
    let count = |conn: &mut AnyConnection| -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT COUNT(*) FROM contributions)",
        ))
        .get_result(conn)
        .expect("count")
    };
    for (sql, what) in [
        (one("c1", "n9", "a1", "a1"), "network_id n9"),
        (one("c1", "n1", "a9", "a1"), "agent_id a9"),
        (one("c1", "n1", "a1", "a9"), "recorded_by a9"),
    ] {
        refused(diesel::sql_query(&sql).execute(&mut conn), &sql, what);
    }
    let at = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("time");
    let row = |id: &str, agent: &str| ContributionRow {
        id: id.to_owned(),
        network_id: "n2".to_owned(),
        agent_id: agent.to_owned(),
        recorded_by: "a2".to_owned(),
        kind: "work".to_owned(),
        quantity: holoptic::db::types::DbDecimal(rust_decimal::Decimal::ONE),
        unit: "hours".to_owned(),
        skill: None,
        description: "x".to_owned(),
        evidence_url: None,
        cites: None,
        corrects: None,
        occurred_at: at,
        recorded_at: at,
    };
    // A batch (`COPY` on PostgreSQL) with one bad row among good ones writes none of them.
    let batch: Vec<ContributionRow> = (0..50)
        .map(|i| row(&format!("b{i:02}"), if i == 37 { "a9" } else { "a1" }))
        .collect();
    refused(
        db::contributions::insert(&mut conn, &batch, &[]).map(|()| 0),
        "a batch with one missing agent",
        "agent_id a9",
    );
    assert_eq!(count(&mut conn), 1, "only c0");
    let good: Vec<ContributionRow> = (0..50).map(|i| row(&format!("g{i:02}"), "a1")).collect();
    db::contributions::insert(&mut conn, &good, &[]).expect("a good batch");
    assert_eq!(count(&mut conn), 51);

    for (sql, what) in [
        ("DELETE FROM networks WHERE id = 'n2'", "deleting a network"),
        ("DELETE FROM agents WHERE id = 'a2'", "deleting an agent"),
        (
            "UPDATE networks SET id = 'n3' WHERE id = 'n2'",
            "a network's id",
        ),
        (
            "UPDATE agents SET id = 'a3' WHERE id = 'a2'",
            "an agent's id",
        ),
    ] {
        assert!(
            diesel::sql_query(sql).execute(&mut conn).is_err(),
            "{what} is refused"
        );
    }
    // A network and an agent nothing refers to are kept all the same.
    diesel::sql_query(network_sql("n4"))
        .execute(&mut conn)
        .expect("n4");
    diesel::sql_query(agent_sql("a4"))
        .execute(&mut conn)
        .expect("a4");
    for sql in [
        "DELETE FROM networks WHERE id = 'n4'",
        "DELETE FROM agents WHERE id = 'a4'",
    ] {
        assert!(diesel::sql_query(sql).execute(&mut conn).is_err(), "{sql}");
    }
    for sql in [
        "UPDATE networks SET name = 'M', id = id WHERE id = 'n2'",
        "UPDATE agents SET display_name = 'B', id = id WHERE id = 'a2'",
    ] {
        assert_eq!(diesel::sql_query(sql).execute(&mut conn).expect(sql), 1);
    }
    if matches!(backend, Backend::Postgres) {
        assert!(diesel::sql_query("TRUNCATE networks CASCADE")
            .execute(&mut conn)
            .is_err());
        assert!(diesel::sql_query("TRUNCATE agents CASCADE")
            .execute(&mut conn)
            .is_err());
    }

    down_to_before(&mut conn, "20261207000015");
    refused(
        diesel::sql_query(one("c1", "n1", "a1", "a9")).execute(&mut conn),
        "a missing recorder after down",
        "contributions_recorded_by_fkey",
    );
    assert_eq!(
        diesel::sql_query("DELETE FROM networks WHERE id = 'n4'")
            .execute(&mut conn)
            .expect("a network nothing refers to can go after down"),
        1
    );
}

#[test]
fn contribution_references_are_kept_on_sqlite() {
    contribution_references_are_kept(Backend::Sqlite);
}

#[test]
fn contribution_references_are_kept_on_postgres() {
    contribution_references_are_kept(Backend::Postgres);
}

/// Migration 000017: on PostgreSQL every text column compares byte by byte ("C"), as SQLite's
/// do, whatever collation the database was created with. Checked on a database created with
/// ICU's en-US collation, where "a1" sorts before "B1" (in bytes "B" is 0x42, "a" 0x61): after
/// the migration ids sort and bound pages in byte order; after its down, in the database's.
#[test]
fn text_is_compared_byte_by_byte_on_postgres() {
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let (_db, url) = TestDb::create_with(
        Backend::Postgres,
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
    );
    let mut conn = establish(&DatabaseUrl::parse(&url).expect("url")).expect("connect");
    db::migrate(&mut conn).expect("up");
    let columns = "SELECT count(*) AS n FROM information_schema.columns \
                   WHERE table_schema = 'public' AND data_type = 'text' \
                   AND table_name <> '__diesel_schema_migrations'";
    let text_columns = count(&mut conn, columns);
    assert!(text_columns > 100, "{text_columns} text columns");
    assert_eq!(
        count(
            &mut conn,
            &format!("{columns} AND collation_name IS DISTINCT FROM 'C'")
        ),
        0,
        "every text column is compared byte by byte"
    );
    for id in ["a1", "B1"] {
        diesel::sql_query(agent_sql(id))
            .execute(&mut conn)
            .expect("agent");
    }
    let ordered = |conn: &mut AnyConnection| -> Vec<String> {
        diesel::sql_query("SELECT id FROM agents ORDER BY id")
            .load::<Row>(conn)
            .expect("ids")
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let after_a = "SELECT count(*) AS n FROM agents WHERE id > 'a'";
    assert_eq!(ordered(&mut conn), ["B1", "a1"]);
    assert_eq!(
        count(&mut conn, after_a),
        1,
        "only a1 is after \"a\" in bytes"
    );

    down_to_before(&mut conn, "20261207000017");
    assert_eq!(
        count(&mut conn, &format!("{columns} AND collation_name = 'C'")),
        0,
        "down gives the columns the database's collation back"
    );
    assert_eq!(ordered(&mut conn), ["a1", "B1"], "en-US order after down");
    assert_eq!(count(&mut conn, after_a), 2);
}

/// A migration run by another instance (as 000017 changes every text column's collation)
/// changes the result type of statements this instance keeps prepared, which PostgreSQL then
/// refuses on every run ("cached plan must not change result type"). The request that meets
/// it answers 503, retryable, and its connection is discarded with its statements: the next
/// request, on a new connection (the pool has one), answers 200.
#[tokio::test]
async fn statements_prepared_before_a_type_change_are_let_go_on_postgres() {
    use common::TestApp;
    use reqwest::{Method, StatusCode};

    let app = TestApp::spawn_configured(Backend::Postgres, |c| c.db_pool_size = 1).await;
    let me = app.agent("Ada").await;
    let get_me = || app.send(Method::GET, "/v1/agents/me", Some(&me.token), None, &[]);
    assert_eq!(get_me().await.status, StatusCode::OK);
    app.sql("ALTER TABLE agents ALTER COLUMN display_name TYPE text COLLATE \"POSIX\"");
    let stale = get_me().await;
    stale.assert_problem(503, None);
    assert_eq!(
        stale.body["type"],
        "urn:holoptic:problem:service-unavailable"
    );
    assert!(stale.headers.contains_key("retry-after"));
    let again = get_me().await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["display_name"], "Ada");
    assert_eq!(get_me().await.status, StatusCode::OK);
}

/// Migration 000017 drops the statistics of every column it changes and gathers them again
/// only for tables with rows: a new database's tables stay never analyzed, as before it
/// (PostgreSQL then plans them by their size as they grow). Analyzed while empty, they were
/// planned as empty until the next ANALYZE: on a server without autovacuum the journal
/// sealer's foreign-key checks then scanned whole tables, and the bench's shares reads fell
/// from 1,000 to about 250 a second.
#[test]
fn statistics_are_gathered_again_only_where_there_are_rows_on_postgres() {
    use diesel::RunQueryDsl;

    // paid_totals is the exception, left so by migration 000016's CLUSTER (which records the
    // count it rewrote, none on a new database); each network's sums are read whole, which
    // an empty-planned table serves the same way.
    let analyzed = "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s \
                    ON s.oid = c.relnamespace WHERE s.nspname = current_schema() \
                    AND c.relkind = 'r' AND c.reltuples >= 0 AND c.relname <> 'paid_totals'";
    let agent_stats = "SELECT count(*) AS n FROM pg_stats \
                       WHERE tablename = 'agents' AND attname = 'id'";
    let (_db, mut conn) = migrated(Backend::Postgres);
    assert_eq!(count(&mut conn, analyzed), 0, "no table analyzed empty");

    down_to_before(&mut conn, "20261207000017");
    for id in ["a1", "a2"] {
        diesel::sql_query(agent_sql(id))
            .execute(&mut conn)
            .expect("agent");
    }
    diesel::sql_query("ANALYZE agents")
        .execute(&mut conn)
        .expect("analyze");
    assert_eq!(count(&mut conn, agent_stats), 1);
    db::migrate(&mut conn).expect("up again");
    assert_eq!(
        count(&mut conn, agent_stats),
        1,
        "agents' ids analyzed again"
    );
    assert_eq!(
        count(&mut conn, &format!("{analyzed} AND c.relname <> 'agents'")),
        0,
        "the empty tables are still never analyzed"
    );
}

/// The answer of `sql`, one integer in a column named `n`.
fn count(conn: &mut AnyConnection, sql: &str) -> i64 {
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .expect(sql)
        .n
}

/// A journal entry of `network` at 2026-01-01, its body naming its id.
fn journal_row(id: &str, network: &str) -> holoptic::db::rows::JournalRow {
    holoptic::db::rows::JournalRow {
        id: id.to_owned(),
        network_id: network.to_owned(),
        recorded_at: chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("time"),
        actor: None,
        kind: "test".to_owned(),
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

//! A network's contributions read page by page for a computation
//! (`db::contributions::each_page`). On PostgreSQL, when pending contributions do not count,
//! a page is one query with the outcomes joined and the next page's query is sent before the
//! last page is handed on; otherwise, and on SQLite, a page is the contributions, then their
//! outcomes. Either way the pages must hold the same counted contributions, in id order, with
//! their tags and corrections, at any page size. Read without the unit and the skill (for an
//! equation that reads neither), and without the status where only one counts, they hold the
//! same contributions with the same facts otherwise.

mod common;

use chrono::{NaiveDate, NaiveDateTime};
use common::{Backend, TestDb};
use diesel::RunQueryDsl;
use holoptic::db::contributions::{each_page, Counted, PageBounds, PageFacts};
use holoptic::db::{self, conn::establish, conn::AnyConnection, DatabaseUrl};
use holoptic::domain::contribution::Status;

/// Contributions of the network read, numbered 0 to 59 (`c000a` … `c059a`), plus `c060a`,
/// which corrects `c012a`.
const MANY: usize = 60;

fn at(month: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("time")
}

/// What contribution `i` of the network should read as in January's snapshot.
fn expected_status(i: usize) -> Status {
    if i == 12 {
        Status::Superseded
    } else if i % 5 == 0 || i % 7 == 3 {
        // No outcome, or one decided after the snapshot.
        Status::Pending
    } else if i % 5 == 1 {
        Status::Rejected
    } else {
        Status::Validated
    }
}

/// A migrated database holding network `n1`'s contributions above, interleaved by id with
/// network `n2`'s, every one of which is validated.
fn seeded(backend: Backend) -> (TestDb, AnyConnection) {
    let (test_db, url) = TestDb::create(backend);
    let mut conn = establish(&DatabaseUrl::parse(&url).expect("url")).expect("connect");
    db::migrate(&mut conn).expect("up");
    let jan = "'2026-01-01 00:00:00'";
    let mut sql = vec![];
    for n in ["n1", "n2"] {
        sql.push(format!(
            "INSERT INTO networks (id, slug, name, description, join_policy, visibility, \
             approvals_required, rejections_required, created_at, updated_at) \
             VALUES ('{n}', 'net-{n}', 'N', '', 'open', 'public', 1, 1, {jan}, {jan})"
        ));
    }
    for a in ["a0", "a1", "a2"] {
        sql.push(format!(
            "INSERT INTO agents (id, display_name, wallet_address, created_at) \
             VALUES ('{a}', 'A', NULL, {jan})"
        ));
    }
    // Quantities, skills and times that differ from one contribution to the next, so that a
    // column read into the wrong field shows.
    let contribution =
        |id: &str, net: &str, agent: &str, corrects: &str, occurred: &str, recorded: &str| {
            let n: u32 = id[1..4].parse().expect("number");
            let skill = if n % 4 == 0 { "'design'" } else { "NULL" };
            let occurred = if occurred == jan {
                format!("'2026-01-01 {:02}:{:02}:00'", n % 24, n % 60)
            } else {
                occurred.to_owned()
            };
            format!(
            "INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, quantity, \
             unit, skill, description, corrects, occurred_at, recorded_at) \
             VALUES ('{id}', '{net}', '{agent}', '{agent}', 'work', '{n}.25', 'hours', {skill}, \
             'x', {corrects}, {occurred}, {recorded})"
        )
        };
    let outcome = |id: &str, net: &str, status: &str, decided: &str| {
        format!(
            "INSERT INTO contribution_outcomes (contribution_id, status, decided_at, network_id) \
             VALUES ('{id}', '{status}', {decided}, '{net}')"
        )
    };
    let feb = "'2026-02-01 00:00:00'";
    for i in 0..MANY {
        let id = format!("c{i:03}a");
        let agent = format!("a{}", i % 3);
        sql.push(contribution(&id, "n1", &agent, "NULL", jan, jan));
        if i % 5 != 0 {
            let status = if i % 5 == 1 { "rejected" } else { "validated" };
            let decided = if i % 7 == 3 { feb } else { jan };
            sql.push(outcome(&id, "n1", status, decided));
        }
        let other = format!("c{i:03}b");
        sql.push(contribution(&other, "n2", "a0", "NULL", jan, jan));
        sql.push(outcome(&other, "n2", "validated", jan));
    }
    // c012a corrected; one that happened after the cut-off and one recorded after the
    // snapshot, both validated, neither read.
    sql.push(contribution("c060a", "n1", "a1", "'c012a'", jan, jan));
    sql.push(outcome("c060a", "n1", "validated", jan));
    sql.push(contribution(
        "c061a",
        "n1",
        "a1",
        "NULL",
        "'2026-03-01 00:00:00'",
        jan,
    ));
    sql.push(outcome("c061a", "n1", "validated", jan));
    sql.push(contribution(
        "c062a",
        "n1",
        "a1",
        "NULL",
        jan,
        "'2026-03-01 00:00:00'",
    ));
    sql.push(outcome("c062a", "n1", "validated", jan));
    for (id, tag) in [
        ("c013a", "design"),
        ("c013a", "x"),
        ("c047a", "design"),
        ("c013b", "design"),
    ] {
        let net = if id.ends_with('a') { "n1" } else { "n2" };
        sql.push(format!(
            "INSERT INTO contribution_tags (contribution_id, tag, network_id) \
             VALUES ('{id}', '{tag}', '{net}')"
        ));
    }
    for s in sql {
        diesel::sql_query(&s).execute(&mut conn).expect(&s);
    }
    (test_db, conn)
}

/// One contribution as a page gave it: id, status, tags.
type Read = (String, Status, Vec<String>);

/// Network `n1`'s pages of at most `limit` in January's snapshot (cut-off and as-of
/// 2026-01-15), as `counting` reads them, each checked to be at most `limit` long.
fn pages(conn: &mut AnyConnection, counting: &[Status], limit: i64) -> Vec<Read> {
    pages_of(conn, counting, limit, PageFacts::All)
        .into_iter()
        .map(|c| (c.id, c.status, c.tags))
        .collect()
}

/// Every fact of a contribution as a page gave it.
type Facts = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    Vec<String>,
    Status,
);

fn facts(c: Counted) -> Facts {
    let mut tags = c.tags;
    tags.sort();
    (
        c.id,
        c.agent_id,
        c.kind.as_str().to_owned(),
        c.quantity.to_string(),
        c.unit,
        c.skill,
        c.occurred_at,
        tags,
        c.status,
    )
}

/// [`pages`], with each contribution's every fact, read with `facts` only.
fn pages_of(
    conn: &mut AnyConnection,
    counting: &[Status],
    limit: i64,
    facts: PageFacts,
) -> Vec<Counted> {
    let mid = at(1) + chrono::Duration::days(14);
    let first = PageBounds {
        network_id: "n1",
        cutoff: mid,
        as_of: mid,
        after: "",
        upto: None,
        limit,
        facts,
    };
    let mut out = vec![];
    db::contributions::in_id_order(conn, |conn| {
        each_page(conn, &first, counting, |page| {
            assert!(
                page.len() <= usize::try_from(limit).expect("limit"),
                "a page past its limit"
            );
            out.extend(page);
            Ok::<_, diesel::result::Error>(())
        })
    })
    .expect("pages");
    let ids: Vec<&String> = out.iter().map(|c| &c.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "not in id order: {ids:?}"
    );
    out
}

/// What a computation counting `counting` keeps of what it read.
fn counted(read: Vec<Read>, counting: &[Status]) -> Vec<Read> {
    read.into_iter()
        .filter(|r| counting.contains(&r.1))
        .collect()
}

fn expected(counting: &[Status]) -> Vec<Read> {
    let mut out: Vec<Read> = (0..MANY)
        .map(|i| (format!("c{i:03}a"), expected_status(i), vec![]))
        .chain([("c060a".to_owned(), Status::Validated, vec![])])
        .filter(|r| counting.contains(&r.1))
        .collect();
    for r in &mut out {
        if r.0 == "c013a" {
            r.2 = vec!["design".into(), "x".into()];
        } else if r.0 == "c047a" {
            r.2 = vec!["design".into()];
        }
    }
    out
}

fn pages_hold_what_counts(backend: Backend) {
    let (_db, mut conn) = seeded(backend);
    let sorted_tags = |mut read: Vec<Read>| {
        for r in &mut read {
            r.2.sort();
        }
        read
    };
    for counting in [
        vec![Status::Validated],
        vec![Status::Validated, Status::Rejected],
        vec![Status::Rejected],
        vec![Status::Pending, Status::Validated],
    ] {
        let want = expected(&counting);
        assert!(!want.is_empty());
        for limit in [1, 2, 7, 1000] {
            let read = pages(&mut conn, &counting, limit);
            // Joined on PostgreSQL, nothing is read that cannot count but a superseded one.
            if matches!(backend, Backend::Postgres) && !counting.contains(&Status::Pending) {
                assert!(
                    read.iter()
                        .all(|r| counting.contains(&r.1) || r.1 == Status::Superseded),
                    "{counting:?} read {read:?}"
                );
            }
            assert_eq!(
                sorted_tags(counted(read, &counting)),
                want,
                "{counting:?}, pages of {limit}"
            );
        }
    }
    // Without the unit and the skill, and without the status where one counts: the same
    // contributions, the unit empty and no skill, every other fact the same. With them, the
    // facts written.
    for counting in [
        vec![Status::Validated],
        vec![Status::Validated, Status::Rejected],
        vec![Status::Pending, Status::Validated],
    ] {
        for limit in [1, 7, 1000] {
            let all: Vec<Facts> = pages_of(&mut conn, &counting, limit, PageFacts::All)
                .into_iter()
                .map(facts)
                .collect();
            let c012 = all.iter().find(|f| f.0 == "c012a");
            assert!(
                c012.is_none_or(|f| f.3 == "12.25"
                    && f.4 == "hours"
                    && f.5.as_deref() == Some("design")),
                "{c012:?}"
            );
            let c013 = all.iter().find(|f| f.0 == "c013a").expect("c013a counts");
            assert_eq!(
                (c013.3.as_str(), c013.4.as_str(), c013.5.as_deref()),
                ("13.25", "hours", None)
            );
            let narrowed: Vec<Facts> = all
                .into_iter()
                .map(|mut f| {
                    f.4 = String::new();
                    f.5 = None;
                    f
                })
                .collect();
            let narrow: Vec<Facts> =
                pages_of(&mut conn, &counting, limit, PageFacts::NoUnitOrSkill)
                    .into_iter()
                    .map(facts)
                    .collect();
            assert_eq!(narrow, narrowed, "{counting:?}, pages of {limit}");
        }
    }

    // A limit of nothing reads nothing, and ends.
    for counting in [vec![Status::Validated], vec![Status::Pending]] {
        assert_eq!(pages(&mut conn, &counting, 0), vec![]);
    }
    // The superseded contribution is read with its outcome's status replaced, whichever way.
    let validated = pages(&mut conn, &[Status::Validated], 5);
    assert!(validated
        .iter()
        .any(|r| r.0 == "c012a" && r.1 == Status::Superseded));

    // A failure while a page is handed on stops the read with that failure, and the
    // connection still answers (on PostgreSQL the next page's query was already sent).
    let first = PageBounds {
        network_id: "n1",
        cutoff: at(2),
        as_of: at(2),
        after: "",
        upto: None,
        limit: 3,
        facts: PageFacts::All,
    };
    let mut handed = 0;
    let out = db::contributions::in_id_order(&mut conn, |conn| {
        each_page(conn, &first, &[Status::Validated], |_| {
            handed += 1;
            if handed == 2 {
                Err(diesel::result::Error::NotFound)
            } else {
                Ok(())
            }
        })
    });
    assert!(
        matches!(out, Err(diesel::result::Error::NotFound)),
        "{out:?}"
    );
    assert_eq!(handed, 2);
    assert_eq!(pages(&mut conn, &[Status::Validated], 4), validated);
}

#[test]
fn pages_hold_what_counts_on_sqlite() {
    pages_hold_what_counts(Backend::Sqlite);
}

#[test]
fn pages_hold_what_counts_on_postgres() {
    pages_hold_what_counts(Backend::Postgres);
}

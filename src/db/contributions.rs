//! Queries on contributions, their tags, validations and outcomes.
//!
//! A contribution's status is derived, never edited: `superseded` when a later
//! contribution corrects it, else the outcome recorded when validations reached a threshold,
//! else `pending`.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::pg::{Pg, PgRowByRowLoadingMode};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamp};

use super::rows::{ContributionRow, IdempotencyRow, JournalRow, OutcomeRow, TagRow, ValidationRow};
use super::schema::{
    contribution_outcomes, contribution_tags, contributions, idempotency_keys, journal_entries,
    validations,
};
use super::together::Together;
use super::types::Code;
use super::AnyConnection;
use crate::domain::contribution::{Kind, Status};

/// Rows per multi-row INSERT: well under both backends' bind-parameter limits.
const INSERT_CHUNK: usize = 500;

/// A contribution with everything derived about it.
#[derive(Debug, Clone)]
pub struct ContributionView {
    /// The stored row.
    pub row: ContributionRow,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its derived status.
    pub status: Status,
    /// The contribution that corrects it, if any.
    pub corrected_by: Option<String>,
    /// Approvals so far.
    pub approvals: i64,
    /// Rejections so far.
    pub rejections: i64,
}

/// Writes one contribution, its tags, its journal entry and its request's key row (if the
/// request has a key) in one statement on PostgreSQL ([`super::together`]): outside a
/// transaction, all of them or none, in one round trip instead of five (`BEGIN`, three
/// INSERTs, `COMMIT`).
pub fn insert_together(
    conn: &mut PgConnection,
    row: &ContributionRow,
    tags: &[TagRow],
    entry: &JournalRow,
    key: Option<&IdempotencyRow>,
) -> QueryResult<()> {
    let contribution = diesel::insert_into(contributions::table).values(row);
    let journal = diesel::insert_into(journal_entries::table).values(entry);
    let tagged = || diesel::insert_into(contribution_tags::table).values(tags);
    let keyed = |key| diesel::insert_into(idempotency_keys::table).values(key);
    match (tags.is_empty(), key) {
        (true, None) => Together((contribution, journal)).execute(conn),
        (true, Some(key)) => Together((contribution, journal, keyed(key))).execute(conn),
        (false, None) => Together((contribution, tagged(), journal)).execute(conn),
        (false, Some(key)) => Together((contribution, tagged(), journal, keyed(key))).execute(conn),
    }
    .map(|_| ())
}

/// Inserts contributions and their tags with multi-row INSERTs. The multi-backend
/// connection cannot batch, so this runs the same statement on the concrete connection.
pub fn insert(
    conn: &mut AnyConnection,
    rows: &[ContributionRow],
    tags: &[TagRow],
) -> QueryResult<()> {
    match conn {
        // A batch's rows go in by binary COPY: a multi-row INSERT of 500 rows is a statement of
        // 7,000 parameters that PostgreSQL parses and plans anew every time.
        AnyConnection::Postgres(c) if rows.len() > 1 => {
            diesel::copy_from(contributions::table)
                .from_insertable(rows)
                .execute(c)?;
            if !tags.is_empty() {
                diesel::copy_from(contribution_tags::table)
                    .from_insertable(tags)
                    .execute(c)?;
            }
        }
        _ => {
            if let [row] = rows {
                // One row (a single POST) goes in as one row, not as a batch of one: diesel
                // keeps a one-row statement prepared, and never a batch's.
                let insert = diesel::insert_into(contributions::table).values(row);
                on_backend!(conn, |c| insert.execute(c))?;
            } else {
                for chunk in rows.chunks(INSERT_CHUNK) {
                    on_backend!(conn, |c| diesel::insert_into(contributions::table)
                        .values(chunk)
                        .execute(c)?);
                }
            }
            for chunk in tags.chunks(INSERT_CHUNK) {
                on_backend!(conn, |c| diesel::insert_into(contribution_tags::table)
                    .values(chunk)
                    .execute(c)?);
            }
        }
    }
    Ok(())
}

/// Finds a contribution of a network.
pub fn find(
    conn: &mut AnyConnection,
    network_id: &str,
    id: &str,
) -> QueryResult<Option<ContributionRow>> {
    contributions::table
        .filter(contributions::network_id.eq(network_id))
        .filter(contributions::id.eq(id))
        .select(ContributionRow::as_select())
        .get_result(conn)
        .optional()
}

/// Which of `ids` exist in `network_id` (to check `cites` and `corrects` targets).
pub fn existing(
    conn: &mut AnyConnection,
    network_id: &str,
    ids: &[String],
) -> QueryResult<Vec<ContributionRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    contributions::table
        .filter(contributions::network_id.eq(network_id))
        .filter(contributions::id.eq_any(ids))
        .select(ContributionRow::as_select())
        .load(conn)
}

/// Which of `ids` are already corrected by some contribution.
pub fn corrected(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let pairs: Vec<(Option<String>, String)> = contributions::table
        .filter(contributions::corrects.eq_any(ids))
        .select((contributions::corrects, contributions::id))
        .load(conn)?;
    Ok(pairs
        .into_iter()
        .filter_map(|(target, by)| target.map(|t| (t, by)))
        .collect())
}

/// Views of rows inserted in the current transaction, with their `tags`: nothing can have
/// validated or corrected them yet, so nothing is read back.
pub fn fresh_views(rows: Vec<ContributionRow>, tags: &[TagRow]) -> Vec<ContributionView> {
    let mut by_row: HashMap<&str, Vec<String>> = HashMap::new();
    for t in tags {
        by_row
            .entry(t.contribution_id.as_str())
            .or_default()
            .push(t.tag.clone());
    }
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let mut own = by_row.remove(row.id.as_str()).unwrap_or_default();
        own.sort_unstable();
        views.push(ContributionView {
            tags: own,
            status: Status::Pending,
            corrected_by: None,
            approvals: 0,
            rejections: 0,
            row,
        });
    }
    views
}

/// Adds tags, statuses and validation counts to rows.
pub fn views(
    conn: &mut AnyConnection,
    rows: Vec<ContributionRow>,
) -> QueryResult<Vec<ContributionView>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    for t in contribution_tags::table
        .filter(contribution_tags::contribution_id.eq_any(&ids))
        .order((contribution_tags::contribution_id, contribution_tags::tag))
        .select(TagRow::as_select())
        .load(conn)?
    {
        tags.entry(t.contribution_id).or_default().push(t.tag);
    }
    let outcomes: HashMap<String, String> = contribution_outcomes::table
        .filter(contribution_outcomes::contribution_id.eq_any(&ids))
        .select((
            contribution_outcomes::contribution_id,
            contribution_outcomes::status,
        ))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let corrected_by = corrected(conn, &ids)?;
    let counts: Vec<(String, String, i64)> = validations::table
        .filter(validations::contribution_id.eq_any(&ids))
        .group_by((validations::contribution_id, validations::decision))
        .select((
            validations::contribution_id,
            validations::decision,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let count = |d: &str| {
            counts
                .iter()
                .find(|(id, dec, _)| *id == row.id && dec == d)
                .map_or(0, |(_, _, n)| *n)
        };
        let by = corrected_by.get(&row.id).cloned();
        let status = if by.is_some() {
            Status::Superseded
        } else {
            outcomes
                .get(&row.id)
                .and_then(|s| Status::from_db(s))
                .unwrap_or(Status::Pending)
        };
        views.push(ContributionView {
            tags: tags.remove(&row.id).unwrap_or_default(),
            status,
            corrected_by: by,
            approvals: count("approve"),
            rejections: count("reject"),
            row,
        });
    }
    Ok(views)
}

/// Filters for listing contributions.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this agent's.
    pub agent_id: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only those with this tag.
    pub tag: Option<String>,
    /// occurred_at ≥ this.
    pub from: Option<NaiveDateTime>,
    /// occurred_at < this.
    pub to: Option<NaiveDateTime>,
    /// Only ids before this (the cursor: pages go newest first).
    pub before: Option<String>,
}

/// A page of a network's contributions, newest first.
pub fn list(
    conn: &mut AnyConnection,
    network_id: &str,
    f: &ListFilter,
    limit: i64,
) -> QueryResult<Vec<ContributionRow>> {
    let correcting = diesel::alias!(contributions as correcting);
    let superseded_ids = correcting
        .filter(correcting.field(contributions::corrects).is_not_null())
        .filter(
            correcting
                .field(contributions::network_id)
                .eq(network_id.to_owned()),
        )
        .select(correcting.field(contributions::corrects));
    let mut q = contributions::table
        .filter(contributions::network_id.eq(network_id.to_owned()))
        .select(ContributionRow::as_select())
        .into_boxed();
    if let Some(a) = &f.agent_id {
        q = q.filter(contributions::agent_id.eq(a.clone()));
    }
    if let Some(k) = &f.kind {
        q = q.filter(contributions::kind.eq(k.clone()));
    }
    if let Some(t) = &f.tag {
        q = q.filter(
            contributions::id.eq_any(
                contribution_tags::table
                    .filter(contribution_tags::network_id.eq(network_id.to_owned()))
                    .filter(contribution_tags::tag.eq(t.clone()))
                    .select(contribution_tags::contribution_id),
            ),
        );
    }
    if let Some(from) = f.from {
        q = q.filter(contributions::occurred_at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(contributions::occurred_at.lt(to));
    }
    if let Some(b) = &f.before {
        q = q.filter(contributions::id.lt(b.clone()));
    }
    let decided = |status: &'static str| {
        contribution_outcomes::table
            .filter(contribution_outcomes::network_id.eq(network_id.to_owned()))
            .filter(contribution_outcomes::status.eq(status))
            .select(contribution_outcomes::contribution_id)
    };
    q = match f.status {
        None => q,
        Some(Status::Superseded) => q.filter(contributions::id.nullable().eq_any(superseded_ids)),
        Some(Status::Pending) => q
            .filter(contributions::id.nullable().ne_all(superseded_ids))
            .filter(
                contributions::id.ne_all(
                    contribution_outcomes::table
                        .filter(contribution_outcomes::network_id.eq(network_id.to_owned()))
                        .select(contribution_outcomes::contribution_id),
                ),
            ),
        Some(s @ (Status::Validated | Status::Rejected)) => q
            .filter(contributions::id.nullable().ne_all(superseded_ids))
            .filter(contributions::id.eq_any(decided(s.as_str()))),
    };
    // On PostgreSQL with `random_page_cost` as for computations' pages: at the default a page
    // far back in one network's history was a backward walk of the primary key filtered by
    // network, through every other network's rows in between (36 ms for the 20 oldest of a
    // network behind 104,000 of another).
    with_settings(
        conn,
        &[("random_page_cost", PAGE_RANDOM_PAGE_COST)],
        |conn| q.order(contributions::id.desc()).limit(limit).load(conn),
    )
}

/// Takes the row lock that serialises validations of one contribution on PostgreSQL (two
/// validators racing to the threshold must see each other's vote). SQLite transactions
/// already hold the database write lock from `BEGIN IMMEDIATE`.
pub fn lock(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        contributions::table
            .find(id)
            .select(contributions::id)
            // Not `FOR UPDATE`, which would also wait for (and deadlock with) the
            // foreign-key checks of inserts that reference the contribution.
            .for_no_key_update()
            .first::<String>(pg)?;
    }
    Ok(())
}

/// The recorded outcome of a contribution, if any.
pub fn outcome(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<String>> {
    contribution_outcomes::table
        .find(id)
        .select(contribution_outcomes::status)
        .get_result(conn)
        .optional()
}

/// Has `validator` already validated `contribution`?
pub fn has_validated(
    conn: &mut AnyConnection,
    contribution: &str,
    validator: &str,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        validations::table
            .filter(validations::contribution_id.eq(contribution))
            .filter(validations::validator_id.eq(validator)),
    ))
    .get_result(conn)
}

/// Stores a validation.
pub fn insert_validation(conn: &mut AnyConnection, row: &ValidationRow) -> QueryResult<()> {
    diesel::insert_into(validations::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// (approvals, rejections) of a contribution.
pub fn counts(conn: &mut AnyConnection, contribution: &str) -> QueryResult<(i64, i64)> {
    let rows: Vec<(String, i64)> = validations::table
        .filter(validations::contribution_id.eq(contribution))
        .group_by(validations::decision)
        .select((validations::decision, diesel::dsl::count_star()))
        .load(conn)?;
    let get = |d: &str| rows.iter().find(|(dec, _)| dec == d).map_or(0, |(_, n)| *n);
    Ok((get("approve"), get("reject")))
}

/// Records that a contribution was decided.
pub fn insert_outcome(conn: &mut AnyConnection, row: &OutcomeRow) -> QueryResult<()> {
    diesel::insert_into(contribution_outcomes::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A page of a contribution's validations, oldest first.
pub fn validations_of(
    conn: &mut AnyConnection,
    contribution: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ValidationRow>> {
    let mut q = validations::table
        .filter(validations::contribution_id.eq(contribution.to_owned()))
        .select(ValidationRow::as_select())
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(validations::id.gt(a.to_owned()));
    }
    q.order(validations::id).limit(limit).load(conn)
}

/// A page of the validations `validator` made in a network, oldest first.
pub fn validations_by(
    conn: &mut AnyConnection,
    network_id: &str,
    validator: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ValidationRow>> {
    let in_network = contributions::table
        .filter(contributions::network_id.eq(network_id.to_owned()))
        .select(contributions::id);
    let mut q = validations::table
        .filter(validations::validator_id.eq(validator.to_owned()))
        .filter(validations::contribution_id.eq_any(in_network))
        .select(ValidationRow::as_select())
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(validations::id.gt(a.to_owned()));
    }
    q.order(validations::id).limit(limit).load(conn)
}

/// What a computation reads of one counted contribution.
#[derive(Debug, Clone)]
pub struct Counted {
    /// Contribution id.
    pub id: String,
    /// Whose.
    pub agent_id: String,
    /// Kind (`other` for a kind this version does not know).
    pub kind: Kind,
    /// Quantity.
    pub quantity: rust_decimal::Decimal,
    /// Unit (empty when the page was read without it: [`PageFacts::NoUnitOrSkill`]).
    pub unit: String,
    /// Skill (None when the page was read without it).
    pub skill: Option<String>,
    /// When it happened.
    pub occurred_at: NaiveDateTime,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its status as it stood at `as_of`.
    pub status: Status,
}

/// Which of a contribution's facts a page of [`snapshot_page`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFacts {
    /// Every field of [`Counted`].
    All,
    /// All but the unit and the skill, left empty: for an equation that reads neither
    /// ([`crate::domain::equation::Compiled::reads_unit_or_skill`]). Every column a row
    /// carries costs on both sides of a read, a row at a time: PostgreSQL reads and sends it,
    /// and libpq copies each column's description into each row's result. Without the two
    /// (and without the status where only one counts, see [`joined_rows`]), a
    /// 50,000-contribution preview on PostgreSQL took 16% fewer of the server's instructions
    /// (bench/analysis.md).
    NoUnitOrSkill,
}

/// What a table computed at `at` depends on besides the journal, over every contribution of
/// a network, in one scan: the latest `occurred_at` at or before `at`, the earliest after it
/// (between the two, the contributions that happened by a date are those that happened by
/// `at`), and the latest `recorded_at`.
pub fn dates_around(
    conn: &mut AnyConnection,
    network_id: &str,
    at: NaiveDateTime,
) -> QueryResult<DatesAround> {
    use diesel::dsl::{case_when, max, min};
    let occurred = contributions::occurred_at;
    let (before, after, recorded) = contributions::table
        .filter(contributions::network_id.eq(network_id))
        .select((
            max(case_when(occurred.le(at), occurred)),
            min(case_when(occurred.gt(at), occurred)),
            max(contributions::recorded_at),
        ))
        .get_result(conn)?;
    Ok(DatesAround {
        before,
        after,
        recorded,
    })
}

/// See [`dates_around`].
pub struct DatesAround {
    /// The latest `occurred_at` at or before the date.
    pub before: Option<NaiveDateTime>,
    /// The earliest `occurred_at` after it.
    pub after: Option<NaiveDateTime>,
    /// The latest `recorded_at`.
    pub recorded: Option<NaiveDateTime>,
}

/// The latest time an outcome of a network's contributions was decided.
pub fn last_decided(
    conn: &mut AnyConnection,
    network_id: &str,
) -> QueryResult<Option<NaiveDateTime>> {
    contribution_outcomes::table
        .filter(contribution_outcomes::network_id.eq(network_id))
        .select(diesel::dsl::max(contribution_outcomes::decided_at))
        .get_result(conn)
}

/// The columns a computation reads of a contribution, as [`CountedCols`].
type CountedColumns = (
    contributions::id,
    contributions::agent_id,
    contributions::kind,
    contributions::quantity,
    contributions::unit,
    contributions::skill,
    contributions::occurred_at,
);

type CountedCols = (
    String,
    String,
    Code<Kind>,
    super::types::DbDecimal,
    String,
    Option<String>,
    super::types::FastTimestamp,
);

/// The columns of [`PageFacts::NoUnitOrSkill`], as [`CoreCols`].
type CoreColumns = (
    contributions::id,
    contributions::agent_id,
    contributions::kind,
    contributions::quantity,
    contributions::occurred_at,
);

type CoreCols = (
    String,
    String,
    Code<Kind>,
    super::types::DbDecimal,
    super::types::FastTimestamp,
);

/// A row of [`CoreColumns`] as one of [`CountedColumns`], the unit empty and no skill.
fn widened((id, agent_id, kind, quantity, occurred_at): CoreCols) -> CountedCols {
    (
        id,
        agent_id,
        kind,
        quantity,
        String::new(),
        None,
        occurred_at,
    )
}

/// `column <= at` on SQLite, comparing `+column`, text against text. The columns are declared
/// `TIMESTAMP`, which gives them numeric affinity, so a plain comparison tried to read the
/// bound text as a number again on every row (`sqlite3AtoF`, about 4% of a preview); `+column`
/// has no affinity, and text against text is what the comparison came to anyway.
fn sqlite_not_after<QS>(
    column: &'static str,
    at: NaiveDateTime,
) -> Box<dyn BoxableExpression<QS, diesel::sqlite::Sqlite, SqlType = Bool>> {
    Box::new(sql::<Bool>(&format!("+{column} <= ")).bind::<Timestamp, _>(at))
}

/// `column <= at` on PostgreSQL, as SQL text: that keeps the statement out of diesel's
/// prepared-statement cache, so PostgreSQL plans each run with its parameters. A cached
/// statement gets a generic plan after five runs, chosen without knowing the network: for a
/// page of one network's contributions it scanned the primary key from the page on and
/// filtered by network, so the network's last page walked every later contribution of every
/// other network (a 52-week preview took about 830 ms instead of 375 ms beside a network of
/// 1.1 million contributions). Planning a page costs far less than reading it.
fn pg_not_after<QS>(
    column: &'static str,
    at: NaiveDateTime,
) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>> {
    Box::new(sql::<Bool>(&format!("{column} <= ")).bind::<Timestamp, _>(at))
}

/// The plans PostgreSQL may not use for a page of contributions: what remains is the one a
/// page needs at any size, a range of the `(network_id, id)` index walked in order and
/// stopping at the page's end (and a range of the outcomes' `(network_id, contribution_id)`
/// index).
const NOT_FOR_PAGES: [&str; 5] = [
    "enable_sort",
    "enable_bitmapscan",
    "enable_seqscan",
    "enable_hashjoin",
    "enable_nestloop",
];

/// The cost PostgreSQL's planner gives a page fetched out of order while a network's
/// contributions are read page by page, for a computation or a listing (its default is 4,
/// against 1 for one read in order; 1.1 is the usual setting for SSDs).
/// Ids are ordered by time and rows are written in time order, so the primary key's order
/// follows the table's and the default made a walk of the primary key, filtered by network,
/// look cheaper than the network's own index, whose rows are spread among the other
/// networks': with networks writing at the same time a page read all of their rows in its id
/// range (50 times its own with 50 networks).
const PAGE_RANDOM_PAGE_COST: &str = "1.1";

/// Parallel workers a page's plan may start: none. A page is a few milliseconds of work, and
/// PostgreSQL starts a plan's workers afresh for every query. With the outcomes joined
/// ([`snapshot_page`]), the second half of a 1M network's pages was planned as a `Gather
/// Merge` over a parallel walk of the primary key, filtered by network: 22 ms a page instead
/// of 12, and the workers took the cores the service weighs the pages on (a 1M preview took
/// 2.5 s instead of 1.6).
const PAGE_PARALLEL_WORKERS: &str = "0";

/// Runs `read`, a page-by-page read of a network's contributions (each page a `LIMIT` after
/// the last id), with PostgreSQL's planner pinned to walking the indexes in id order.
///
/// Its plan otherwise follows its statistics, and those may not know the network's rows yet:
/// autovacuum analyzes a table only after a tenth of it changed, and only where it is on.
/// After 240,000 contributions written through the API with no statistics, each page was
/// planned as a bitmap scan of the whole network and a sort, 240 ms a page; with sorts off it
/// became a nested loop over every outcome, 1.4 s a page. Either way a computation took time
/// in the square of the network's size. The alternatives are switched off for the read only:
/// in its own transaction, or in a savepoint of the caller's, and put back to the session's
/// values afterwards.
///
/// Parallel plans are switched off too ([`PAGE_PARALLEL_WORKERS`]).
pub fn in_id_order<T, E>(
    conn: &mut AnyConnection,
    read: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let mut settings = NOT_FOR_PAGES.map(|setting| (setting, "off")).to_vec();
    settings.push(("random_page_cost", PAGE_RANDOM_PAGE_COST));
    settings.push(("max_parallel_workers_per_gather", PAGE_PARALLEL_WORKERS));
    with_settings(conn, &settings, read)
}

/// Runs `read` on PostgreSQL with the planner `settings` given, in its own transaction or a
/// savepoint of the caller's, and puts them back to the session's values afterwards. On
/// SQLite it just runs `read`.
fn with_settings<T, E>(
    conn: &mut AnyConnection,
    settings: &[(&str, &str)],
    read: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if !matches!(conn, AnyConnection::Postgres(_)) {
        return read(conn);
    }
    conn.transaction(|conn| {
        for (setting, value) in settings {
            diesel::sql_query(format!("SET LOCAL {setting} = {value}")).execute(conn)?;
        }
        let out = read(conn)?;
        for (setting, _) in settings {
            diesel::sql_query(format!("SET LOCAL {setting} TO DEFAULT")).execute(conn)?;
        }
        Ok(out)
    })
}

/// The id `size` contributions of the network after `after` (the end of a page of that many,
/// counted or not), or None when fewer remain. Read from the `(network_id, id)` index alone.
pub fn page_end(
    conn: &mut AnyConnection,
    network_id: &str,
    after: &str,
    size: i64,
) -> QueryResult<Option<String>> {
    contributions::table
        .filter(contributions::network_id.eq(network_id))
        .filter(contributions::id.gt(after))
        .order(contributions::id)
        .select(contributions::id)
        .offset(size - 1)
        .limit(1)
        .load::<String>(conn)
        .map(|ids| ids.into_iter().next())
}

/// What bounds a page of [`snapshot_page`].
pub struct PageBounds<'a> {
    /// The network.
    pub network_id: &'a str,
    /// Contributions that happened by this time.
    pub cutoff: NaiveDateTime,
    /// Contributions recorded, and outcomes decided, by this time.
    pub as_of: NaiveDateTime,
    /// The page starts after this id (`""`: from the first).
    pub after: &'a str,
    /// The page ends at this id, if given.
    pub upto: Option<&'a str>,
    /// Rows at most.
    pub limit: i64,
    /// The facts each row carries.
    pub facts: PageFacts,
}

impl PageBounds<'_> {
    /// The same bounds for the page after `after`, to the network's end.
    fn from<'b>(&'b self, after: &'b str) -> PageBounds<'b> {
        PageBounds {
            after,
            upto: None,
            ..*self
        }
    }
}

/// The query for a page's contributions, boxed for the backend `$db`, with `$not_after`
/// ([`sqlite_not_after`] or [`pg_not_after`]) for its time bounds; the caller selects the
/// columns ([`PageFacts`]).
macro_rules! page_query {
    ($db:ty, $not_after:ident, $page:expr) => {{
        let b: &PageBounds = $page;
        let mut page = contributions::table
            .filter(contributions::network_id.eq(b.network_id.to_owned()))
            .filter(contributions::id.gt(b.after.to_owned()))
            .filter($not_after("contributions.occurred_at", b.cutoff))
            .filter($not_after("contributions.recorded_at", b.as_of))
            .order(contributions::id)
            .limit(b.limit)
            .into_boxed::<$db>();
        if let Some(upto) = b.upto {
            page = page.filter(contributions::id.le(upto.to_owned()));
        }
        page
    }};
}

/// The query for the network's outcomes of the contributions from `$first` to `$last`,
/// decided by `$as_of`.
macro_rules! outcomes_query {
    ($not_after:ident, $network_id:expr, $first:expr, $last:expr, $as_of:expr) => {
        contribution_outcomes::table
            .filter(contribution_outcomes::network_id.eq($network_id))
            .filter(contribution_outcomes::contribution_id.ge($first))
            .filter(contribution_outcomes::contribution_id.le($last))
            .filter($not_after("contribution_outcomes.decided_at", $as_of))
            .select((
                contribution_outcomes::contribution_id,
                contribution_outcomes::status,
            ))
    };
}

/// Collects rows PostgreSQL sends one at a time (`PgRowByRowLoadingMode`). Loaded whole, a
/// page's rows were all produced and sent by PostgreSQL while this process waited, then
/// decoded here while PostgreSQL waited; row by row, the two run at the same time.
fn streamed<T>(rows: impl Iterator<Item = QueryResult<T>>, expected: usize) -> QueryResult<Vec<T>> {
    let mut out = Vec::with_capacity(expected);
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

/// A page of every contribution (counted or not) with its outcome as it stood at `as_of`
/// (`pending` when it had none), read in two queries: the contributions, then their outcomes.
fn with_outcomes(
    conn: &mut AnyConnection,
    page: &PageBounds,
) -> QueryResult<Vec<(CountedCols, Status)>> {
    // On PostgreSQL both reads are decoded as they arrive ([`streamed`]); their bounds are
    // SQL text, so each page is planned with its own parameters ([`pg_not_after`]).
    // On SQLite, on the concrete connection too: through the multi-backend one each of a
    // page's fields was decoded through its wrapper (8% of a 52-week preview's CPU).
    let expected = usize::try_from(page.limit).unwrap_or(0);
    let rows: Vec<CountedCols> = match (&mut *conn, page.facts) {
        (AnyConnection::Postgres(pg), PageFacts::All) => streamed(
            page_query!(Pg, pg_not_after, page)
                .select(CountedColumns::default())
                .load_iter::<CountedCols, PgRowByRowLoadingMode>(pg)?,
            expected,
        )?,
        (AnyConnection::Postgres(pg), PageFacts::NoUnitOrSkill) => streamed(
            page_query!(Pg, pg_not_after, page)
                .select(CoreColumns::default())
                .load_iter::<CoreCols, PgRowByRowLoadingMode>(pg)?
                .map(|row| row.map(widened)),
            expected,
        )?,
        (AnyConnection::Sqlite(lite), PageFacts::All) => {
            page_query!(diesel::sqlite::Sqlite, sqlite_not_after, page)
                .select(CountedColumns::default())
                .load(lite)?
        }
        (AnyConnection::Sqlite(lite), PageFacts::NoUnitOrSkill) => streamed(
            page_query!(diesel::sqlite::Sqlite, sqlite_not_after, page)
                .select(CoreColumns::default())
                .load_iter::<CoreCols, diesel::connection::DefaultLoadingMode>(lite)?
                .map(|row| row.map(widened)),
            expected,
        )?,
    };
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    let (first, last) = (first.0.clone(), last.0.clone());
    let (network_id, as_of) = (page.network_id, page.as_of);
    // Each contribution's outcome as it stood at `as_of`: the network's outcomes in the id
    // range the page covers, one range of the `(network_id, contribution_id)` index, matched
    // in memory. Ids are ordered by time, so with networks writing at the same time the range
    // holds every network's outcomes of that time; by the contribution id alone a page read
    // them all. A join does not do here: SQLite's looks each outcome up on its own (most of a
    // page's cost), and PostgreSQL's merge join cannot walk the network's index in order on
    // the outer join's nullable side, so it walked the primary key. (An inner join can, and
    // [`snapshot_page`] uses one when contributions without an outcome do not count.)
    let outcome_rows: Vec<(String, Code<Status>)> = match conn {
        AnyConnection::Postgres(pg) => streamed(
            outcomes_query!(pg_not_after, network_id, &first, &last, as_of)
                .load_iter::<_, PgRowByRowLoadingMode>(pg)?,
            rows.len(),
        )?,
        AnyConnection::Sqlite(lite) => {
            outcomes_query!(sqlite_not_after, network_id, &first, &last, as_of).load(lite)?
        }
    };
    let by_id: foldhash::HashMap<&str, Option<Status>> = outcome_rows
        .iter()
        .map(|(id, status)| (id.as_str(), status.0))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let status = by_id
                .get(row.0.as_str())
                .copied()
                .flatten()
                .unwrap_or(Status::Pending);
            (row, status)
        })
        .collect())
}

/// The network's contributions that happened by `cutoff` and were recorded by `as_of`,
/// with their status as it stood at `as_of`: the page of at most `limit` after the id
/// `after`, and up to `upto` if given, in id order (see [`PageBounds`]). Reading page by page
/// keeps a computation's memory bounded.
///
/// `counting` is the statuses the caller counts. On PostgreSQL, when `pending` is not among
/// them, the page holds only contributions whose outcome is one of them (or that a correction
/// supersedes), read with their outcomes in one query, so that those that cannot count never
/// leave PostgreSQL. Otherwise, and on SQLite, it holds every contribution, read in two
/// queries ([`with_outcomes`]).
pub fn snapshot_page(
    conn: &mut AnyConnection,
    page: &PageBounds,
    counting: &[Status],
) -> QueryResult<Vec<Counted>> {
    let (network_id, as_of) = (page.network_id, page.as_of);
    let expected = usize::try_from(page.limit).unwrap_or(0);
    let rows: Vec<(CountedCols, Status)> = match &mut *conn {
        AnyConnection::Postgres(pg) if joins(counting) => {
            streamed(joined_rows(pg, page, counting)?, expected)?
        }
        _ => with_outcomes(conn, page)?,
    };
    completed(conn, network_id, as_of, rows)
}

/// Whether a page may be read on PostgreSQL with its outcomes joined (see [`snapshot_page`]):
/// when contributions without an outcome (`pending`) do not count.
fn joins(counting: &[Status]) -> bool {
    !counting.contains(&Status::Pending)
}

/// The rows of [`joined_rows`] as they arrive.
type JoinedRows<'c> = Box<dyn Iterator<Item = QueryResult<(CountedCols, Status)>> + 'c>;

/// A page of the contributions whose outcome by `as_of` is one of `counting`, read with the
/// outcomes joined: one read a page. Both sides are walked in id order, each in its own
/// `(network_id, …)` index from the page's start, and merged (`contribution_id` is the
/// outcomes' key, so each contribution meets at most one). The query is sent now, and its
/// rows are decoded as they arrive ([`streamed`]) while the iterator is read. Its bounds are
/// SQL text, so each page is planned with its own parameters ([`pg_not_after`]).
///
/// Where one status counts, every row has it, and the status is not read ([`PageFacts`]).
fn joined_rows<'c>(
    pg: &'c mut diesel::PgConnection,
    b: &PageBounds,
    counting: &[Status],
) -> QueryResult<JoinedRows<'c>> {
    let only = match counting {
        [one] => Some(*one),
        _ => None,
    };
    let statuses: Vec<&'static str> = counting.iter().map(|s| s.as_str()).collect();
    let mut page = contributions::table
        .inner_join(
            contribution_outcomes::table
                .on(contribution_outcomes::contribution_id.eq(contributions::id)),
        )
        .filter(contributions::network_id.eq(b.network_id.to_owned()))
        .filter(contributions::id.gt(b.after.to_owned()))
        .filter(pg_not_after("contributions.occurred_at", b.cutoff))
        .filter(pg_not_after("contributions.recorded_at", b.as_of))
        .filter(contribution_outcomes::network_id.eq(b.network_id.to_owned()))
        .filter(contribution_outcomes::contribution_id.gt(b.after.to_owned()))
        .filter(pg_not_after("contribution_outcomes.decided_at", b.as_of))
        .filter(contribution_outcomes::status.eq_any(statuses))
        .order(contributions::id)
        .limit(b.limit)
        .into_boxed::<Pg>();
    if let Some(upto) = b.upto {
        page = page
            .filter(contributions::id.le(upto.to_owned()))
            .filter(contribution_outcomes::contribution_id.le(upto.to_owned()));
    }
    let status = |code: Code<Status>| code.0.unwrap_or(Status::Pending);
    Ok(match (b.facts, only) {
        (PageFacts::All, None) => Box::new(
            page.select((CountedColumns::default(), contribution_outcomes::status))
                .load_iter::<(CountedCols, Code<Status>), PgRowByRowLoadingMode>(pg)?
                .map(move |row| row.map(|(cols, code)| (cols, status(code)))),
        ),
        (PageFacts::All, Some(only)) => Box::new(
            page.select(CountedColumns::default())
                .load_iter::<CountedCols, PgRowByRowLoadingMode>(pg)?
                .map(move |row| row.map(|cols| (cols, only))),
        ),
        (PageFacts::NoUnitOrSkill, None) => Box::new(
            page.select((CoreColumns::default(), contribution_outcomes::status))
                .load_iter::<(CoreCols, Code<Status>), PgRowByRowLoadingMode>(pg)?
                .map(move |row| row.map(|(cols, code)| (widened(cols), status(code)))),
        ),
        (PageFacts::NoUnitOrSkill, Some(only)) => Box::new(
            page.select(CoreColumns::default())
                .load_iter::<CoreCols, PgRowByRowLoadingMode>(pg)?
                .map(move |row| row.map(|cols| (widened(cols), only))),
        ),
    })
}

/// Each page of [`snapshot_page`] from `first`'s start to the network's last contribution,
/// handed to `each` in order.
///
/// Where a page is one query (PostgreSQL, see [`snapshot_page`]), the next page's query is
/// sent before `each` runs on a page: PostgreSQL produces the next page while this process
/// weighs the last, instead of each waiting for the other. The rows PostgreSQL sends wait in
/// the socket's buffers meanwhile; a page has at most `limit` rows, so two pages at most are
/// in memory at once.
pub fn each_page<E>(
    conn: &mut AnyConnection,
    first: &PageBounds,
    counting: &[Status],
    mut each: impl FnMut(Vec<Counted>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<diesel::result::Error>,
{
    // A full page may have more behind it; an empty one never has (nor loops, whatever the
    // limit).
    let full = |page: &[Counted]| {
        !page.is_empty() && page.len() >= usize::try_from(first.limit).unwrap_or(usize::MAX)
    };
    let mut after = first.after.to_owned();
    if !(matches!(conn, AnyConnection::Postgres(_)) && joins(counting)) {
        loop {
            let page = snapshot_page(conn, &first.from(&after), counting)?;
            let more = full(&page);
            if let Some(last) = page.last() {
                after.clone_from(&last.id);
            }
            each(page)?;
            if !more {
                return Ok(());
            }
        }
    }
    let mut ready: Option<Vec<Counted>> = None;
    loop {
        let AnyConnection::Postgres(pg) = &mut *conn else {
            unreachable!("pages are joined on PostgreSQL only")
        };
        let page = first.from(&after);
        let rows = {
            // The query is sent here; its rows are read below.
            let rows = joined_rows(pg, &page, counting)?;
            if let Some(last) = ready.take() {
                each(last)?;
            }
            streamed(rows, usize::try_from(first.limit).unwrap_or(0))?
        };
        let page = completed(conn, first.network_id, first.as_of, rows)?;
        let more = full(&page);
        if let Some(last) = page.last() {
            after.clone_from(&last.id);
        }
        if !more {
            return each(page);
        }
        ready = Some(page);
    }
}

/// A page's rows with their outcomes, completed: the corrections of the page's contributions
/// (which supersede them) and their tags.
fn completed(
    conn: &mut AnyConnection,
    network_id: &str,
    as_of: NaiveDateTime,
    rows: Vec<(CountedCols, Status)>,
) -> QueryResult<Vec<Counted>> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    let (first, last) = (first.0 .0.clone(), last.0 .0.clone());
    // Corrections of this page only, by the id range it covers. Corrections are
    // found through the `corrects` index alone: with the network in the filter too, SQLite
    // walked every contribution of the network on each page instead (76 ms a page over
    // 450,000). A correction always names a contribution of its own network, and only this
    // page's ids are looked up in the set.
    let corrected: std::collections::HashSet<String> = contributions::table
        .filter(contributions::recorded_at.le(as_of))
        .filter(contributions::corrects.ge(&first))
        .filter(contributions::corrects.le(&last))
        .select(contributions::corrects)
        .load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    // The network's tags in the page's id range, like its outcomes: one range of the
    // `(network_id, contribution_id)` index (covering on SQLite).
    for (id, tag) in contribution_tags::table
        .filter(contribution_tags::network_id.eq(network_id))
        .filter(contribution_tags::contribution_id.ge(&first))
        .filter(contribution_tags::contribution_id.le(&last))
        .select((contribution_tags::contribution_id, contribution_tags::tag))
        .load::<(String, String)>(conn)?
    {
        tags.entry(id).or_default().push(tag);
    }
    Ok(rows
        .into_iter()
        .map(
            |((id, agent_id, kind, quantity, unit, skill, occurred_at), outcome)| {
                // Most pages have no corrections and no tags: skip hashing every id then.
                let status = if !corrected.is_empty() && corrected.contains(&id) {
                    Status::Superseded
                } else {
                    outcome
                };
                Counted {
                    tags: if tags.is_empty() {
                        Vec::new()
                    } else {
                        tags.remove(&id).unwrap_or_default()
                    },
                    id,
                    agent_id,
                    kind: kind.0.unwrap_or(Kind::Other),
                    quantity: quantity.0,
                    unit,
                    skill,
                    occurred_at: occurred_at.0,
                    status,
                }
            },
        )
        .collect())
}

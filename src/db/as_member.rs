//! A single contribution written on PostgreSQL in one statement that also checks who writes
//! it ([`insert_as_member`]), and several such writes in one statement
//! ([`insert_as_members`]) when they arrive together ([`insert_gathered`]).

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, Binary, Integer, Nullable, Text, Timestamp};

use super::gather::{Gather, Group};
use super::rows::{ContributionRow, IdempotencyRow, JournalRow};
use super::types::{DbDecimal, Dec};

/// Pushes each value onto `$out` as a bind parameter of its SQL type, separated by commas.
macro_rules! binds {
    ($out:ident; $first_type:ty => $first:expr $(, $type:ty => $value:expr)* $(,)?) => {
        $out.push_bind_param::<$first_type, _>($first)?;
        $(
            $out.push_sql(", ");
            $out.push_bind_param::<$type, _>($value)?;
        )*
    };
}

/// Writes what [`super::contributions::insert_together`] writes for a contribution without
/// tags (the contribution, its journal entry, and the request's key row if it has a key) in
/// one statement that writes only if the row's recorder is a member or a steward of the row's
/// network, and that network is still the one `network_key` (its id or its slug) names.
/// Returns whether it wrote; when not, it wrote nothing. A single write whose network an
/// earlier request looked up is one round trip (`api::contributions`).
///
/// Unlike `insert_together`'s, this statement is written here by hand, column by column:
/// diesel's inserts cannot take a condition. The schema's columns are checked against it by
/// `tests/contributions.rs::one_statement_writes_all_or_nothing_on_postgres`, which compares
/// the rows it writes with the rows `insert_together` writes.
pub fn insert_as_member(
    conn: &mut PgConnection,
    network_key: &str,
    row: &ContributionRow,
    entry: &JournalRow,
    key: Option<&IdempotencyRow>,
) -> QueryResult<bool> {
    let written = match key {
        Some(key) => AsMember {
            network_key,
            row,
            entry,
            key: Keyed(key),
        }
        .execute(conn)?,
        None => AsMember {
            network_key,
            row,
            entry,
            key: Unkeyed,
        }
        .execute(conn)?,
    };
    Ok(written == 1)
}

/// The statement of [`insert_as_member`]; `K` says whether it ends with a key row.
struct AsMember<'a, K> {
    network_key: &'a str,
    row: &'a ContributionRow,
    entry: &'a JournalRow,
    key: K,
}

/// A key row to write.
struct Keyed<'a>(&'a IdempotencyRow);

/// No key row to write.
struct Unkeyed;

/// How [`AsMember`]'s statement ends, and its id in diesel's cache of prepared statements
/// (one statement text each, so both are kept prepared).
trait Ending {
    type Id: 'static;
    fn walk_end<'b>(&'b self, entry: &'b JournalRow, out: AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// [`AsMember`] ending with a key row, as diesel's statement cache knows it.
struct KeyedStatement;

/// [`AsMember`] ending with the journal entry, as diesel's statement cache knows it.
struct UnkeyedStatement;

impl Ending for Keyed<'_> {
    type Id = KeyedStatement;
    fn walk_end<'b>(
        &'b self,
        entry: &'b JournalRow,
        mut out: AstPass<'_, 'b, Pg>,
    ) -> QueryResult<()> {
        out.push_sql(", w1 AS (");
        walk_entry(entry, out.reborrow())?;
        out.push_sql(
            ") INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, \
             status_code, content_type, response_body, created_at, response_zstd) SELECT ",
        );
        let k = self.0;
        binds!(out;
            Text => &k.scope,
            Text => &k.idem_key,
            Text => &k.request_hash,
            Text => &k.state,
            Nullable<Integer> => &k.status_code,
            Nullable<Text> => &k.content_type,
            Nullable<Text> => &k.response_body,
            Timestamp => &k.created_at,
            Nullable<Binary> => &k.response_zstd,
        );
        out.push_sql(" FROM g");
        Ok(())
    }
}

impl Ending for Unkeyed {
    type Id = UnkeyedStatement;
    fn walk_end<'b>(
        &'b self,
        entry: &'b JournalRow,
        mut out: AstPass<'_, 'b, Pg>,
    ) -> QueryResult<()> {
        out.push_sql(" ");
        walk_entry(entry, out)
    }
}

/// `INSERT INTO journal_entries … SELECT … FROM g`.
fn walk_entry<'b>(e: &'b JournalRow, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
    out.push_sql(
        "INSERT INTO journal_entries (id, network_id, recorded_at, actor, kind, body) SELECT ",
    );
    binds!(out;
        Text => &e.id,
        Text => &e.network_id,
        Timestamp => &e.recorded_at,
        Nullable<Text> => &e.actor,
        Text => &e.kind,
        Text => &e.body,
    );
    out.push_sql(" FROM g");
    Ok(())
}

impl<K: Ending> QueryId for AsMember<'_, K> {
    type QueryId = K::Id;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K: Ending> QueryFragment<Pg> for AsMember<'_, K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let r = self.row;
        // `g` has one row when the recorder may write to the network the path names, none
        // otherwise; every part inserts `FROM g`.
        out.push_sql(
            "WITH g AS (SELECT 1 FROM networks n JOIN memberships m ON m.network_id = n.id \
             WHERE n.id = ",
        );
        out.push_bind_param::<Text, _>(&r.network_id)?;
        out.push_sql(" AND (n.id = ");
        out.push_bind_param::<Text, _>(self.network_key)?;
        out.push_sql(" OR n.slug = ");
        out.push_bind_param::<Text, _>(self.network_key)?;
        out.push_sql(") AND m.agent_id = ");
        out.push_bind_param::<Text, _>(&r.recorded_by)?;
        out.push_sql(
            " AND m.role IN ('member', 'steward')), w0 AS (INSERT INTO contributions (id, \
             network_id, agent_id, recorded_by, kind, quantity, unit, skill, description, \
             evidence_url, cites, corrects, occurred_at, recorded_at) SELECT ",
        );
        binds!(out;
            Text => &r.id,
            Text => &r.network_id,
            Text => &r.agent_id,
            Text => &r.recorded_by,
            Text => &r.kind,
            Dec => &r.quantity,
            Text => &r.unit,
            Nullable<Text> => &r.skill,
            Text => &r.description,
            Nullable<Text> => &r.evidence_url,
            Nullable<Text> => &r.cites,
            Nullable<Text> => &r.corrects,
            Timestamp => &r.occurred_at,
            Timestamp => &r.recorded_at,
        );
        out.push_sql(" FROM g)");
        self.key.walk_end(self.entry, out)
    }
}

impl<K> RunQueryDsl<PgConnection> for AsMember<'_, K> {}

/// One request's write for [`insert_as_members`]: what [`insert_as_member`] takes.
#[derive(Debug, Clone)]
pub struct MemberWrite {
    /// The path's segment (the network's id or slug).
    pub network_key: String,
    pub row: ContributionRow,
    pub entry: JournalRow,
    pub key: Option<IdempotencyRow>,
}

/// [`insert_as_member`]'s write, sent with the single writes that arrive while another
/// statement of them runs as one statement of [`insert_as_members`] (see [`super::gather`]).
/// Returns whether it was written, as [`insert_as_member`] does; when a group's statement
/// fails, each of its writes is sent again alone, so a taken key fails as it would alone.
pub fn insert_gathered(
    conn: &mut PgConnection,
    gather: &Gather<MemberWrite>,
    write: MemberWrite,
) -> QueryResult<bool> {
    gather.write(
        conn,
        write,
        |conn, writes| match insert_as_members(conn, writes) {
            Ok(written) => Group::Ran(written),
            Err(e) => {
                tracing::debug!(error = %e, writes = writes.len(), "a group of writes goes alone");
                Group::Failed
            }
        },
        |conn, w| insert_as_member(conn, &w.network_key, &w.row, &w.entry, w.key.as_ref()),
    )
}

/// Writes several requests' [`insert_as_member`] writes in one statement: each request's
/// rows only if its recorder is a member or a steward of its row's network and its
/// `network_key` still names that network, exactly as [`insert_as_member`] decides for one.
/// Returns, for each write in order, whether it was written. The statement writes every row
/// it writes, or none: it fails whole if any key row is there already, or any row fails.
///
/// The rows go as one array a column (`unnest`), so the statement has the same text for any
/// number of writes, and is kept prepared.
pub fn insert_as_members(
    conn: &mut PgConnection,
    writes: &[&MemberWrite],
) -> QueryResult<Vec<bool>> {
    let written: Vec<String> = Columns::new(writes).load(conn)?;
    let written: std::collections::HashSet<&str> = written.iter().map(String::as_str).collect();
    Ok(writes
        .iter()
        .map(|w| written.contains(w.row.id.as_str()))
        .collect())
}

/// The statement of [`insert_as_members`]: its writes as one array a column.
struct Columns<'a> {
    network_key: Vec<&'a str>,
    id: Vec<&'a str>,
    network_id: Vec<&'a str>,
    agent_id: Vec<&'a str>,
    recorded_by: Vec<&'a str>,
    kind: Vec<&'a str>,
    quantity: Vec<&'a DbDecimal>,
    unit: Vec<&'a str>,
    skill: Vec<Option<&'a str>>,
    description: Vec<&'a str>,
    evidence_url: Vec<Option<&'a str>>,
    cites: Vec<Option<&'a str>>,
    corrects: Vec<Option<&'a str>>,
    occurred_at: Vec<NaiveDateTime>,
    recorded_at: Vec<NaiveDateTime>,
    e_id: Vec<&'a str>,
    e_network_id: Vec<&'a str>,
    e_recorded_at: Vec<NaiveDateTime>,
    e_actor: Vec<Option<&'a str>>,
    e_kind: Vec<&'a str>,
    e_body: Vec<&'a str>,
    k_scope: Vec<Option<&'a str>>,
    k_key: Vec<Option<&'a str>>,
    k_request_hash: Vec<Option<&'a str>>,
    k_state: Vec<Option<&'a str>>,
    k_status_code: Vec<Option<i32>>,
    k_content_type: Vec<Option<&'a str>>,
    k_response_body: Vec<Option<&'a str>>,
    k_created_at: Vec<Option<NaiveDateTime>>,
    k_response_zstd: Vec<Option<&'a [u8]>>,
}

impl<'a> Columns<'a> {
    fn new(writes: &[&'a MemberWrite]) -> Self {
        fn col<'a, T>(writes: &[&'a MemberWrite], f: impl Fn(&'a MemberWrite) -> T) -> Vec<T> {
            writes.iter().map(|w| f(w)).collect()
        }
        let key = |w: &'a MemberWrite| w.key.as_ref();
        Self {
            network_key: col(writes, |w| w.network_key.as_str()),
            id: col(writes, |w| w.row.id.as_str()),
            network_id: col(writes, |w| w.row.network_id.as_str()),
            agent_id: col(writes, |w| w.row.agent_id.as_str()),
            recorded_by: col(writes, |w| w.row.recorded_by.as_str()),
            kind: col(writes, |w| w.row.kind.as_str()),
            quantity: col(writes, |w| &w.row.quantity),
            unit: col(writes, |w| w.row.unit.as_str()),
            skill: col(writes, |w| w.row.skill.as_deref()),
            description: col(writes, |w| w.row.description.as_str()),
            evidence_url: col(writes, |w| w.row.evidence_url.as_deref()),
            cites: col(writes, |w| w.row.cites.as_deref()),
            corrects: col(writes, |w| w.row.corrects.as_deref()),
            occurred_at: col(writes, |w| w.row.occurred_at),
            recorded_at: col(writes, |w| w.row.recorded_at),
            e_id: col(writes, |w| w.entry.id.as_str()),
            e_network_id: col(writes, |w| w.entry.network_id.as_str()),
            e_recorded_at: col(writes, |w| w.entry.recorded_at),
            e_actor: col(writes, |w| w.entry.actor.as_deref()),
            e_kind: col(writes, |w| w.entry.kind.as_str()),
            e_body: col(writes, |w| w.entry.body.as_str()),
            k_scope: col(writes, |w| key(w).map(|k| k.scope.as_str())),
            k_key: col(writes, |w| key(w).map(|k| k.idem_key.as_str())),
            k_request_hash: col(writes, |w| key(w).map(|k| k.request_hash.as_str())),
            k_state: col(writes, |w| key(w).map(|k| k.state.as_str())),
            k_status_code: col(writes, |w| key(w).and_then(|k| k.status_code)),
            k_content_type: col(writes, |w| key(w).and_then(|k| k.content_type.as_deref())),
            k_response_body: col(writes, |w| key(w).and_then(|k| k.response_body.as_deref())),
            k_created_at: col(writes, |w| key(w).map(|k| k.created_at)),
            k_response_zstd: col(writes, |w| key(w).and_then(|k| k.response_zstd.as_deref())),
        }
    }
}

/// [`Columns`]' statement, as diesel's statement cache knows it.
struct ColumnsStatement;

impl QueryId for Columns<'_> {
    type QueryId = ColumnsStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for Columns<'_> {
    type SqlType = Text;
}

impl QueryFragment<Pg> for Columns<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH r AS (SELECT * FROM unnest(");
        binds!(out;
            Array<Text> => &self.network_key,
            Array<Text> => &self.id,
            Array<Text> => &self.network_id,
            Array<Text> => &self.agent_id,
            Array<Text> => &self.recorded_by,
            Array<Text> => &self.kind,
            Array<Dec> => &self.quantity,
            Array<Text> => &self.unit,
            Array<Nullable<Text>> => &self.skill,
            Array<Text> => &self.description,
            Array<Nullable<Text>> => &self.evidence_url,
            Array<Nullable<Text>> => &self.cites,
            Array<Nullable<Text>> => &self.corrects,
            Array<Timestamp> => &self.occurred_at,
            Array<Timestamp> => &self.recorded_at,
            Array<Text> => &self.e_id,
            Array<Text> => &self.e_network_id,
            Array<Timestamp> => &self.e_recorded_at,
            Array<Nullable<Text>> => &self.e_actor,
            Array<Text> => &self.e_kind,
            Array<Text> => &self.e_body,
            Array<Nullable<Text>> => &self.k_scope,
            Array<Nullable<Text>> => &self.k_key,
            Array<Nullable<Text>> => &self.k_request_hash,
            Array<Nullable<Text>> => &self.k_state,
            Array<Nullable<Integer>> => &self.k_status_code,
            Array<Nullable<Text>> => &self.k_content_type,
            Array<Nullable<Text>> => &self.k_response_body,
            Array<Nullable<Timestamp>> => &self.k_created_at,
            Array<Nullable<Binary>> => &self.k_response_zstd,
        );
        // `g` holds the writes whose recorder may write to the network their path names (as
        // `g` of [`AsMember`] for one); every part inserts `FROM g`, which is read once.
        out.push_sql(
            ") AS r (network_key, id, network_id, agent_id, recorded_by, kind, quantity, unit, \
             skill, description, evidence_url, cites, corrects, occurred_at, recorded_at, \
             e_id, e_network_id, e_recorded_at, e_actor, e_kind, e_body, k_scope, k_key, \
             k_request_hash, k_state, k_status_code, k_content_type, k_response_body, \
             k_created_at, k_response_zstd)), \
             g AS MATERIALIZED (SELECT * FROM r WHERE EXISTS (SELECT 1 FROM networks n \
             JOIN memberships m ON m.network_id = n.id WHERE n.id = r.network_id \
             AND (n.id = r.network_key OR n.slug = r.network_key) \
             AND m.agent_id = r.recorded_by AND m.role IN ('member', 'steward'))), \
             w0 AS (INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, \
             quantity, unit, skill, description, evidence_url, cites, corrects, occurred_at, \
             recorded_at) SELECT id, network_id, agent_id, recorded_by, kind, quantity, unit, \
             skill, description, evidence_url, cites, corrects, occurred_at, recorded_at \
             FROM g), \
             w1 AS (INSERT INTO journal_entries (id, network_id, recorded_at, actor, kind, \
             body) SELECT e_id, e_network_id, e_recorded_at, e_actor, e_kind, e_body FROM g), \
             w2 AS (INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, \
             status_code, content_type, response_body, created_at, response_zstd) SELECT \
             k_scope, k_key, k_request_hash, k_state, k_status_code, k_content_type, \
             k_response_body, k_created_at, k_response_zstd FROM g WHERE k_scope IS NOT NULL) \
             SELECT id FROM g",
        );
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for Columns<'_> {}

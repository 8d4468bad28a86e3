//! A single contribution written on PostgreSQL in one statement that also checks who writes
//! it ([`insert_as_member`]).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Integer, Nullable, Text, Timestamp};

use super::rows::{ContributionRow, IdempotencyRow, JournalRow};
use super::types::Dec;

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
             status_code, content_type, response_body, created_at) SELECT ",
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

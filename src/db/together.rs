//! Several INSERTs sent to PostgreSQL as one statement:
//! `WITH w0 AS (first), w1 AS (second) last`.
//!
//! One statement is one round trip and, outside a transaction, its own transaction: all of
//! its rows are written, or none. A write made of inserts alone then needs neither `BEGIN`
//! nor `COMMIT` nor a round trip per table: a single `POST /contributions` went from five
//! round trips of writing to one (`bench/analysis.md`).
//!
//! Each part is diesel's own INSERT, walked into the one statement, so the columns written
//! are the schema's as everywhere else, and the statement is kept prepared whenever each of
//! its parts would be (one-row inserts are, multi-row ones are not). PostgreSQL runs every
//! part with the same snapshot, fires their triggers at the end of the statement (the
//! journal's queue trigger included), and checks each constraint as it would for separate
//! statements.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// The statements of a tuple, sent as one (see the module's doc).
#[derive(Debug, Clone, Copy)]
pub struct Together<T>(pub T);

macro_rules! together {
    ($first:ident $first_index:tt $(, $part:ident $index:tt)*; $last:ident $last_index:tt) => {
        impl<$first: QueryId, $($part: QueryId,)* $last: QueryId> QueryId
            for Together<($first, $($part,)* $last)>
        {
            type QueryId = Together<($first::QueryId, $($part::QueryId,)* $last::QueryId)>;
            const HAS_STATIC_QUERY_ID: bool = $first::HAS_STATIC_QUERY_ID
                $(&& $part::HAS_STATIC_QUERY_ID)*
                && $last::HAS_STATIC_QUERY_ID;
        }

        impl<$first: QueryFragment<Pg>, $($part: QueryFragment<Pg>,)* $last: QueryFragment<Pg>>
            QueryFragment<Pg> for Together<($first, $($part,)* $last)>
        {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_sql(concat!("WITH w", stringify!($first_index), " AS ("));
                self.0.$first_index.walk_ast(out.reborrow())?;
                $(
                    out.push_sql(concat!("), w", stringify!($index), " AS ("));
                    self.0.$index.walk_ast(out.reborrow())?;
                )*
                out.push_sql(") ");
                self.0.$last_index.walk_ast(out.reborrow())
            }
        }
    };
}

together!(A 0; B 1);
together!(A 0, B 1; C 2);
together!(A 0, B 1, C 2; D 3);

impl<T> RunQueryDsl<PgConnection> for Together<T> {}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::prelude::*;

    use super::*;
    use crate::db::schema::{journal_unsealed, networks};

    #[test]
    fn parts_become_one_statement_with_their_binds_numbered_in_order() {
        let first = diesel::insert_into(journal_unsealed::table).values((
            journal_unsealed::entry_id.eq("e"),
            journal_unsealed::network_id.eq("n"),
        ));
        let last = diesel::delete(networks::table.filter(networks::id.eq("x")));
        let sql = debug_query::<Pg, _>(&Together((first, last))).to_string();
        assert!(
            sql.starts_with(
                "WITH w0 AS (INSERT INTO \"journal_unsealed\" (\"entry_id\", \"network_id\") \
                 VALUES ($1, $2)) DELETE FROM \"networks\" WHERE (\"networks\".\"id\" = $3)"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("binds: [\"e\", \"n\", \"x\"]"), "{sql}");
    }

    fn kept_prepared<T: QueryId>(_: &T) -> bool {
        T::HAS_STATIC_QUERY_ID
    }

    #[test]
    fn a_statement_is_kept_prepared_only_when_each_part_would_be() {
        let one_row = || {
            diesel::insert_into(journal_unsealed::table).values((
                journal_unsealed::entry_id.eq("e"),
                journal_unsealed::network_id.eq("n"),
            ))
        };
        assert!(kept_prepared(&Together((one_row(), one_row()))));
        // A boxed query has no static id, so the whole statement has none either.
        let boxed = networks::table.select(networks::id).into_boxed::<Pg>();
        assert!(!kept_prepared(&Together((one_row(), boxed))));
    }
}

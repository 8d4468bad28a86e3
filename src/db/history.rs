//! History brought from other tools: members' aliases there and payments made before.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::{AliasRow, PriorPayoutRow};
use super::schema::{member_aliases, prior_payouts};
use super::AnyConnection;

/// The agent an alias of `source` belongs to in a network, if any.
pub fn agent_for_alias(
    conn: &mut AnyConnection,
    network_id: &str,
    source: &str,
    alias: &str,
) -> QueryResult<Option<String>> {
    member_aliases::table
        .filter(member_aliases::network_id.eq(network_id))
        .filter(member_aliases::source.eq(source))
        .filter(member_aliases::alias.eq(alias))
        .select(member_aliases::agent_id)
        .first(conn)
        .optional()
}

/// Stores an alias.
pub fn insert_alias(conn: &mut AnyConnection, row: &AliasRow) -> QueryResult<()> {
    diesel::insert_into(member_aliases::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A member's aliases.
pub fn aliases(
    conn: &mut AnyConnection,
    network_id: &str,
    agent_id: &str,
) -> QueryResult<Vec<AliasRow>> {
    member_aliases::table
        .filter(member_aliases::network_id.eq(network_id))
        .filter(member_aliases::agent_id.eq(agent_id))
        .order((member_aliases::source, member_aliases::alias))
        .limit(1000)
        .select(AliasRow::as_select())
        .load(conn)
}

/// Whether a prior payout with this reference was already imported.
pub fn has_prior_payout(
    conn: &mut AnyConnection,
    network_id: &str,
    source_ref: &str,
) -> QueryResult<bool> {
    prior_payouts::table
        .filter(prior_payouts::network_id.eq(network_id))
        .filter(prior_payouts::source_ref.eq(source_ref))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n > 0)
}

/// Stores a prior payout.
pub fn insert_prior_payout(conn: &mut AnyConnection, row: &PriorPayoutRow) -> QueryResult<()> {
    diesel::insert_into(prior_payouts::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Prior payouts of a network recorded before `before` (all when None): (bucket, agent,
/// amount in minor units).
pub fn prior_paid(
    conn: &mut AnyConnection,
    network_id: &str,
    before: Option<NaiveDateTime>,
) -> QueryResult<Vec<(String, String, super::types::DbDecimal)>> {
    let mut q = prior_payouts::table
        .filter(prior_payouts::network_id.eq(network_id.to_owned()))
        .select((
            prior_payouts::bucket,
            prior_payouts::agent_id,
            prior_payouts::amount_minor,
        ))
        .into_boxed();
    if let Some(at) = before {
        q = q.filter(prior_payouts::recorded_at.lt(at));
    }
    q.load(conn)
}

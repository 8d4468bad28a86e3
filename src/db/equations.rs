//! Queries on equation versions, proposals, votes and their outcomes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::{EquationVersionRow, ProposalOutcomeRow, ProposalRow, VoteRow};
use super::schema::{equation_versions, memberships, proposal_outcomes, proposals, votes};
use super::AnyConnection;

/// Every version of a network's equation, oldest first.
pub fn versions(
    conn: &mut AnyConnection,
    network_id: &str,
) -> QueryResult<Vec<EquationVersionRow>> {
    equation_versions::table
        .filter(equation_versions::network_id.eq(network_id))
        .order(equation_versions::version)
        .select(EquationVersionRow::as_select())
        .load(conn)
}

/// One version.
pub fn version(
    conn: &mut AnyConnection,
    network_id: &str,
    version: i32,
) -> QueryResult<Option<EquationVersionRow>> {
    equation_versions::table
        .find((network_id, version))
        .select(EquationVersionRow::as_select())
        .get_result(conn)
        .optional()
}

/// The version in force at `at`: the latest `effective_from` not after it.
pub fn in_force(
    conn: &mut AnyConnection,
    network_id: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<EquationVersionRow>> {
    // On the concrete connection (see `on_backend!`): every read and write of a network's
    // values looks its equation up.
    on_backend!(conn, |c| equation_versions::table
        .filter(equation_versions::network_id.eq(network_id))
        .filter(equation_versions::effective_from.le(at))
        .order((
            equation_versions::effective_from.desc(),
            equation_versions::version.desc(),
        ))
        .select(EquationVersionRow::as_select())
        .first(c))
    .optional()
}

/// The next version number.
pub fn next_version(conn: &mut AnyConnection, network_id: &str) -> QueryResult<i32> {
    let max: Option<i32> = equation_versions::table
        .filter(equation_versions::network_id.eq(network_id))
        .select(diesel::dsl::max(equation_versions::version))
        .get_result(conn)?;
    Ok(max.unwrap_or(0) + 1)
}

/// Stores a version.
pub fn insert_version(conn: &mut AnyConnection, row: &EquationVersionRow) -> QueryResult<()> {
    diesel::insert_into(equation_versions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Stores a proposal.
pub fn insert_proposal(conn: &mut AnyConnection, row: &ProposalRow) -> QueryResult<()> {
    diesel::insert_into(proposals::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A proposal of a network.
pub fn find_proposal(
    conn: &mut AnyConnection,
    network_id: &str,
    id: &str,
) -> QueryResult<Option<ProposalRow>> {
    proposals::table
        .filter(proposals::network_id.eq(network_id))
        .filter(proposals::id.eq(id))
        .select(ProposalRow::as_select())
        .get_result(conn)
        .optional()
}

/// A page of a network's proposals, newest first.
pub fn list_proposals(
    conn: &mut AnyConnection,
    network_id: &str,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ProposalRow>> {
    let mut q = proposals::table
        .filter(proposals::network_id.eq(network_id.to_owned()))
        .select(ProposalRow::as_select())
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(proposals::id.lt(b.to_owned()));
    }
    q.order(proposals::id.desc()).limit(limit).load(conn)
}

/// Proposals of a network with no outcome yet.
pub fn undecided(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Vec<ProposalRow>> {
    // On the concrete connection (see `on_backend!`): every shares read settles proposals.
    on_backend!(conn, |c| proposals::table
        .filter(proposals::network_id.eq(network_id))
        .filter(
            proposals::id.ne_all(proposal_outcomes::table.select(proposal_outcomes::proposal_id)),
        )
        .order(proposals::id)
        .select(ProposalRow::as_select())
        .load(c))
}

/// (yes, no, abstain) of a proposal.
pub fn tally(conn: &mut AnyConnection, proposal_id: &str) -> QueryResult<(i64, i64, i64)> {
    let rows: Vec<(String, i64)> = votes::table
        .filter(votes::proposal_id.eq(proposal_id))
        .group_by(votes::vote)
        .select((votes::vote, diesel::dsl::count_star()))
        .load(conn)?;
    let get = |v: &str| rows.iter().find(|(k, _)| k == v).map_or(0, |(_, n)| *n);
    Ok((get("yes"), get("no"), get("abstain")))
}

/// Has `voter` voted on `proposal`?
pub fn has_voted(conn: &mut AnyConnection, proposal_id: &str, voter: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(votes::table.find((proposal_id, voter)))).get_result(conn)
}

/// Stores a vote.
pub fn insert_vote(conn: &mut AnyConnection, row: &VoteRow) -> QueryResult<()> {
    diesel::insert_into(votes::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A proposal's outcome, if decided.
pub fn outcome(
    conn: &mut AnyConnection,
    proposal_id: &str,
) -> QueryResult<Option<ProposalOutcomeRow>> {
    proposal_outcomes::table
        .find(proposal_id)
        .select(ProposalOutcomeRow::as_select())
        .get_result(conn)
        .optional()
}

/// Stores an outcome.
pub fn insert_outcome(conn: &mut AnyConnection, row: &ProposalOutcomeRow) -> QueryResult<()> {
    diesel::insert_into(proposal_outcomes::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Members who may vote (members and stewards).
pub fn eligible_voters(conn: &mut AnyConnection, network_id: &str) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::network_id.eq(network_id))
        .filter(memberships::role.eq_any(["member", "steward"]))
        .count()
        .get_result(conn)
}

/// Takes the lock that serialises governance writes of a network on PostgreSQL (SQLite's
/// write transactions are already serial).
///
/// `FOR NO KEY UPDATE`, not `FOR UPDATE`: every insert that references the network (a journal
/// entry, a ledger entry) takes `FOR KEY SHARE` on its row through the foreign key, and
/// `FOR UPDATE` conflicts with that. Two minting approvals, each having journaled before
/// taking this lock, then waited on each other: PostgreSQL broke the deadlock after a second
/// and approvals ran at about one a second. `FOR NO KEY UPDATE` still excludes every other
/// holder of this lock but not the foreign-key checks.
pub fn lock_network(conn: &mut AnyConnection, network_id: &str) -> QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        use super::schema::networks;
        networks::table
            .find(network_id)
            .select(networks::id)
            .for_no_key_update()
            .first::<String>(pg)?;
    }
    Ok(())
}

//! Queries on agents, API keys, memberships and invites.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::{AgentRow, ApiKeyRow, InviteRow, MembershipRow};
use super::schema::{agents, api_keys, invites, memberships};
use super::AnyConnection;

/// Inserts an agent without an API key (imported members sign in by wallet or get a key
/// through an invite later).
pub fn insert_agent_without_key(conn: &mut AnyConnection, agent: &AgentRow) -> QueryResult<()> {
    diesel::insert_into(agents::table)
        .values(agent)
        .execute(conn)
        .map(|_| ())
}

/// Inserts an agent and its API key (hash only).
pub fn insert_agent(
    conn: &mut AnyConnection,
    agent: &AgentRow,
    key: &ApiKeyRow,
) -> QueryResult<()> {
    diesel::insert_into(agents::table)
        .values(agent)
        .execute(conn)?;
    diesel::insert_into(api_keys::table)
        .values(key)
        .execute(conn)?;
    Ok(())
}

/// Finds an agent.
pub fn find_agent(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<AgentRow>> {
    agents::table
        .find(id)
        .select(AgentRow::as_select())
        .get_result(conn)
        .optional()
}

/// The agent owning the API key with this hash.
pub fn agent_for_key(conn: &mut AnyConnection, key_hash: &str) -> QueryResult<Option<String>> {
    api_keys::table
        .find(key_hash)
        .select(api_keys::agent_id)
        .get_result(conn)
        .optional()
}

/// Updates an agent's profile (profiles are not ledger records).
pub fn update_agent(conn: &mut AnyConnection, agent: &AgentRow) -> QueryResult<()> {
    diesel::update(agents::table.find(&agent.id))
        .set((
            agents::display_name.eq(&agent.display_name),
            agents::wallet_address.eq(&agent.wallet_address),
        ))
        .execute(conn)
        .map(|_| ())
}

/// An agent's membership of a network.
pub fn membership(
    conn: &mut AnyConnection,
    network_id: &str,
    agent_id: &str,
) -> QueryResult<Option<MembershipRow>> {
    memberships::table
        .find((network_id, agent_id))
        .select(MembershipRow::as_select())
        .get_result(conn)
        .optional()
}

/// Adds a membership.
pub fn insert_membership(conn: &mut AnyConnection, row: &MembershipRow) -> QueryResult<()> {
    diesel::insert_into(memberships::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Changes a member's role.
pub fn set_role(
    conn: &mut AnyConnection,
    network_id: &str,
    agent_id: &str,
    role: &str,
) -> QueryResult<()> {
    diesel::update(memberships::table.find((network_id, agent_id)))
        .set(memberships::role.eq(role))
        .execute(conn)
        .map(|_| ())
}

/// How many stewards a network has.
pub fn count_stewards(conn: &mut AnyConnection, network_id: &str) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::network_id.eq(network_id))
        .filter(memberships::role.eq("steward"))
        .count()
        .get_result(conn)
}

/// A page of a network's members with their agents, in agent id order after `after`.
pub fn list_members(
    conn: &mut AnyConnection,
    network_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(MembershipRow, AgentRow)>> {
    let mut q = memberships::table
        .inner_join(agents::table)
        .filter(memberships::network_id.eq(network_id.to_owned()))
        .select((MembershipRow::as_select(), AgentRow::as_select()))
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(memberships::agent_id.gt(a.to_owned()));
    }
    q.order(memberships::agent_id).limit(limit).load(conn)
}

/// The display names of these agents, by id.
pub fn display_names(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> QueryResult<std::collections::HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(agents::table
        .filter(agents::id.eq_any(ids))
        .select((agents::id, agents::display_name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// One member with its agent.
pub fn member(
    conn: &mut AnyConnection,
    network_id: &str,
    agent_id: &str,
) -> QueryResult<Option<(MembershipRow, AgentRow)>> {
    memberships::table
        .inner_join(agents::table)
        .filter(memberships::network_id.eq(network_id))
        .filter(memberships::agent_id.eq(agent_id))
        .select((MembershipRow::as_select(), AgentRow::as_select()))
        .get_result(conn)
        .optional()
}

/// Stores an invite.
pub fn insert_invite(conn: &mut AnyConnection, row: &InviteRow) -> QueryResult<()> {
    diesel::insert_into(invites::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Marks an unused, unexpired invite of `network_id` as used by `agent_id` and returns it.
/// The conditional UPDATE makes an invite single-use even under concurrent joins.
pub fn take_invite(
    conn: &mut AnyConnection,
    network_id: &str,
    code_hash: &str,
    agent_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<InviteRow>> {
    let taken = diesel::update(
        invites::table
            .filter(invites::code_hash.eq(code_hash))
            .filter(invites::network_id.eq(network_id))
            .filter(invites::used_by.is_null())
            .filter(invites::expires_at.gt(now)),
    )
    .set((invites::used_by.eq(agent_id), invites::used_at.eq(now)))
    .execute(conn)?;
    if taken == 0 {
        return Ok(None);
    }
    invites::table
        .find(code_hash)
        .select(InviteRow::as_select())
        .get_result(conn)
        .optional()
}

//! Queries on networks and their currencies.

use diesel::prelude::*;

use super::rows::{CurrencyRow, MembershipRow, NetworkRow};
use super::schema::{memberships, network_currencies, networks};
use super::AnyConnection;

/// Inserts a network, its currencies and its first steward.
pub fn insert(
    conn: &mut AnyConnection,
    network: &NetworkRow,
    currencies: &[CurrencyRow],
    steward: &MembershipRow,
) -> QueryResult<()> {
    diesel::insert_into(networks::table)
        .values(network)
        .execute(conn)?;
    for c in currencies {
        diesel::insert_into(network_currencies::table)
            .values(c)
            .execute(conn)?;
    }
    diesel::insert_into(memberships::table)
        .values(steward)
        .execute(conn)?;
    Ok(())
}

/// Finds a network by id or by slug, with `agent`'s role in it (if a member), in one query.
pub fn find_with_role(
    conn: &mut AnyConnection,
    id_or_slug: &str,
    agent: &str,
) -> QueryResult<Option<(NetworkRow, Option<String>)>> {
    on_backend!(conn, |c| networks::table
        .left_join(
            memberships::table.on(memberships::network_id
                .eq(networks::id)
                .and(memberships::agent_id.eq(agent))),
        )
        .filter(
            networks::id
                .eq(id_or_slug)
                .or(networks::slug.eq(id_or_slug)),
        )
        .select((NetworkRow::as_select(), memberships::role.nullable()))
        .get_result(c))
    .optional()
}

/// Finds a network by id or by slug.
pub fn find(conn: &mut AnyConnection, id_or_slug: &str) -> QueryResult<Option<NetworkRow>> {
    networks::table
        .filter(
            networks::id
                .eq(id_or_slug)
                .or(networks::slug.eq(id_or_slug)),
        )
        .select(NetworkRow::as_select())
        .get_result(conn)
        .optional()
}

/// Is this slug taken?
pub fn slug_taken(conn: &mut AnyConnection, slug: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        networks::table.filter(networks::slug.eq(slug)),
    ))
    .get_result(conn)
}

/// A network's currencies, by code.
pub fn currencies(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Vec<CurrencyRow>> {
    network_currencies::table
        .filter(network_currencies::network_id.eq(network_id))
        .order(network_currencies::code)
        .select(CurrencyRow::as_select())
        .load(conn)
}

/// Networks visible to `viewer` (public ones, and members-only ones it belongs to), in id
/// order after `after`.
pub fn list_visible(
    conn: &mut AnyConnection,
    viewer: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<NetworkRow>> {
    let mut q = networks::table.select(NetworkRow::as_select()).into_boxed();
    q = match viewer {
        Some(agent) => q.filter(
            networks::visibility.eq("public").or(networks::id.eq_any(
                memberships::table
                    .filter(memberships::agent_id.eq(agent.to_owned()))
                    .select(memberships::network_id),
            )),
        ),
        None => q.filter(networks::visibility.eq("public")),
    };
    if let Some(a) = after {
        q = q.filter(networks::id.gt(a.to_owned()));
    }
    q.order(networks::id).limit(limit).load(conn)
}

/// Writes changed settings (networks are configuration, not ledger records: they may be
/// edited; the change is visible through `updated_at`).
pub fn update(conn: &mut AnyConnection, row: &NetworkRow) -> QueryResult<()> {
    diesel::update(networks::table.find(&row.id))
        .set((
            networks::name.eq(&row.name),
            networks::description.eq(&row.description),
            networks::join_policy.eq(&row.join_policy),
            networks::visibility.eq(&row.visibility),
            networks::approvals_required.eq(row.approvals_required),
            networks::rejections_required.eq(row.rejections_required),
            networks::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Adds currencies to a network.
pub fn add_currencies(conn: &mut AnyConnection, rows: &[CurrencyRow]) -> QueryResult<()> {
    for c in rows {
        diesel::insert_into(network_currencies::table)
            .values(c)
            .execute(conn)?;
    }
    Ok(())
}

/// Every network's id and slug (for command-line checks).
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String)>> {
    networks::table
        .order(networks::id)
        .select((networks::id, networks::slug))
        .load(conn)
}

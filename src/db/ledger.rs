//! Queries on the token, the ledger's transactions and entries, cached balances and
//! departures. Sums are taken in Rust: SQL arithmetic on SQLite text is floating point.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;

use super::rows::{BalanceRow, DepartureRow, EntryRow, TokenRow, TxRow};
use super::schema::{departures, ledger_entries, ledger_transactions, token_balances, tokens};
use super::types::DbDecimal;
use super::AnyConnection;

/// A network's token.
pub fn token(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Option<TokenRow>> {
    tokens::table
        .find(network_id)
        .select(TokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// Defines a network's token.
pub fn insert_token(conn: &mut AnyConnection, row: &TokenRow) -> QueryResult<()> {
    diesel::insert_into(tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// The transaction a cause produced, if any.
pub fn by_cause(
    conn: &mut AnyConnection,
    network_id: &str,
    kind: &str,
    cause_type: &str,
    cause_id: &str,
) -> QueryResult<Option<TxRow>> {
    ledger_transactions::table
        .filter(ledger_transactions::network_id.eq(network_id))
        .filter(ledger_transactions::kind.eq(kind))
        .filter(ledger_transactions::cause_type.eq(cause_type))
        .filter(ledger_transactions::cause_id.eq(cause_id))
        .select(TxRow::as_select())
        .first(conn)
        .optional()
}

/// The reversal of a transaction, if any.
pub fn reversal_of(conn: &mut AnyConnection, tx_id: &str) -> QueryResult<Option<TxRow>> {
    ledger_transactions::table
        .filter(ledger_transactions::reverses.eq(tx_id))
        .select(TxRow::as_select())
        .first(conn)
        .optional()
}

/// A transaction's entries.
pub fn entries_of(conn: &mut AnyConnection, tx_id: &str) -> QueryResult<Vec<EntryRow>> {
    ledger_entries::table
        .filter(ledger_entries::transaction_id.eq(tx_id))
        .order(ledger_entries::id)
        .select(EntryRow::as_select())
        .load(conn)
}

/// The cached balance of an account.
pub fn balance(conn: &mut AnyConnection, network_id: &str, account: &str) -> QueryResult<Decimal> {
    // On the concrete connection (see `on_backend!`): the balance read.
    let query = token_balances::table
        .find((network_id, account))
        .select(token_balances::balance_minor);
    Ok(on_backend!(conn, |c| query.first::<DbDecimal>(c))
        .optional()?
        .map_or(Decimal::ZERO, |d| d.0))
}

/// Posts a transaction and its entries and moves the cached balances, in the caller's
/// transaction (which holds the network's ledger lock).
pub fn post(conn: &mut AnyConnection, tx: &TxRow, entries: &[EntryRow]) -> QueryResult<()> {
    diesel::insert_into(ledger_transactions::table)
        .values(tx)
        .execute(conn)?;
    for e in entries {
        diesel::insert_into(ledger_entries::table)
            .values(e)
            .execute(conn)?;
        let current: Option<DbDecimal> = token_balances::table
            .find((&e.network_id, &e.account))
            .select(token_balances::balance_minor)
            .get_result(conn)
            .optional()?;
        match current {
            Some(b) => {
                diesel::update(token_balances::table.find((&e.network_id, &e.account)))
                    .set(token_balances::balance_minor.eq(DbDecimal(b.0 + e.amount_minor.0)))
                    .execute(conn)?;
            }
            None => {
                diesel::insert_into(token_balances::table)
                    .values(BalanceRow {
                        network_id: e.network_id.clone(),
                        account: e.account.clone(),
                        balance_minor: e.amount_minor,
                    })
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// An account's entries up to `at` (all when `None`), oldest first.
pub fn account_entries(
    conn: &mut AnyConnection,
    network_id: &str,
    account: &str,
    at: Option<NaiveDateTime>,
) -> QueryResult<Vec<EntryRow>> {
    let mut q = ledger_entries::table
        .filter(ledger_entries::network_id.eq(network_id.to_owned()))
        .filter(ledger_entries::account.eq(account.to_owned()))
        .select(EntryRow::as_select())
        .into_boxed();
    if let Some(t) = at {
        q = q.filter(ledger_entries::created_at.le(t));
    }
    q.order(ledger_entries::id).load(conn)
}

/// An account's cached balance, if it is its balance at `at`: no entry of the account was
/// made after `at` (one statement, so one snapshot of both tables). None when there are such
/// entries (a past `at`), or when the account has none at all.
pub fn cached_total_at(
    conn: &mut AnyConnection,
    network_id: &str,
    account: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<Decimal>> {
    let later = ledger_entries::table
        .filter(ledger_entries::network_id.eq(network_id))
        .filter(ledger_entries::account.eq(account))
        .filter(ledger_entries::created_at.gt(at));
    token_balances::table
        .find((network_id, account))
        .filter(diesel::dsl::not(diesel::dsl::exists(later)))
        .select(token_balances::balance_minor)
        .get_result::<DbDecimal>(conn)
        .optional()
        .map(|d| d.map(|d| d.0))
}

/// An account's balance at `at`, summed by the database from its entries (None when SQLite
/// could not sum exactly: see [`super::types::sum_sql`]).
pub fn account_total(
    conn: &mut AnyConnection,
    network_id: &str,
    account: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<Decimal>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Nullable, Text};
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    let (sum, kind) = super::types::sum_sql(conn, "amount_minor");
    let row = ledger_entries::table
        .filter(ledger_entries::network_id.eq(network_id))
        .filter(ledger_entries::account.eq(account))
        .filter(ledger_entries::created_at.le(at))
        .select((sql::<Nullable<Text>>(&sum), sql::<Text>(&kind)))
        .first::<(Option<String>, String)>(conn);
    match row {
        Ok((sum, kind)) => Ok(super::types::exact_sum(sum.as_deref(), &kind)),
        // SQLite's integer sum overflowed.
        Err(_) if sqlite => Ok(None),
        Err(e) => Err(e),
    }
}

/// An account's entries made by `at` that are still vesting then (before their end or their
/// cliff): the only ones whose unvested part is not zero.
pub fn vesting_entries(
    conn: &mut AnyConnection,
    network_id: &str,
    account: &str,
    at: NaiveDateTime,
) -> QueryResult<Vec<EntryRow>> {
    ledger_entries::table
        .filter(ledger_entries::network_id.eq(network_id))
        .filter(ledger_entries::account.eq(account))
        .filter(ledger_entries::created_at.le(at))
        // A cliff is never after the end (`cliff_days` is at most `duration_days`), so an
        // entry still vesting at `at` ends after it; this reads the vesting index's range.
        .filter(ledger_entries::vest_end.gt(at))
        .select(EntryRow::as_select())
        .order(ledger_entries::id)
        .load(conn)
}

/// A page of an account's entries with their transactions, newest first.
pub fn entries_page(
    conn: &mut AnyConnection,
    network_id: &str,
    account: &str,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(EntryRow, TxRow)>> {
    let mut q = ledger_entries::table
        .inner_join(ledger_transactions::table)
        .filter(ledger_entries::network_id.eq(network_id.to_owned()))
        .filter(ledger_entries::account.eq(account.to_owned()))
        .select((EntryRow::as_select(), TxRow::as_select()))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(ledger_entries::id.lt(b.to_owned()));
    }
    q.order(ledger_entries::id.desc()).limit(limit).load(conn)
}

/// Reversals (transaction id reversed → reversal time) of the given transactions.
pub fn reversals(
    conn: &mut AnyConnection,
    tx_ids: &[String],
) -> QueryResult<BTreeMap<String, NaiveDateTime>> {
    let rows: Vec<(Option<String>, NaiveDateTime)> = ledger_transactions::table
        .filter(ledger_transactions::reverses.eq_any(tx_ids))
        .select((
            ledger_transactions::reverses,
            ledger_transactions::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(r, t)| r.map(|r| (r, t)))
        .collect())
}

/// Every cached balance of a network.
pub fn balances(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Vec<BalanceRow>> {
    token_balances::table
        .filter(token_balances::network_id.eq(network_id))
        .select(BalanceRow::as_select())
        .load(conn)
}

/// Every transaction of a network.
pub fn transactions(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Vec<TxRow>> {
    ledger_transactions::table
        .filter(ledger_transactions::network_id.eq(network_id))
        .order(ledger_transactions::id)
        .select(TxRow::as_select())
        .load(conn)
}

/// Every entry of a network.
pub fn entries(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Vec<EntryRow>> {
    ledger_entries::table
        .filter(ledger_entries::network_id.eq(network_id))
        .order(ledger_entries::id)
        .select(EntryRow::as_select())
        .load(conn)
}

/// A member's departure, if recorded.
pub fn departure(
    conn: &mut AnyConnection,
    network_id: &str,
    agent_id: &str,
) -> QueryResult<Option<DepartureRow>> {
    departures::table
        .find((network_id, agent_id))
        .select(DepartureRow::as_select())
        .get_result(conn)
        .optional()
}

/// Records a departure.
pub fn insert_departure(conn: &mut AnyConnection, row: &DepartureRow) -> QueryResult<()> {
    diesel::insert_into(departures::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

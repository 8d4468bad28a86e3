//! Sign-In with Ethereum nonces and the wallet → agent lookup.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::SiweNonceRow;
use super::schema::{agents, siwe_nonces};
use super::AnyConnection;

/// Stores a new nonce, and forgets nonces that expired before `now` (bounded work).
pub fn insert_nonce(conn: &mut AnyConnection, row: &SiweNonceRow) -> QueryResult<()> {
    let expired: Vec<String> = siwe_nonces::table
        .filter(siwe_nonces::expires_at.lt(row.created_at))
        .select(siwe_nonces::nonce)
        .limit(100)
        .load(conn)?;
    if !expired.is_empty() {
        diesel::delete(siwe_nonces::table.filter(siwe_nonces::nonce.eq_any(expired)))
            .execute(conn)?;
    }
    diesel::insert_into(siwe_nonces::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// The nonce as stored, if it was ever issued (and not yet forgotten).
pub fn find_nonce(conn: &mut AnyConnection, nonce: &str) -> QueryResult<Option<SiweNonceRow>> {
    siwe_nonces::table
        .find(nonce)
        .select(SiweNonceRow::as_select())
        .get_result(conn)
        .optional()
}

/// Uses a nonce: true only for the one caller that marks an unused, unexpired nonce used.
pub fn use_nonce(conn: &mut AnyConnection, nonce: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        siwe_nonces::table
            .filter(siwe_nonces::nonce.eq(nonce))
            .filter(siwe_nonces::used_at.is_null())
            .filter(siwe_nonces::expires_at.gt(now)),
    )
    .set(siwe_nonces::used_at.eq(Some(now)))
    .execute(conn)
    .map(|n| n == 1)
}

/// Agents whose recorded wallet is `address` (EIP-55, as stored).
pub fn agents_with_wallet(conn: &mut AnyConnection, address: &str) -> QueryResult<Vec<String>> {
    agents::table
        .filter(agents::wallet_address.eq(address))
        .select(agents::id)
        .limit(2)
        .load(conn)
}

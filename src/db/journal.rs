//! Queries on the journal: append, seal in order, read, checkpoints.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rows::{CheckpointRow, JournalRow, SealRow};
use super::schema::{checkpoints, journal_entries, journal_seals, journal_unsealed};
use super::AnyConnection;
use crate::domain::journal::{canonical, chain_hash, Sealed, GENESIS};

/// Appends an unsealed entry (in the caller's transaction). The database queues it for the
/// sealer in the same statement: a trigger on `journal_entries` (migration `000014`) adds it
/// to `journal_unsealed`.
pub fn append(conn: &mut AnyConnection, row: &JournalRow) -> QueryResult<()> {
    let insert = diesel::insert_into(journal_entries::table).values(row);
    on_backend!(conn, |c| insert.execute(c)).map(|_| ())
}

/// Appends many entries with multi-row INSERTs (on the concrete connection), queued as
/// [`append`] queues one.
pub fn append_many(conn: &mut AnyConnection, rows: &[JournalRow]) -> QueryResult<()> {
    for chunk in rows.chunks(500) {
        on_backend!(conn, |c| {
            diesel::insert_into(journal_entries::table)
                .values(chunk)
                .execute(c)?
        });
    }
    Ok(())
}

/// The verification view of a stored entry and its seal.
pub fn view(e: &JournalRow, s: &SealRow) -> Sealed {
    Sealed {
        entry_id: e.id.clone(),
        network_id: e.network_id.clone(),
        seq: s.seq,
        recorded_at: chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(
            e.recorded_at,
            chrono::Utc,
        )
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        actor: e.actor.clone(),
        kind: e.kind.clone(),
        body: e.body.clone(),
        prev_hash: s.prev_hash.clone(),
        hash: s.hash.clone(),
    }
}

/// The last seal of a network: (seq, hash).
pub fn head(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Option<(i64, String)>> {
    journal_seals::table
        .filter(journal_seals::network_id.eq(network_id))
        .order(journal_seals::seq.desc())
        .select((journal_seals::seq, journal_seals::hash))
        .first(conn)
        .optional()
}

/// Up to `limit` unsealed entries of a network, oldest first, from the sealer's queue (so the
/// cost follows the tail, not the journal's length).
///
/// `after` starts the read past an entry id: the queue's index keeps the entries the sealer
/// removed until PostgreSQL vacuums it, and they sit at its start, so a sealer reading chunk
/// after chunk from the start would walk every earlier chunk again.
pub fn unsealed(
    conn: &mut AnyConnection,
    network_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<JournalRow>> {
    journal_unsealed::table
        .inner_join(journal_entries::table)
        .filter(journal_unsealed::network_id.eq(network_id))
        .filter(journal_unsealed::entry_id.gt(after.unwrap_or("")))
        .order(journal_unsealed::entry_id)
        .limit(limit)
        .select(JournalRow::as_select())
        .load(conn)
}

/// How many entries a network's journal holds, read in one statement: the last seal's
/// `seq` (seals are numbered 1, 2, 3… with no gap) plus the entries waiting to be sealed.
///
/// The journal only grows (entries and seals are never changed or removed, and the sealer
/// takes an entry off its queue in the transaction that seals it), so two reads that count
/// the same number saw the same committed entries. Every write that changes contributions,
/// outcomes, members, equations or distributions journals itself in its own transaction, so
/// an equal count also means none of them changed.
pub fn version(conn: &mut AnyConnection, network_id: &str) -> QueryResult<i64> {
    let head = journal_seals::table
        .filter(journal_seals::network_id.eq(network_id))
        .select(diesel::dsl::max(journal_seals::seq))
        .single_value();
    let waiting = journal_unsealed::table
        .filter(journal_unsealed::network_id.eq(network_id))
        .count()
        .single_value();
    // On the concrete connection (see `on_backend!`): every kept shares read checks it.
    let (head, waiting): (Option<i64>, Option<i64>) =
        on_backend!(conn, |c| diesel::select((head, waiting)).get_result(c))?;
    Ok(head.unwrap_or(0).saturating_add(waiting.unwrap_or(0)))
}

/// How many entries of a network are not sealed yet.
pub fn unsealed_count(conn: &mut AnyConnection, network_id: &str) -> QueryResult<i64> {
    journal_unsealed::table
        .filter(journal_unsealed::network_id.eq(network_id))
        .count()
        .get_result(conn)
}

/// Vacuums the sealing queue on PostgreSQL, removing the rows the sealer deleted (skipped if
/// another instance is vacuuming it). SQLite reuses the freed pages itself.
pub fn vacuum_queue(conn: &mut AnyConnection) -> QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        diesel::sql_query("VACUUM (SKIP_LOCKED) journal_unsealed").execute(pg)?;
    }
    Ok(())
}

/// Takes the lock that lets one sealer at a time chain a network's entries, until the end of
/// the transaction. On PostgreSQL a transaction-scoped advisory lock, apart from the
/// network's row lock that minting and governance writes take, so they never wait for a
/// sealer; SQLite's write transactions are already serial.
pub fn lock_sealing(conn: &mut AnyConnection, network_id: &str) -> QueryResult<()> {
    if let AnyConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(format!("holoptic-seal:{network_id}"))
            .execute(pg)?;
    }
    Ok(())
}

/// Networks with unsealed entries.
pub fn networks_to_seal(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    journal_unsealed::table
        .select(journal_unsealed::network_id)
        .distinct()
        .load(conn)
}

/// Seals `entries` after `head`, in order (the caller holds the network's lock).
pub fn seal(
    conn: &mut AnyConnection,
    head: Option<(i64, String)>,
    entries: &[JournalRow],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_owned()));
    let mut seals = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let mut s = SealRow {
            entry_id: e.id.clone(),
            network_id: e.network_id.clone(),
            seq,
            prev_hash: prev.clone(),
            hash: String::new(),
            sealed_at: now,
        };
        s.hash = chain_hash(&prev, &canonical(&view(e, &s)));
        prev = s.hash.clone();
        seals.push(s);
    }
    for chunk in seals.chunks(500) {
        on_backend!(conn, |c| diesel::insert_into(journal_seals::table)
            .values(chunk)
            .execute(c)?);
    }
    // Sealed: off the queue, in the same transaction. The network and the chunk's id range
    // bound the index scan: with `IN` alone, PostgreSQL (whose statistics see a near-empty
    // queue) walked the whole `(network_id, entry_id)` index for each chunk, 0.9 s a chunk
    // after 300,000 writes.
    for chunk in entries.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|e| e.id.as_str()).collect();
        let (Some(&low), Some(&high)) = (ids.iter().min(), ids.iter().max()) else {
            continue;
        };
        diesel::delete(
            journal_unsealed::table
                .filter(journal_unsealed::network_id.eq(&chunk[0].network_id))
                .filter(journal_unsealed::entry_id.ge(low))
                .filter(journal_unsealed::entry_id.le(high))
                .filter(journal_unsealed::entry_id.eq_any(&ids)),
        )
        .execute(conn)?;
    }
    Ok(entries.len())
}

/// A page of a network's sealed entries after `after_seq`, in order, filtered by kind and
/// actor: at most `limit` entries, and no more than fit in `max_bytes` bytes of bodies
/// (always at least one). The bodies' lengths are read first, so a page of large entries
/// (batches) is cut before their bodies are loaded. The flag says whether entries that
/// matched were left for a later page.
pub fn filtered(
    conn: &mut AnyConnection,
    network_id: &str,
    after_seq: i64,
    kind: Option<&str>,
    actor: Option<&str>,
    limit: i64,
    max_bytes: i64,
) -> QueryResult<(Vec<(JournalRow, SealRow)>, bool)> {
    macro_rules! page {
        ($select:expr) => {{
            let mut q = journal_entries::table
                .inner_join(journal_seals::table)
                .filter(journal_seals::network_id.eq(network_id.to_owned()))
                .filter(journal_seals::seq.gt(after_seq))
                .select($select)
                .into_boxed();
            if let Some(k) = kind {
                q = q.filter(journal_entries::kind.eq(k.to_owned()));
            }
            if let Some(a) = actor {
                q = q.filter(journal_entries::actor.eq(a.to_owned()));
            }
            q.order(journal_seals::seq)
        }};
    }
    let lengths: Vec<i32> = page!(octet_length(journal_entries::body))
        .limit(limit)
        .load(conn)?;
    if lengths.is_empty() {
        return Ok((Vec::new(), false));
    }
    let mut total = 0_i64;
    let fit = lengths
        .iter()
        .take_while(|n| {
            total = total.saturating_add(i64::from(**n));
            total <= max_bytes
        })
        .count()
        .max(1);
    let rows = page!((JournalRow::as_select(), SealRow::as_select()))
        .limit(i64::try_from(fit).unwrap_or(limit))
        .load(conn)?;
    Ok((rows, lengths.len() > fit))
}

diesel::define_sql_function! {
    /// A text's size in bytes (`octet_length`: PostgreSQL, and SQLite since 3.43; the bundled
    /// SQLite is 3.53). Neither reads the text to count it.
    fn octet_length(x: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}

/// Stores a checkpoint.
pub fn insert_checkpoint(conn: &mut AnyConnection, row: &CheckpointRow) -> QueryResult<()> {
    diesel::insert_into(checkpoints::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A network's checkpoints, newest first.
pub fn checkpoints(
    conn: &mut AnyConnection,
    network_id: &str,
    limit: i64,
) -> QueryResult<Vec<CheckpointRow>> {
    checkpoints::table
        .filter(checkpoints::network_id.eq(network_id))
        .order(checkpoints::seq.desc())
        .limit(limit)
        .select(CheckpointRow::as_select())
        .load(conn)
}

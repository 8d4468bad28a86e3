//! The audit journal's operations: record a change (in the change's own transaction), seal
//! entries into the hash chain in order, verify a network, and sign checkpoints.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{json, Value};

use crate::db::rows::{now, CheckpointRow, JournalRow};
use crate::db::{self, write_tx, AnyConnection, Db};
use crate::error::ApiError;

/// Records a state change. Runs in the caller's transaction: no change without its entry.
pub fn record(
    conn: &mut AnyConnection,
    network_id: &str,
    actor: Option<&str>,
    kind: &str,
    body: Value,
) -> Result<(), ApiError> {
    // serde_json's maps are sorted: this is the canonical form.
    let row = entry(network_id, actor, kind, body.to_string());
    db::journal::append(conn, &row)?;
    // Webhook deliveries for the events this change announces, in the same transaction.
    crate::webhooks::enqueue(conn, network_id, &row.id, kind, &body)
}

/// Records a state change whose body is already canonical JSON text (compact, keys sorted),
/// in the caller's transaction. Kinds that announce a webhook event go through `record`,
/// which reads the body's fields.
pub fn record_text(
    conn: &mut AnyConnection,
    network_id: &str,
    actor: Option<&str>,
    kind: &str,
    body: String,
) -> Result<(), ApiError> {
    if crate::webhooks::announces(kind) {
        let value = serde_json::from_str(&body)
            .map_err(|e| ApiError::Internal(format!("journal body: {e}")))?;
        return record(conn, network_id, actor, kind, value);
    }
    db::journal::append(conn, &entry(network_id, actor, kind, body))?;
    Ok(())
}

/// The entry [`record_text`] appends, for a caller that writes it in one statement with the
/// change it records ([`crate::db::together`]). None for a kind that announces a webhook
/// event: that one must go through [`record_text`], which also queues the deliveries.
pub(crate) fn plain_entry(
    network_id: &str,
    actor: Option<&str>,
    kind: &str,
    body: String,
) -> Option<JournalRow> {
    (!crate::webhooks::announces(kind)).then(|| entry(network_id, actor, kind, body))
}

/// A new, unsealed entry recorded now.
fn entry(network_id: &str, actor: Option<&str>, kind: &str, body: String) -> JournalRow {
    JournalRow {
        id: uuid::Uuid::now_v7().to_string(),
        network_id: network_id.to_owned(),
        recorded_at: now(),
        actor: actor.map(str::to_owned),
        kind: kind.to_owned(),
        body,
    }
}

/// Records several changes of one kind at once (a batch), in the caller's transaction.
pub fn record_many(
    conn: &mut AnyConnection,
    network_id: &str,
    actor: Option<&str>,
    kind: &str,
    bodies: Vec<Value>,
) -> Result<(), ApiError> {
    let at = now();
    let rows: Vec<JournalRow> = bodies
        .into_iter()
        .map(|body| JournalRow {
            id: uuid::Uuid::now_v7().to_string(),
            network_id: network_id.to_owned(),
            recorded_at: at,
            actor: actor.map(str::to_owned),
            kind: kind.to_owned(),
            body: body.to_string(),
        })
        .collect();
    db::journal::append_many(conn, &rows)?;
    Ok(())
}

/// Entries sealed in one transaction, so a long tail (after a bulk import) is sealed in
/// many short transactions.
pub const SEAL_CHUNK: i64 = 1_000;

/// Seals a network's unsealed entries, in order, a chunk per transaction, under the
/// network's sealing lock: sealers of several instances take turns, while writers (which
/// never wait for the sealer) go on.
///
/// One call seals every entry committed before it began: it reads the queue from its start,
/// chunk after chunk in id order, and stops at the first chunk shorter than
/// [`SEAL_CHUNK`], which reached the queue's end as it then stood. Entries committed since
/// wait for the next call (the sealer's next round, or the next journal read), and so does
/// one committed late with a lower id than a chunk already sealed: each call starts from the
/// queue's start. Why not go on until the queue is empty: under a steady stream of writes a
/// call then chases the tail a few entries a transaction (on PostgreSQL, 1,179 sealing
/// commits for 5,269 single writes in five seconds, a third of PostgreSQL's CPU a write;
/// `bench/analysis.md`).
pub fn seal(conn: &mut AnyConnection, network_id: &str) -> Result<usize, ApiError> {
    let mut sealed = 0;
    let mut after: Option<String> = None;
    loop {
        // Nothing queued past the last chunk: no write transaction at all.
        if db::journal::unsealed(conn, network_id, after.as_deref(), 1)?.is_empty() {
            return Ok(sealed);
        }
        let (count, last) = write_tx(conn, |conn| {
            db::journal::lock_sealing(conn, network_id)?;
            let entries = db::journal::unsealed(conn, network_id, after.as_deref(), SEAL_CHUNK)?;
            let last = entries.last().map(|e| e.id.clone());
            let head = db::journal::head(conn, network_id)?;
            Ok::<_, ApiError>((db::journal::seal(conn, head, &entries, now())?, last))
        })?;
        sealed += count;
        // Another sealer may have taken part of the chunk meanwhile: what it left is sealed.
        if i64::try_from(count).is_ok_and(|n| n < SEAL_CHUNK) {
            return Ok(sealed);
        }
        after = last;
    }
}

/// Seals every network, forever, every `every` (started with the server). Several instances
/// may run it: the sealing lock and the unique sequence keep the chain single.
pub async fn sealer(db: Db, every: Duration) {
    let mut since_vacuum = 0;
    loop {
        tokio::time::sleep(every).await;
        let result = db
            .run(move |conn| {
                let mut sealed = 0;
                for network in db::journal::networks_to_seal(conn)? {
                    sealed += seal(conn, &network)?;
                }
                Ok::<_, ApiError>(sealed)
            })
            .await;
        match result {
            Ok(sealed) => since_vacuum += sealed,
            Err(e) => tracing::warn!(error = %e, "sealing the journal failed; will retry"),
        }
        if since_vacuum >= VACUUM_AFTER {
            since_vacuum = 0;
            let vacuumed = db
                .run(|conn| db::journal::vacuum_queue(conn).map_err(ApiError::from))
                .await;
            if let Err(e) = vacuumed {
                tracing::warn!(error = %e, "vacuuming the sealing queue failed");
            }
        }
    }
}

/// Entries sealed by this process between two vacuums of the sealing queue on PostgreSQL.
/// Every sealed entry leaves a dead row in the queue and in its index; until a vacuum
/// removes them, every read of the queue (the sealer's own, and the journal count shares
/// reads check) walks them: after 300,000 writes, 6 ms to count an empty queue.
const VACUUM_AFTER: usize = 50_000;

/// The result of verifying a network.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Verification {
    /// True when the chain is unbroken, every distribution recomputes and the ledger checks.
    pub ok: bool,
    /// Sealed entries checked.
    pub entries: i64,
    /// The head: last sequence number and hash.
    pub head_seq: i64,
    /// The head hash.
    pub head_hash: Option<String>,
    /// Entries not yet sealed (the tail the sealer has not reached).
    pub unsealed: i64,
    /// The first entry that breaks the chain, if any: its sequence number, id and problem.
    pub first_bad_entry: Option<BadEntry>,
    /// Distributions whose recomputation differs.
    pub distribution_problems: Vec<String>,
    /// Token ledger problems.
    pub ledger_problems: Vec<String>,
}

/// An entry that breaks the chain.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BadEntry {
    /// Where the chain breaks.
    pub seq: i64,
    /// The entry there.
    pub entry_id: String,
    /// What is wrong.
    pub problem: String,
}

/// Entries `verify` reads per query, and at most how many bytes of bodies.
const VERIFY_PAGE: i64 = 1_000;
const VERIFY_PAGE_BYTES: i64 = 8 << 20;

/// Replays a network's journal: the chain, every distribution and every balance.
pub fn verify(conn: &mut AnyConnection, network_id: &str) -> Result<Verification, ApiError> {
    seal(conn, network_id)?;
    // A page at a time, bounded in entries and in body bytes (a batch's entry holds up to
    // 1,000 contributions), so memory does not grow with the journal.
    let mut walk = crate::domain::journal::Walk::default();
    let mut entries = 0_i64;
    let mut head: Option<(i64, String)> = None;
    let mut broken = None;
    loop {
        let after = head.as_ref().map_or(0, |h| h.0);
        let (rows, _) = db::journal::filtered(
            conn,
            network_id,
            after,
            None,
            None,
            VERIFY_PAGE,
            VERIFY_PAGE_BYTES,
        )?;
        let Some((_, last)) = rows.last() else { break };
        head = Some((last.seq, last.hash.clone()));
        entries = entries.saturating_add(i64::try_from(rows.len()).unwrap_or(i64::MAX));
        if broken.is_none() {
            broken = rows
                .iter()
                .try_for_each(|(e, s)| walk.step(&db::journal::view(e, s)))
                .err();
        }
    }
    let first_bad_entry = broken.map(|(seq, entry_id, problem)| BadEntry {
        seq,
        entry_id,
        problem,
    });
    let unsealed = db::journal::unsealed_count(conn, network_id)?;
    let mut distribution_problems = Vec::new();
    for d in db::distributions::list(conn, network_id, None, i64::MAX)? {
        let v = crate::api::distributions::verify(conn, network_id, &d)?;
        if !v.matches {
            distribution_problems.push(format!(
                "distribution {}: {}",
                d.id,
                v.mismatches.join("; ")
            ));
        }
    }
    let ledger_problems = crate::tokens::check(conn, network_id)?;
    let (head_seq, head_hash) = head.map_or((0, None), |(seq, hash)| (seq, Some(hash)));
    Ok(Verification {
        ok: first_bad_entry.is_none()
            && distribution_problems.is_empty()
            && ledger_problems.is_empty(),
        entries,
        head_seq,
        head_hash,
        unsealed,
        first_bad_entry,
        distribution_problems,
        ledger_problems,
    })
}

/// The service's checkpoint signing key.
pub struct CheckpointSigner {
    /// Key id published with the public key.
    pub key_id: String,
    key: SigningKey,
}

impl CheckpointSigner {
    /// From a base64 32-byte seed, or a fresh random key (checkpoints then verify only
    /// against this process's public key).
    pub fn new(seed_b64: Option<&str>, key_id: &str) -> Result<Self, String> {
        let key = match seed_b64 {
            Some(s) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|_| "HOLOPTIC_SIGNING_KEY must be base64".to_owned())?;
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| "HOLOPTIC_SIGNING_KEY must be 32 bytes".to_owned())?;
                SigningKey::from_bytes(&seed)
            }
            None => SigningKey::generate(&mut rand::rngs::OsRng),
        };
        Ok(Self {
            key_id: key_id.to_owned(),
            key,
        })
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// The message a checkpoint signs: canonical JSON of network, seq, head hash and time.
    pub fn message(network_id: &str, seq: i64, head_hash: &str, signed_at: &str) -> String {
        json!({ "head_hash": head_hash, "network_id": network_id, "seq": seq, "signed_at": signed_at }).to_string()
    }

    /// Signs the head of a network's journal (sealing first) and stores the checkpoint.
    pub fn checkpoint(
        self: &Arc<Self>,
        conn: &mut AnyConnection,
        network_id: &str,
    ) -> Result<CheckpointRow, ApiError> {
        seal(conn, network_id)?;
        let (seq, head_hash) = db::journal::head(conn, network_id)?
            .ok_or_else(|| ApiError::Conflict("the journal is empty".into()))?;
        let signed_at = now();
        let at = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(signed_at, chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let signature = hex::encode(
            self.key
                .sign(Self::message(network_id, seq, &head_hash, &at).as_bytes())
                .to_bytes(),
        );
        let row = CheckpointRow {
            network_id: network_id.into(),
            seq,
            head_hash,
            signed_at,
            key_id: self.key_id.clone(),
            signature,
        };
        write_tx(conn, |conn| {
            db::journal::insert_checkpoint(conn, &row).map_err(ApiError::from)
        })?;
        Ok(row)
    }
}

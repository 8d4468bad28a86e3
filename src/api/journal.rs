//! The audit journal over HTTP: read it, verify a network, sign and list checkpoints, and
//! publish the checkpoint public key.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::{ReadErrors, WriteErrors};
use super::extract::ApiQuery;
use super::{page_limit, query_uuid, utc, Access, AppState};
use crate::auth::{Authenticated, Caller};
use crate::db::{self, rows::CheckpointRow};
use crate::error::ApiError;
use crate::journal::{self, CheckpointSigner, Verification};

/// One sealed journal entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JournalEntryOut {
    /// Gapless sequence number within the network, from 1.
    pub seq: i64,
    /// Entry id.
    pub entry_id: String,
    /// When the change happened.
    pub recorded_at: DateTime<Utc>,
    /// Who made it.
    pub actor: Option<String>,
    /// What kind of change (`contribution.recorded`, `distribution.committed`, …).
    pub kind: String,
    /// The change.
    pub body: serde_json::Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// SHA-256(prev_hash ‖ canonical entry).
    pub hash: String,
}

/// A page of the journal.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JournalPage {
    /// Entries in sequence order.
    pub items: Vec<JournalEntryOut>,
    /// Pass as `after_seq` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after_seq: Option<i64>,
}

/// Paging and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JournalParams {
    /// Entries after this sequence number (default 0).
    pub after_seq: Option<i64>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this actor (agent id).
    pub actor: Option<String>,
    /// Page size, 1-200 (default 50). A page also stops before its entries' bodies pass
    /// 1 MiB, because a batch's entry can hold 1,000 contributions; it always holds at least
    /// one entry.
    pub limit: Option<i64>,
}

/// A signed checkpoint of a network's journal head.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointOut {
    /// Network.
    pub network_id: String,
    /// Head sequence number.
    pub seq: i64,
    /// Head hash.
    pub head_hash: String,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 signature (hex) over `message`.
    pub signature: String,
    /// Exactly the bytes signed: canonical JSON of head_hash, network_id, seq and signed_at.
    pub message: String,
}

/// The checkpoint public key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyOut {
    /// Key id.
    pub key_id: String,
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
}

fn checkpoint_out(c: CheckpointRow) -> CheckpointOut {
    let at = utc(c.signed_at);
    let message = CheckpointSigner::message(
        &c.network_id,
        c.seq,
        &c.head_hash,
        &at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    );
    CheckpointOut {
        network_id: c.network_id,
        seq: c.seq,
        head_hash: c.head_hash,
        signed_at: at,
        key_id: c.key_id,
        signature: c.signature,
        message,
    }
}

/// The most bytes of entry bodies one page holds (at least one entry is always
/// returned): a batch's entry holds up to 1,000 contributions.
pub const PAGE_MAX_BYTES: i64 = 1 << 20;

/// Read a network's journal in sequence order (sealed entries; see verify for the tail).
#[utoipa::path(
    tag = "audit",
    params(("network" = String, Path, description = "Network id or slug"), JournalParams),
    responses((status = 200, description = "A page of the journal", body = JournalPage), ReadErrors)
)]
#[get("/networks/{network}/journal")]
pub async fn list_journal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<JournalParams>,
) -> Result<web::Json<JournalPage>, ApiError> {
    let q = query.0;
    let limit = page_limit(q.limit)?;
    let after = q.after_seq.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::field("after_seq", "must not be negative"));
    }
    let actor = query_uuid("actor", q.actor.as_deref())?;
    if q.kind.as_ref().is_some_and(|k| k.len() > 64) {
        return Err(ApiError::field("kind", "must be at most 64 characters"));
    }
    let key = path.into_inner();
    let (mut rows, cut) = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            journal::seal(conn, &access.network.id)?;
            Ok::<_, ApiError>(db::journal::filtered(
                conn,
                &access.network.id,
                after,
                q.kind.as_deref(),
                actor.as_deref(),
                limit + 1,
                PAGE_MAX_BYTES,
            )?)
        })
        .await?;
    let more = cut || rows.len() > usize::try_from(limit).unwrap_or(0);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_after_seq = if more {
        rows.last().map(|(_, s)| s.seq)
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|(e, s)| JournalEntryOut {
            seq: s.seq,
            recorded_at: utc(e.recorded_at),
            body: serde_json::from_str(&e.body)
                .unwrap_or(serde_json::Value::String(e.body.clone())),
            entry_id: e.id,
            actor: e.actor,
            kind: e.kind,
            prev_hash: s.prev_hash,
            hash: s.hash,
        })
        .collect();
    Ok(web::Json(JournalPage {
        items,
        next_after_seq,
    }))
}

/// Replay a network's journal: the hash chain is unbroken (else the first bad entry), every
/// distribution recomputes to its stored lines, and every token balance equals its entries.
#[utoipa::path(
    tag = "audit",
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 200, description = "The verification", body = Verification), ReadErrors)
)]
#[get("/networks/{network}/journal/verify")]
pub async fn verify_journal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Verification>, ApiError> {
    let key = path.into_inner();
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            journal::verify(conn, &access.network.id)
        })
        .await
        .map(web::Json)
}

/// Sign the current head of the journal (stewards only).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 201, description = "The checkpoint", body = CheckpointOut), WriteErrors)
)]
#[post("/networks/{network}/checkpoints")]
pub async fn create_checkpoint(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let signer = state.signer.clone();
    let row = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, Some(caller.0))?;
            access.require_steward()?;
            signer.checkpoint(conn, &access.network.id)
        })
        .await?;
    Ok(HttpResponse::Created().json(checkpoint_out(row)))
}

/// A network's checkpoints, newest first.
#[utoipa::path(
    tag = "audit",
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 200, description = "Checkpoints", body = Vec<CheckpointOut>), ReadErrors)
)]
#[get("/networks/{network}/checkpoints")]
pub async fn list_checkpoints(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Vec<CheckpointOut>>, ApiError> {
    let key = path.into_inner();
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            Ok::<_, ApiError>(db::journal::checkpoints(conn, &access.network.id, 200)?)
        })
        .await?;
    Ok(web::Json(rows.into_iter().map(checkpoint_out).collect()))
}

/// The public key that checkpoints are signed with, to check them offline.
#[utoipa::path(tag = "audit", responses((status = 200, description = "The key", body = SigningKeyOut)))]
#[get("/keys/checkpoint")]
pub async fn get_signing_key(state: web::Data<AppState>) -> web::Json<SigningKeyOut> {
    web::Json(SigningKeyOut {
        key_id: state.signer.key_id.clone(),
        algorithm: "Ed25519".into(),
        public_key: state.signer.public_hex(),
    })
}

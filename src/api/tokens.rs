//! The network token: definition, balances (total, vested, unvested, at any date), entries,
//! holders, transfers, leavers and the whole-ledger check.

use actix_web::{get, post, web, HttpResponse};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{
    decode_cursor, page_limit, paginate, path_uuid, stored_id, utc, Access, AppState, AtParams,
    Page, PageParams,
};
use crate::accounting::{to_human, to_minor};
use crate::auth::{Authenticated, Caller};
use crate::db::rows::{now, TokenRow};
use crate::db::{self, write_tx};
use crate::domain::bounded_text;
use crate::domain::contribution::parse_decimal;
use crate::domain::equation::TokenRules;
use crate::domain::ids::AgentId;
use crate::domain::ledger::{account_agent, agent_account, ISSUANCE, REDEMPTION};
use crate::domain::network::Role;
use crate::domain::wallet::WalletAddress;
use crate::error::ApiError;
use crate::tokens;

/// A token to define.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// 1-11 of A-Z and 0-9.
    #[schema(example = "FAB")]
    pub symbol: String,
    /// 1-100 characters.
    #[schema(example = "Fab Lab contribution token")]
    pub name: String,
    /// Fraction digits, 0-18.
    #[schema(example = 18)]
    pub decimals: i64,
    /// Chain id of an on-chain twin (for exports).
    pub chain_id: Option<i64>,
    /// Its contract address (EIP-55 or lowercase).
    pub address: Option<String>,
}

/// The network token and its supply.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenOut {
    /// Symbol.
    pub symbol: String,
    /// Name.
    pub name: String,
    /// Fraction digits.
    pub decimals: i32,
    /// Chain id.
    pub chain_id: Option<i64>,
    /// Contract address.
    pub address: Option<String>,
    /// Minted − burned, which equals the sum of all balances.
    pub supply: String,
    /// Ever minted (net of reversals).
    pub minted: String,
    /// Ever burned.
    pub burned: String,
    /// The rules of the equation in force (absent: no minting, no transfers).
    pub rules: Option<TokenRules>,
}

/// A member's balance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BalanceOut {
    /// The member.
    pub agent_id: AgentId,
    /// The date.
    pub at: DateTime<Utc>,
    /// Everything held.
    pub total: String,
    /// Spendable.
    pub vested: String,
    /// Still vesting.
    pub unvested: String,
}

/// A ledger entry of an account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntryOut {
    /// Entry id.
    pub id: String,
    /// Its transaction.
    pub transaction_id: String,
    /// mint, transfer, burn, reversal or vesting_release.
    pub kind: String,
    /// What caused it (`contribution:<id>`, `line:<id>`, `transfer:<id>`, `departure:<agent>`).
    pub cause: String,
    /// Why.
    pub reason: String,
    /// Signed amount in tokens (credit positive).
    pub amount: String,
    /// When vesting ends, for vesting mints.
    pub vests_until: Option<DateTime<Utc>>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A holder.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HolderOut {
    /// The member.
    pub agent_id: AgentId,
    /// Tokens held.
    pub balance: String,
}

/// A transfer of vested tokens to another member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferIn {
    /// The receiving member.
    pub to: AgentId,
    /// Positive amount in tokens, at most the token's fraction digits.
    #[schema(example = "12.5")]
    pub amount: String,
    /// Client-chosen id (1-100 characters): a retry with it never moves tokens twice.
    pub transfer_id: Option<String>,
    /// A note (up to 500 characters).
    #[serde(default)]
    pub memo: String,
}

/// A posted (or replayed) transfer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferOut {
    /// The ledger transaction.
    pub transaction_id: String,
    /// Its transfer id.
    pub transfer_id: String,
    /// From.
    pub from: AgentId,
    /// To.
    pub to: AgentId,
    /// Amount in tokens.
    pub amount: String,
    /// True when this is a retry of an earlier transfer with the same id.
    pub replayed: bool,
}

/// A leaver.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartureIn {
    /// The member leaving.
    pub agent_id: AgentId,
    /// Why (1-500 characters).
    pub reason: String,
    /// A for-cause departure (the rules may then forfeit tokens earned by non-cash work).
    #[serde(default)]
    pub for_cause: bool,
}

/// What a departure did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DepartureOut {
    /// The member.
    pub agent_id: AgentId,
    /// Tokens forfeited (burned) by the leaver rules.
    pub forfeited: String,
}

/// The whole-ledger check.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerCheckOut {
    /// True when every invariant holds.
    pub ok: bool,
    /// Every problem found.
    pub problems: Vec<String>,
}

fn units(minor: Decimal, token: &TokenRow) -> String {
    to_human(minor, u32::try_from(token.decimals).unwrap_or(0))
}

fn need_token(conn: &mut db::AnyConnection, network: &str) -> Result<TokenRow, ApiError> {
    db::ledger::token(conn, network)?
        .ok_or_else(|| ApiError::NotFound("this network has no token".into()))
}

/// Define the network's token (stewards only; once).
#[utoipa::path(
    tag = "tokens",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = TokenIn,
    responses((status = 201, description = "Defined", body = TokenOut), WriteErrors)
)]
#[post("/networks/{network}/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<TokenIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let shaped = !input.symbol.is_empty()
        && input.symbol.len() <= 11
        && input
            .symbol
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !shaped {
        return Err(ApiError::field(
            "symbol",
            "must be 1-11 characters of A-Z and 0-9",
        ));
    }
    bounded_text("name", input.name.trim(), 1, 100)?;
    let decimals = i32::try_from(input.decimals)
        .ok()
        .filter(|d| (0..=18).contains(d))
        .ok_or_else(|| ApiError::field("decimals", "must be 0 to 18"))?;
    if input.chain_id.is_some_and(|c| c <= 0) {
        return Err(ApiError::field("chain_id", "must be positive"));
    }
    let address = input
        .address
        .as_deref()
        .map(|a| WalletAddress::parse("address", a))
        .transpose()?;
    let key = path.into_inner();
    let out = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                if db::ledger::token(conn, &access.network.id)?.is_some() {
                    return Err(ApiError::Conflict(
                        "this network already has a token".into(),
                    ));
                }
                let row = TokenRow {
                    network_id: access.network.id.clone(),
                    symbol: input.symbol,
                    name: input.name.trim().to_owned(),
                    decimals,
                    chain_id: input.chain_id,
                    address: address.map(|a| a.as_str().to_owned()),
                    created_at: now(),
                };
                db::ledger::insert_token(conn, &row)?;
                let body = serde_json::json!({
                    "symbol": row.symbol, "name": row.name, "decimals": row.decimals, "chain_id": row.chain_id, "address": row.address,
                });
                crate::journal::record(conn, &row.network_id, Some(&caller.0.to_string()), "token.defined", body)?;
                token_out(conn, row)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

fn token_out(conn: &mut db::AnyConnection, t: TokenRow) -> Result<TokenOut, ApiError> {
    let minted = -db::ledger::balance(conn, &t.network_id, ISSUANCE)?;
    let burned = db::ledger::balance(conn, &t.network_id, REDEMPTION)?;
    let rules = tokens::active(conn, &t.network_id)?.and_then(|a| a.rules);
    Ok(TokenOut {
        supply: units(minted - burned, &t),
        minted: units(minted, &t),
        burned: units(burned, &t),
        rules,
        symbol: t.symbol,
        name: t.name,
        decimals: t.decimals,
        chain_id: t.chain_id,
        address: t.address,
    })
}

/// The network's token, its supply and its rules.
#[utoipa::path(
    tag = "tokens",
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 200, description = "The token", body = TokenOut), ReadErrors)
)]
#[get("/networks/{network}/token")]
pub async fn get_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TokenOut>, ApiError> {
    let key = path.into_inner();
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let t = need_token(conn, &access.network.id)?;
            token_out(conn, t)
        })
        .await
        .map(web::Json)
}

/// A member's balance — total, vested and unvested — now or at a past date.
#[utoipa::path(
    tag = "tokens",
    params(("network" = String, Path, description = "Network id or slug"), ("agent_id" = String, Path, description = "Agent id"), AtParams),
    responses((status = 200, description = "The balance", body = BalanceOut), ReadErrors)
)]
#[get("/networks/{network}/balances/{agent_id}")]
pub async fn get_balance(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<AtParams>,
) -> Result<web::Json<BalanceOut>, ApiError> {
    let (key, agent) = path.into_inner();
    let agent = path_uuid("agent_id", &agent)?;
    let at = query.0.at.map_or_else(now, |t| t.naive_utc());
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let t = need_token(conn, &access.network.id)?;
            let h = tokens::holding(conn, &access.network.id, &agent, at)?;
            Ok(BalanceOut {
                agent_id: stored_id(&agent),
                at: utc(at),
                total: units(h.total, &t),
                vested: units(h.total - h.unvested, &t),
                unvested: units(h.unvested, &t),
            })
        })
        .await
        .map(web::Json)
}

/// A member's ledger entries, newest first.
#[utoipa::path(
    tag = "tokens",
    params(("network" = String, Path, description = "Network id or slug"), ("agent_id" = String, Path, description = "Agent id"), PageParams),
    responses((status = 200, description = "A page of entries", body = Page<EntryOut>), ReadErrors)
)]
#[get("/networks/{network}/balances/{agent_id}/entries")]
pub async fn list_entries(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<EntryOut>>, ApiError> {
    let (key, agent) = path.into_inner();
    let agent = path_uuid("agent_id", &agent)?;
    let limit = page_limit(query.0.limit)?;
    let before = decode_cursor(query.0.cursor.as_deref())?;
    let (rows, token) = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let t = need_token(conn, &access.network.id)?;
            let rows = db::ledger::entries_page(
                conn,
                &access.network.id,
                &agent_account(&agent),
                before.as_deref(),
                limit + 1,
            )?;
            Ok::<_, ApiError>((rows, t))
        })
        .await?;
    Ok(web::Json(paginate(
        rows,
        limit,
        |(e, _)| e.id.as_str(),
        |(e, tx)| EntryOut {
            amount: units(e.amount_minor.0, &token),
            vests_until: e.vest_end.map(utc),
            created_at: utc(e.created_at),
            id: e.id,
            transaction_id: e.transaction_id,
            kind: tx.kind,
            cause: format!("{}:{}", tx.cause_type, tx.cause_id),
            reason: tx.reason,
        },
    )))
}

/// Token holders, largest balance first.
#[utoipa::path(
    tag = "tokens",
    params(("network" = String, Path, description = "Network id or slug"), PageParams),
    responses((status = 200, description = "A page of holders", body = Page<HolderOut>), ReadErrors)
)]
#[get("/networks/{network}/holders")]
pub async fn list_holders(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<HolderOut>>, ApiError> {
    let limit = usize::try_from(page_limit(query.0.limit)?).unwrap_or(50);
    let after = decode_cursor(query.0.cursor.as_deref())?;
    let key = path.into_inner();
    let (mut rows, token) = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let t = need_token(conn, &access.network.id)?;
            let rows: Vec<(String, Decimal)> = db::ledger::balances(conn, &access.network.id)?
                .into_iter()
                .filter_map(|b| {
                    account_agent(&b.account).map(|a| (a.to_owned(), b.balance_minor.0))
                })
                .filter(|(_, v)| !v.is_zero())
                .collect();
            Ok::<_, ApiError>((rows, t))
        })
        .await?;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let start = after.map_or(0, |a| {
        rows.iter()
            .position(|r| r.0 == a)
            .map_or(rows.len(), |p| p + 1)
    });
    let mut items: Vec<(String, Decimal)> = rows.into_iter().skip(start).take(limit + 1).collect();
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items
            .last()
            .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&r.0))
    });
    Ok(web::Json(Page {
        items: items
            .into_iter()
            .map(|(a, v)| HolderOut {
                agent_id: stored_id(&a),
                balance: units(v, &token),
            })
            .collect(),
        next_cursor: next_cursor.flatten(),
    }))
}

/// Transfer vested tokens to another member (when the rules allow transfers). Idempotent by
/// `transfer_id` (or the `Idempotency-Key` header); concurrent spends never overdraw.
#[utoipa::path(
    tag = "tokens",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = TransferIn,
    responses(
        (status = 201, description = "Transferred", body = TransferOut),
        (status = 200, description = "A retry of an earlier transfer: nothing moved again", body = TransferOut),
        WriteErrors
    )
)]
#[post("/networks/{network}/transfers")]
pub async fn create_transfer(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<TransferIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let amount = parse_decimal("amount", &input.amount)?;
    if amount <= Decimal::ZERO {
        return Err(ApiError::field("amount", "must be greater than zero"));
    }
    if let Some(id) = &input.transfer_id {
        bounded_text("transfer_id", id, 1, 100)?;
    }
    bounded_text("memo", &input.memo, 0, 500)?;
    let transfer_id = input
        .transfer_id
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let to = input.to.to_string();
    let key = path.into_inner();
    let (out, fresh) = state
        .db
        .write(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                if !matches!(access.member_role()?, Role::Member | Role::Steward) {
                    return Err(ApiError::Forbidden(
                        "only members and stewards hold and move tokens".into(),
                    ));
                }
                let network = access.network.id;
                let token = need_token(conn, &network)?;
                let scale = u32::try_from(token.decimals).unwrap_or(0);
                if amount.scale() > scale {
                    return Err(ApiError::field(
                        "amount",
                        format!("must have at most {scale} fraction digits"),
                    ));
                }
                let from = caller.0.to_string();
                if to == from {
                    return Err(ApiError::field("to", "must be another member"));
                }
                if db::members::membership(conn, &network, &to)?.is_none() {
                    return Err(ApiError::field("to", "is not a member of this network"));
                }
                let minor = to_minor(amount, scale)
                    .ok_or_else(|| ApiError::field("amount", "is too large"))?;
                let (tx, fresh) =
                    tokens::transfer(conn, &network, &from, &to, minor, &transfer_id, input.memo)?;
                Ok((
                    TransferOut {
                        transaction_id: tx.id,
                        transfer_id: transfer_id.clone(),
                        from: caller.0,
                        to: stored_id(&to),
                        amount: units(minor, &token),
                        replayed: !fresh,
                    },
                    fresh,
                ))
            })
        })
        .await?;
    Ok(if fresh {
        HttpResponse::Created().json(out)
    } else {
        HttpResponse::Ok().json(out)
    })
}

/// Record a member's departure (stewards only; once). The leaver rules of the equation in
/// force decide what is forfeited, as a burn on the ledger — never a deletion.
#[utoipa::path(
    tag = "tokens",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = DepartureIn,
    responses((status = 201, description = "Recorded", body = DepartureOut), WriteErrors)
)]
#[post("/networks/{network}/departures")]
pub async fn create_departure(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<DepartureIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    bounded_text("reason", input.reason.trim(), 1, 500)?;
    let key = path.into_inner();
    let out = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let network = access.network.id;
                let agent = input.agent_id.to_string();
                if db::members::membership(conn, &network, &agent)?.is_none() {
                    return Err(ApiError::field(
                        "agent_id",
                        "is not a member of this network",
                    ));
                }
                let forfeited = tokens::depart(
                    conn,
                    &network,
                    &agent,
                    input.reason.trim(),
                    input.for_cause,
                    &caller.0.to_string(),
                )?;
                let shown = match db::ledger::token(conn, &network)? {
                    Some(t) => units(forfeited, &t),
                    None => "0".into(),
                };
                Ok(DepartureOut {
                    agent_id: input.agent_id,
                    forfeited: shown,
                })
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// Check the whole ledger: every transaction balances, cached balances equal their entries,
/// supply equals the sum of balances, nobody is below zero, every mint has an existing cause
/// and none is doubled.
#[utoipa::path(
    tag = "tokens",
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 200, description = "The check", body = LedgerCheckOut), ReadErrors)
)]
#[get("/networks/{network}/ledger/check")]
pub async fn check_ledger(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<LedgerCheckOut>, ApiError> {
    let key = path.into_inner();
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let problems = tokens::check(conn, &access.network.id)?;
            Ok(LedgerCheckOut {
                ok: problems.is_empty(),
                problems,
            })
        })
        .await
        .map(web::Json)
}

//! Snapshot voting strategies (`api-post` / `api-v2`): scores for the addresses asked, as
//! integer base-unit strings — token balances, or value shares scaled by 10^18.

use std::collections::HashMap;

use actix_web::{post, web};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::WriteErrors;
use super::extract::{ApiJson, ApiQuery};
use super::{Access, AppState, AtParams};
use crate::accounting;
use crate::auth::Caller;
use crate::db;
use crate::db::rows::now;
use crate::domain::ledger::agent_account;
use crate::domain::wallet::WalletAddress;
use crate::error::ApiError;

/// Most addresses in one request.
pub const MAX_ADDRESSES: usize = 5000;
/// Value shares are scored as value × 10^18 (set `decimals: 18` in the strategy options).
pub const VALUE_DECIMALS: u32 = 18;

/// What Snapshot's `api-post` strategy sends.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SnapshotIn {
    /// Addresses to score (lowercase or EIP-55).
    pub addresses: Vec<String>,
    /// Snapshot's network id (ignored: scores come from Holoptic's data).
    pub network: Option<serde_json::Value>,
    /// Snapshot's block number (ignored: pass `at` to score at a date).
    pub snapshot: Option<serde_json::Value>,
    /// The strategy's options (ignored).
    pub options: Option<serde_json::Value>,
}

/// One score.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Score {
    /// The address, EIP-55.
    pub address: String,
    /// Integer string in base units.
    pub score: String,
}

/// Scores, as the strategies expect.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotOut {
    /// One per address asked, in order.
    pub score: Vec<Score>,
}

/// value × 10^18 as an integer string, exactly (big integers: it can exceed a Decimal).
fn scale_up(v: Decimal) -> String {
    let v = v.max(Decimal::ZERO);
    let digits = VALUE_DECIMALS.saturating_sub(v.scale());
    let n = num_bigint::BigInt::from(v.mantissa()) * num_bigint::BigInt::from(10u8).pow(digits)
        / num_bigint::BigInt::from(10u8).pow(v.scale().saturating_sub(VALUE_DECIMALS));
    n.to_string()
}

/// Scores for a Snapshot space: `balances` (token balance in base units) or `shares`
/// (weighted value × 10^18). Members are matched by their wallet address; others score 0.
#[utoipa::path(
    tag = "exports",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("source" = String, Path, description = "balances or shares"),
        AtParams,
    ),
    request_body = SnapshotIn,
    responses((status = 200, description = "Scores", body = SnapshotOut), WriteErrors)
)]
#[post("/networks/{network}/snapshot/{source}")]
pub async fn snapshot_scores(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<AtParams>,
    body: ApiJson<SnapshotIn>,
) -> Result<web::Json<SnapshotOut>, ApiError> {
    let (key, source) = path.into_inner();
    if source != "balances" && source != "shares" {
        return Err(ApiError::field("source", "must be balances or shares"));
    }
    let addresses = body.0.addresses;
    if addresses.len() > MAX_ADDRESSES {
        return Err(ApiError::field(
            "addresses",
            format!("must have at most {MAX_ADDRESSES} entries"),
        ));
    }
    let parsed: Vec<WalletAddress> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| WalletAddress::parse(&format!("addresses[{i}]"), a))
        .collect::<Result<_, _>>()?;
    let at = query.0.at.map_or_else(now, |t| t.naive_utc());
    let scores = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let network = access.network.id;
            let mut by_wallet: HashMap<String, String> = HashMap::new();
            for (m, a) in db::members::list_members(conn, &network, None, i64::MAX)? {
                if let Some(w) = a.wallet_address {
                    by_wallet.insert(w, m.agent_id);
                }
            }
            let mut values = crate::domain::distribution::ByAgent::default();
            if source == "shares" {
                let force = accounting::in_force(conn, &network, at)?.ok_or_else(|| {
                    ApiError::Conflict("no value equation was in force at that date".into())
                })?;
                values = accounting::values_by_agent(conn, &network, &force.eq, at, now())?;
            }
            let mut out = Vec::with_capacity(parsed.len());
            for a in &parsed {
                let score = match by_wallet.get(a.as_str()) {
                    None => Decimal::ZERO,
                    Some(agent) if source == "balances" => {
                        let entries = db::ledger::account_entries(
                            conn,
                            &network,
                            &agent_account(agent),
                            Some(at),
                        )?;
                        entries.iter().map(|e| e.amount_minor.0).sum()
                    }
                    Some(agent) => {
                        let v = values.get(agent).copied().unwrap_or_default();
                        let scaled = scale_up(v);
                        out.push(Score {
                            address: a.as_str().to_owned(),
                            score: scaled,
                        });
                        continue;
                    }
                };
                out.push(Score {
                    address: a.as_str().to_owned(),
                    score: score.trunc().normalize().to_string(),
                });
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    Ok(web::Json(SnapshotOut { score: scores }))
}

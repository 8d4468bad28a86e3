//! Payout exports of a committed distribution for the tools DAOs use: plain CSV, Safe CSV
//! Airdrop, a Safe Transaction Builder batch, Disperse.app text, an OpenZeppelin
//! `StandardMerkleTree` dump with proofs and Uniswap merkle-distributor claims.
//! Each carries the distribution id and a checksum of the lines it came from; members without
//! a wallet address (and accounts) are listed as not payable, never dropped silently.

use std::collections::BTreeMap;

use actix_web::{get, web};
use num_bigint::BigUint;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::docs::ReadErrors;
use super::extract::ApiQuery;
use super::{path_uuid, Access, AppState};
use crate::accounting::to_human;
use crate::auth::Caller;
use crate::db;
use crate::domain::merkle::{standard_tree, uniswap_claims, Dump, UniswapClaims};
use crate::domain::safe_batch::{batch, BatchMeta, Payment};
use crate::domain::wallet::WalletAddress;
use crate::error::ApiError;

/// Most rows in one Safe CSV Airdrop file (the app's limit).
pub const SAFE_ROWS_PER_FILE: usize = 500;

/// Export options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// ERC-20 contract address for `safe-csv` rows (absent: `native` rows).
    pub token_address: Option<String>,
    /// The paying token's decimals (default: the currency's scale; must not be smaller).
    pub decimals: Option<u32>,
    /// `safe-batch`: the EIP-155 chain id (default 1).
    pub chain_id: Option<u64>,
    /// `safe-batch`: the Safe that will execute the batch.
    pub safe_address: Option<String>,
}

/// A file of an export.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportFile {
    /// Suggested file name.
    pub name: String,
    /// Its content.
    pub content: String,
}

/// Someone the export could not pay.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotPayable {
    /// The member, for member lines.
    pub agent_id: Option<String>,
    /// The account, for account lines.
    pub account: Option<String>,
    /// Amount owed, in the currency.
    pub amount: String,
    /// Why: `no wallet address` or `account`.
    pub reason: String,
}

/// An export.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportOut {
    /// The distribution exported.
    pub distribution_id: String,
    /// `csv`, `safe-csv`, `disperse` or `merkle`.
    pub format: String,
    /// SHA-256 of the distribution's lines (line_no|bucket|recipient|amount_minor per line).
    pub lines_checksum: String,
    /// Currency of the distribution.
    pub currency: String,
    /// Decimals of the amounts in the export.
    pub decimals: u32,
    /// Files (csv, safe-csv, disperse).
    pub files: Vec<ExportFile>,
    /// The tree dump (merkle).
    pub merkle: Option<Dump>,
    /// Proof per receiving address (merkle).
    pub proofs: Option<BTreeMap<String, Vec<String>>>,
    /// The Uniswap merkle-distributor claims file (uniswap).
    pub uniswap: Option<UniswapClaims>,
    /// The Safe Transaction Builder batch, with `meta.checksum` (safe-batch; also in `files`).
    #[schema(value_type = Option<Object>)]
    pub safe_batch: Option<serde_json::Value>,
    /// Members and accounts not included.
    pub not_payable: Vec<NotPayable>,
}

/// Export a committed distribution: `csv` (every line; amounts sum to the distribution),
/// `safe-csv` (Safe CSV Airdrop files of at most 500 rows), `safe-batch` (a Safe Transaction
/// Builder batch of ERC-20 `transfer` calls, or native transfers without `token_address`, with
/// the app's checksum), `disperse` (Disperse.app text) or
/// `merkle` (an OpenZeppelin StandardMerkleTree `standard-v1` dump of `[address, uint256]`
/// with a proof per recipient) or `uniswap` (a merkle-distributor claims file).
#[utoipa::path(
    tag = "distributions",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("id" = String, Path, description = "Distribution id"),
        ("format" = String, Path, description = "csv, safe-csv, safe-batch, disperse, merkle or uniswap"),
        ExportParams,
    ),
    responses((status = 200, description = "The export", body = ExportOut), ReadErrors)
)]
#[get("/networks/{network}/distributions/{id}/exports/{format}")]
pub async fn export_distribution(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    query: ApiQuery<ExportParams>,
) -> Result<web::Json<ExportOut>, ApiError> {
    let (key, id, format) = path.into_inner();
    let id = path_uuid("id", &id)?;
    const FORMATS: [&str; 6] = [
        "csv",
        "safe-csv",
        "safe-batch",
        "disperse",
        "merkle",
        "uniswap",
    ];
    if !FORMATS.contains(&format.as_str()) {
        return Err(ApiError::field(
            "format",
            format!("must be {}", FORMATS.join(", ")),
        ));
    }
    let q = query.0;
    let token_address = q
        .token_address
        .as_deref()
        .map(|a| WalletAddress::parse("token_address", a))
        .transpose()?;
    let safe_address = q
        .safe_address
        .as_deref()
        .map(|a| WalletAddress::parse("safe_address", a))
        .transpose()?;
    let chain_id = q.chain_id.unwrap_or(1);
    if chain_id == 0 {
        return Err(ApiError::field("chain_id", "must be a positive chain id"));
    }
    let (d, lines, wallets) = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let d = db::distributions::find(conn, &access.network.id, &id)?
                .ok_or_else(|| ApiError::NotFound("no such distribution".into()))?;
            let lines = db::distributions::lines(conn, &d.id)?;
            let mut wallets: BTreeMap<String, Option<String>> = BTreeMap::new();
            for (l, _) in &lines {
                if let Some(a) = &l.agent_id {
                    let w = db::members::find_agent(conn, a)?.and_then(|x| x.wallet_address);
                    wallets.insert(a.clone(), w);
                }
            }
            Ok::<_, ApiError>((d, lines, wallets))
        })
        .await?;
    let scale = u32::try_from(d.scale).unwrap_or(0);
    let decimals = q.decimals.unwrap_or(scale);
    if decimals < scale || decimals > 36 {
        return Err(ApiError::field(
            "decimals",
            format!("must be from the currency's scale ({scale}) to 36"),
        ));
    }
    let rescale = BigUint::from(10u8).pow(decimals - scale);
    let mut checksum = Sha256::new();
    for (l, _) in &lines {
        let who = l
            .agent_id
            .as_deref()
            .or(l.account.as_deref())
            .unwrap_or("-");
        checksum.update(format!(
            "{}|{}|{}|{}\n",
            l.line_no, l.bucket, who, l.amount_minor.0
        ));
    }
    // Payable: members with a wallet, summed across buckets.
    let mut payable: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut not_payable = Vec::new();
    for (l, _) in &lines {
        let amount = l.amount_minor.0;
        match (&l.agent_id, &l.account) {
            (Some(a), _) => match wallets.get(a).cloned().flatten() {
                Some(w) if amount > Decimal::ZERO => {
                    *payable.entry(w).or_insert(Decimal::ZERO) += amount
                }
                Some(_) => {}
                None => not_payable.push(NotPayable {
                    agent_id: Some(a.clone()),
                    account: None,
                    amount: to_human(amount, scale),
                    reason: "no wallet address".into(),
                }),
            },
            (None, Some(acc)) => not_payable.push(NotPayable {
                agent_id: None,
                account: Some(acc.clone()),
                amount: to_human(amount, scale),
                reason: "account".into(),
            }),
            (None, None) => {}
        }
    }
    let human = |minor: Decimal| {
        let units = BigUint::parse_bytes(minor.trunc().to_string().as_bytes(), 10)
            .unwrap_or_default()
            * &rescale;
        let s = format!(
            "{units:0>width$}",
            width = usize::try_from(decimals).unwrap_or(0) + 1
        );
        let (int, frac) = s.split_at(s.len() - usize::try_from(decimals).unwrap_or(0));
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            int.to_owned()
        } else {
            format!("{int}.{frac}")
        }
    };
    let mut files = Vec::new();
    let (mut merkle, mut proofs, mut uniswap, mut safe_batch) = (None, None, None, None);
    let base_units = |minor: &Decimal| {
        BigUint::parse_bytes(minor.trunc().to_string().as_bytes(), 10).unwrap_or_default()
            * &rescale
    };
    match format.as_str() {
        "csv" => {
            let mut out = String::from(
                "line_no,bucket,agent_id,account,address,amount,amount_minor,exact_share\n",
            );
            for (l, _) in &lines {
                let address = l
                    .agent_id
                    .as_ref()
                    .and_then(|a| wallets.get(a).cloned().flatten())
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{}\n",
                    l.line_no,
                    l.bucket,
                    l.agent_id.as_deref().unwrap_or(""),
                    l.account.as_deref().unwrap_or(""),
                    address,
                    to_human(l.amount_minor.0, scale),
                    l.amount_minor.0,
                    l.exact_share
                ));
            }
            files.push(ExportFile {
                name: format!("distribution-{}.csv", d.id),
                content: out,
            });
        }
        "safe-csv" => {
            let rows: Vec<String> = payable
                .iter()
                .map(|(addr, amount)| match &token_address {
                    Some(t) => format!("erc20,{},{addr},{},", t.as_str(), human(*amount)),
                    None => format!("native,,{addr},{},", human(*amount)),
                })
                .collect();
            for (i, chunk) in rows.chunks(SAFE_ROWS_PER_FILE).enumerate() {
                let mut content = String::from("token_type,token_address,receiver,amount,id\n");
                for r in chunk {
                    content.push_str(r);
                    content.push('\n');
                }
                files.push(ExportFile {
                    name: format!("safe-airdrop-{}-{}.csv", d.id, i + 1),
                    content,
                });
            }
        }
        "safe-batch" => {
            let payments: Vec<Payment> = payable
                .iter()
                .filter(|(_, a)| **a > Decimal::ZERO)
                .map(|(addr, amount)| Payment {
                    receiver: addr.clone(),
                    amount: base_units(amount).to_string(),
                })
                .collect();
            let name = format!("Holoptic distribution {}", d.id);
            let description = format!(
                "Pays distribution {} ({} {}); lines checksum {}",
                d.id,
                to_human(d.amount_minor.0, scale),
                d.currency,
                hex::encode(checksum.clone().finalize())
            );
            let file = batch(
                &BatchMeta {
                    chain_id,
                    created_at_ms: d.committed_at.and_utc().timestamp_millis(),
                    name: &name,
                    description: &description,
                    safe_address: safe_address.as_ref().map(WalletAddress::as_str),
                    token_address: token_address.as_ref().map(WalletAddress::as_str),
                },
                &payments,
            );
            files.push(ExportFile {
                name: format!("safe-batch-{}.json", d.id),
                content: serde_json::to_string_pretty(&file).unwrap_or_default(),
            });
            safe_batch = Some(file);
        }
        "disperse" => {
            let content: String = payable
                .iter()
                .map(|(addr, amount)| format!("{addr} {}\n", human(*amount)))
                .collect();
            files.push(ExportFile {
                name: format!("disperse-{}.txt", d.id),
                content,
            });
        }
        "uniswap" => {
            let values: Vec<(String, BigUint)> = payable
                .iter()
                .filter(|(_, a)| **a > Decimal::ZERO)
                .map(|(addr, amount)| (addr.clone(), base_units(amount)))
                .collect();
            uniswap = uniswap_claims(&values);
        }
        _ => {
            let values: Vec<(String, BigUint)> = payable
                .iter()
                .filter(|(_, a)| **a > Decimal::ZERO)
                .map(|(addr, amount)| (addr.clone(), base_units(amount)))
                .collect();
            if let Some(dump) = standard_tree(&values) {
                proofs = Some(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, (a, _))| (a.clone(), dump.proof(i)))
                        .collect(),
                );
                merkle = Some(dump);
            }
        }
    }
    Ok(web::Json(ExportOut {
        distribution_id: d.id,
        format,
        lines_checksum: hex::encode(checksum.finalize()),
        currency: d.currency,
        decimals,
        files,
        merkle,
        proofs,
        uniswap,
        safe_batch,
        not_payable,
    }))
}

//! Importing a SourceCred ledger: identities (after merges) become members, their SourceCred
//! identity ids and aliases are kept as the member's aliases, payout addresses become wallet
//! addresses, and every Grain receipt becomes a prior payout that the named bucket counts as
//! already paid (so a `balanced` policy tops up those SourceCred underpaid). A dry run first;
//! the import is all or nothing, and importing the same ledger again adds only what is new.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::DateTime;
use num_bigint::BigUint;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::docs::WriteErrors;
use super::extract::{read_file_body, ApiQuery};
use super::imports::RowError;
use super::{Access, AppState};
use crate::auth::Authenticated;
use crate::db::rows::{now, AgentRow, AliasRow, MembershipRow, PriorPayoutRow};
use crate::db::types::DbDecimal;
use crate::db::{self, write_tx, AnyConnection};
use crate::domain::network::Role;
use crate::domain::sourcecred::{replay, Account, GRAIN_DECIMALS};
use crate::error::ApiError;

/// Alias source of SourceCred identity ids.
pub const IDENTITY_SOURCE: &str = "sourcecred-identity";
/// Alias source of SourceCred aliases (node addresses, `/`-separated).
pub const ALIAS_SOURCE: &str = "sourcecred-alias";

/// How to import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SourceCredParams {
    /// Check everything and write nothing (default true: an import must be asked for).
    pub dry_run: Option<bool>,
    /// The bucket of the value equation that counts the Grain as already paid (e.g. the
    /// bucket with the `balanced` policy).
    pub bucket: String,
    /// The network currency the Grain was worth (e.g. `XDAI`, `USD`).
    pub currency: String,
    /// Units of `currency` per Grain (default 1), a decimal string.
    pub rate: Option<String>,
}

/// One SourceCred account as imported.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportedMember {
    /// The surviving SourceCred identity id.
    pub identity_id: String,
    /// Its SourceCred name.
    pub name: String,
    /// The member: existing (matched by identity id) or created (absent in a dry run).
    pub agent_id: Option<String>,
    /// Whether the import creates the member.
    pub new_member: bool,
    /// Aliases (identity ids and SourceCred aliases) added.
    pub new_aliases: usize,
    /// The payout address, if SourceCred had one.
    pub wallet_address: Option<String>,
    /// All Grain it received, in Grain.
    pub paid_grain: String,
    /// Receipts not imported before.
    pub new_receipts: usize,
    /// What those receipts add to its paid total, in `currency`.
    pub new_paid: String,
}

/// The result of a dry run or an import.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SourceCredImportOut {
    /// Whether anything was written.
    pub dry_run: bool,
    /// SHA-256 of the ledger file.
    pub ledger_sha256: String,
    /// Events read.
    pub events: usize,
    /// Every line that could not be used (an import with any writes nothing).
    pub errors: Vec<RowError>,
    /// Every surviving account.
    pub members: Vec<ImportedMember>,
    /// Members created.
    pub members_created: usize,
    /// Prior payouts added.
    pub receipts_imported: usize,
    /// Their total, in `currency`.
    pub paid_imported: String,
}

/// A SourceCred node address (`N\0part\0part\0`) as `part/part`.
fn node_address(raw: &str) -> String {
    raw.trim_start_matches('N')
        .split('\0')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// Grain (10^-18) × rate → minor units of a currency with `scale`, rounded down.
fn to_minor(atto: &BigUint, rate: Decimal, scale: u32) -> Result<Decimal, ApiError> {
    let mantissa =
        BigUint::parse_bytes(rate.mantissa().to_string().as_bytes(), 10).unwrap_or_default();
    let denominator = BigUint::from(10u8).pow(rate.scale() + GRAIN_DECIMALS - scale);
    let minor = atto * mantissa / denominator;
    Decimal::from_str_exact(&minor.to_string())
        .ok()
        .filter(|d| *d < Decimal::from(10u64.pow(18)) * Decimal::from(10u64.pow(6)))
        .ok_or_else(|| ApiError::field("rate", "gives an amount too large to account"))
}

fn human(minor: Decimal, scale: u32) -> String {
    crate::accounting::to_human(minor, scale)
}

fn grain(atto: &BigUint) -> String {
    let s = format!("{atto:0>19}");
    let (int, frac) = s.split_at(s.len() - 18);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

/// What to write for one account: it, its existing agent, aliases to add (source and alias
/// joined by U+0001, description), receipts to add (reference, minor units, paid at ms).
type Write = (
    Account,
    Option<String>,
    Vec<(String, String)>,
    Vec<(String, Decimal, i64)>,
);

struct Plan {
    out: SourceCredImportOut,
    writes: Vec<Write>,
}

#[allow(clippy::too_many_arguments)]
fn plan(
    conn: &mut AnyConnection,
    network_id: &str,
    accounts: Vec<Account>,
    rate: Decimal,
    scale: u32,
    events: usize,
    errors: Vec<RowError>,
    sha: String,
) -> Result<Plan, ApiError> {
    let mut members = Vec::new();
    let mut writes = Vec::new();
    let (mut created, mut receipts, mut total) = (0, 0, Decimal::ZERO);
    for account in accounts {
        let mut agent = None;
        for id in &account.identity_ids {
            if let Some(a) = db::history::agent_for_alias(conn, network_id, IDENTITY_SOURCE, id)? {
                agent = Some(a);
                break;
            }
        }
        let mut new_aliases = Vec::new();
        let wanted = account
            .identity_ids
            .iter()
            .map(|id| {
                (
                    IDENTITY_SOURCE,
                    id.clone(),
                    format!("SourceCred identity {id}"),
                )
            })
            .chain(
                account
                    .aliases
                    .iter()
                    .map(|(a, d)| (ALIAS_SOURCE, node_address(a), d.clone())),
            );
        for (source, alias, description) in wanted {
            let taken = db::history::agent_for_alias(conn, network_id, source, &alias)?;
            if taken.is_none()
                && !new_aliases
                    .iter()
                    .any(|(a, _): &(String, String)| *a == format!("{source}\u{1}{alias}"))
            {
                new_aliases.push((format!("{source}\u{1}{alias}"), description));
            }
        }
        let mut new_receipts = Vec::new();
        let mut added = Decimal::ZERO;
        for r in &account.receipts {
            let reference = format!("sourcecred:{}", r.reference);
            let minor = to_minor(&r.amount, rate, scale)?;
            if minor.is_zero() || db::history::has_prior_payout(conn, network_id, &reference)? {
                continue;
            }
            added = added
                .checked_add(minor)
                .ok_or_else(|| ApiError::field("rate", "gives amounts too large to account"))?;
            new_receipts.push((reference, minor, r.cred_timestamp_ms));
        }
        created += usize::from(agent.is_none());
        receipts += new_receipts.len();
        total = total
            .checked_add(added)
            .ok_or_else(|| ApiError::field("rate", "gives amounts too large to account"))?;
        members.push(ImportedMember {
            identity_id: account.id.clone(),
            name: account.name.clone(),
            agent_id: agent.clone(),
            new_member: agent.is_none(),
            new_aliases: new_aliases.len(),
            wallet_address: account.payout_address.clone(),
            paid_grain: grain(&account.paid()),
            new_receipts: new_receipts.len(),
            new_paid: human(added, scale),
        });
        writes.push((account, agent, new_aliases, new_receipts));
    }
    Ok(Plan {
        out: SourceCredImportOut {
            dry_run: true,
            ledger_sha256: sha,
            events,
            errors,
            members,
            members_created: created,
            receipts_imported: receipts,
            paid_imported: human(total, scale),
        },
        writes,
    })
}

/// Import a SourceCred ledger (`data/ledger.json`, one event per line; stewards only).
/// `dry_run=true` (the default) replays it and reports every bad line and what would be
/// created; `dry_run=false` writes it all in one transaction, or nothing if any line is bad.
/// Identities become members (matched again by their SourceCred ids on a later import),
/// aliases are kept, payout addresses become wallet addresses, and every Grain receipt
/// becomes a prior payout in `currency` (Grain × `rate`, rounded down to the currency's
/// scale) that bucket `bucket` counts as already paid.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug"), SourceCredParams),
    request_body(content = String, content_type = "application/x-ndjson", description = "The SourceCred ledger.json file"),
    responses(
        (status = 200, description = "Dry run (or an import refused for bad lines: nothing written)", body = SourceCredImportOut),
        (status = 201, description = "Imported", body = SourceCredImportOut),
        WriteErrors
    )
)]
#[post("/networks/{network}/imports/sourcecred")]
pub async fn import_sourcecred(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    path: web::Path<String>,
    query: ApiQuery<SourceCredParams>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    if q.bucket.trim().is_empty() || q.bucket.chars().count() > 64 {
        return Err(ApiError::field("bucket", "must be 1 to 64 characters"));
    }
    let rate = match q.rate.as_deref() {
        None => Decimal::ONE,
        Some(r) => Decimal::from_str_exact(r)
            .ok()
            .filter(|d| *d > Decimal::ZERO && d.scale() <= 18)
            .ok_or_else(|| {
                ApiError::field(
                    "rate",
                    "must be a positive decimal with at most 18 fraction digits",
                )
            })?,
    };
    let body = read_file_body(
        &req,
        payload,
        &["application/x-ndjson", "application/json", "text/plain"],
    )
    .await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::field("body", "is not UTF-8 text"))?
        .to_owned();
    let sha = hex::encode(Sha256::digest(text.as_bytes()));
    let replayed = replay(&text);
    if replayed.events == 0 {
        return Err(ApiError::field("body", "has no ledger events"));
    }
    let errors: Vec<RowError> = replayed
        .errors
        .iter()
        .map(|e| RowError {
            line: e.line,
            field: "line".into(),
            detail: e.detail.clone(),
        })
        .collect();
    let dry_run = q.dry_run.unwrap_or(true);
    let key = path.into_inner();
    let (out, written) = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, Some(caller.0))?;
            access.require_steward()?;
            let network_id = access.network.id.clone();
            let currency = db::networks::currencies(conn, &network_id)?
                .into_iter()
                .find(|c| c.code == q.currency)
                .ok_or_else(|| ApiError::field("currency", format!("'{}' is not a currency of this network", q.currency)))?;
            let scale = u32::try_from(currency.scale).unwrap_or(0).min(GRAIN_DECIMALS);
            let Plan { mut out, writes } = plan(
                conn,
                &network_id,
                replayed.accounts,
                rate,
                scale,
                replayed.events,
                errors,
                sha,
            )?;
            if dry_run || !out.errors.is_empty() {
                return Ok::<_, ApiError>((out, false));
            }
            let steward = caller.0.to_string();
            let ids = write_tx(conn, |conn| {
                let at = now();
                let mut ids = Vec::new();
                let mut payouts = Vec::new();
                for (account, agent, aliases, receipts) in writes {
                    let agent_id = match agent {
                        Some(a) => a,
                        None => {
                            let id = uuid::Uuid::now_v7().to_string();
                            let name: String = account.name.chars().take(100).collect();
                            db::members::insert_agent_without_key(
                                conn,
                                &AgentRow {
                                    id: id.clone(),
                                    display_name: name,
                                    wallet_address: account.payout_address.clone(),
                                    created_at: at,
                                },
                            )?;
                            let role = if account.subtype == "BOT" { Role::Bot } else { Role::Member };
                            db::members::insert_membership(
                                conn,
                                &MembershipRow {
                                    network_id: network_id.clone(),
                                    agent_id: id.clone(),
                                    role: role.as_str().into(),
                                    joined_at: at,
                                },
                            )?;
                            let body = serde_json::json!({ "agent_id": id, "role": role.as_str(), "source": "sourcecred", "identity_id": account.id, "name": account.name });
                            crate::journal::record(conn, &network_id, Some(&steward), "member.imported", body)?;
                            id
                        }
                    };
                    for (tagged, description) in aliases {
                        let (source, alias) = tagged.split_once('\u{1}').unwrap_or((ALIAS_SOURCE, &tagged));
                        db::history::insert_alias(
                            conn,
                            &AliasRow {
                                network_id: network_id.clone(),
                                source: source.to_owned(),
                                alias: alias.to_owned(),
                                agent_id: agent_id.clone(),
                                description: description.chars().take(500).collect(),
                                created_at: at,
                            },
                        )?;
                    }
                    for (reference, minor, paid_ms) in receipts {
                        let row = PriorPayoutRow {
                            id: uuid::Uuid::now_v7().to_string(),
                            network_id: network_id.clone(),
                            agent_id: agent_id.clone(),
                            bucket: q.bucket.clone(),
                            currency: q.currency.clone(),
                            amount_minor: DbDecimal(minor),
                            source: "sourcecred".into(),
                            source_ref: reference,
                            paid_at: DateTime::from_timestamp_millis(paid_ms)
                                .map_or(at, |t| t.naive_utc()),
                            recorded_at: at,
                            recorded_by: steward.clone(),
                        };
                        db::history::insert_prior_payout(conn, &row)?;
                        payouts.push(serde_json::json!({
                            "agent_id": row.agent_id, "bucket": row.bucket, "currency": row.currency,
                            "amount_minor": minor.to_string(), "source_ref": row.source_ref,
                        }));
                    }
                    ids.push(agent_id);
                }
                crate::journal::record_many(conn, &network_id, Some(&steward), "payout.imported", payouts)?;
                Ok::<_, ApiError>(ids)
            })?;
            out.dry_run = false;
            for (m, id) in out.members.iter_mut().zip(ids) {
                m.agent_id = Some(id);
            }
            Ok((out, true))
        })
        .await?;
    Ok(if written {
        HttpResponse::Created().json(out)
    } else {
        HttpResponse::Ok().json(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_read_as_paths() {
        assert_eq!(
            node_address("N\u{0}sourcecred\u{0}discord\u{0}MEMBER\u{0}123\u{0}"),
            "sourcecred/discord/MEMBER/123"
        );
    }

    #[test]
    fn grain_converts_down_to_the_currency_scale() {
        let atto = BigUint::parse_bytes(b"1234567890000000000", 10).unwrap_or_default();
        assert_eq!(
            to_minor(&atto, Decimal::ONE, 2).ok(),
            Some(Decimal::from(123))
        );
        assert_eq!(
            to_minor(&atto, Decimal::new(15, 1), 2).ok(),
            Some(Decimal::from(185))
        );
        assert_eq!(grain(&atto), "1.23456789");
        assert_eq!(grain(&BigUint::from(5u8)), "0.000000000000000005");
    }
}

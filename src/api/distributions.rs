//! Income and distributions: record income, preview and commit its distribution, read,
//! verify by recomputation, and mark lines paid.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{
    decode_cursor, page_limit, paginate, path_uuid, stored_id, utc, Access, AppState, Page,
    PageParams,
};
use crate::accounting::{self, compile_body, to_human, to_minor, Job};
use crate::auth::{Authenticated, Caller};
use crate::db::rows::{now, ClaimRow, DistributionRow, IncomeRow, LineRow, PaymentRow};
use crate::db::types::DbDecimal;
use crate::db::{self, write_tx, AnyConnection};
use crate::domain::contribution::{check_url, parse_decimal};
use crate::domain::distribution::{Line, Recipient};
use crate::domain::ids::AgentId;
use crate::domain::{bounded_text, FieldError};
use crate::error::ApiError;

/// Income to redistribute.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomeIn {
    /// Positive decimal string in the currency, at most its fraction digits.
    #[schema(example = "1000.00")]
    pub amount: String,
    /// A network currency code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Where it came from (1-200 characters).
    #[schema(example = "Sale of 3 frames to FabCity")]
    pub source: String,
    /// When it arrived (not in the future).
    pub received_at: DateTime<Utc>,
}

/// A recorded income event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomeOut {
    /// Id.
    pub id: String,
    /// Amount.
    pub amount: String,
    /// Currency.
    pub currency: String,
    /// Source.
    pub source: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Who recorded it.
    pub recorded_by: AgentId,
    /// The committed distribution, if any.
    pub distribution_id: Option<String>,
}

/// Options for a preview or commit.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DistributeIn {
    /// Contributions up to this time count (default: now). Not in the future.
    pub cutoff: Option<DateTime<Utc>>,
}

/// A line of a distribution.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LineOut {
    /// Position, from 1.
    pub line_no: i32,
    /// Bucket (`unallocated` for what the percentages leave).
    pub bucket: String,
    /// The member paid, if a member.
    pub agent_id: Option<AgentId>,
    /// The account paid, if an account.
    pub account: Option<String>,
    /// The weight the bucket split by (0 on whole-bucket and leftover lines).
    pub weight: String,
    /// Exact share in minor units (18 digits after the point).
    pub exact_share: String,
    /// Amount in minor units (floor or ceiling of the exact share).
    pub amount_minor: String,
    /// Amount in the currency.
    pub amount: String,
    /// Is this what the bucket could not place (per the leftover policy)?
    pub leftover: bool,
    /// Payout reference (e.g. a transaction hash) once marked paid.
    pub paid_reference: Option<String>,
    /// When it was marked paid.
    pub paid_at: Option<DateTime<Utc>>,
}

/// A distribution: committed (with an id) or a preview.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DistributionOut {
    /// Id (absent on a preview).
    pub id: Option<String>,
    /// The income event.
    pub income_event_id: String,
    /// Equation version used.
    pub equation_version: i32,
    /// Its content hash.
    pub equation_hash: String,
    /// Cut-off.
    pub cutoff: DateTime<Utc>,
    /// SHA-256 over every input (weighted contributions, history, amount, cut-off).
    pub inputs_digest: String,
    /// Currency.
    pub currency: String,
    /// Its fraction digits.
    pub scale: i32,
    /// Amount in minor units; the lines sum to exactly this.
    pub amount_minor: String,
    /// Amount in the currency.
    pub amount: String,
    /// When committed (absent on a preview).
    pub committed_at: Option<DateTime<Utc>>,
    /// The lines.
    pub lines: Vec<LineOut>,
}

/// A verification by recomputation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyOut {
    /// The distribution.
    pub distribution_id: String,
    /// True when every line and the inputs digest match.
    pub matches: bool,
    /// Does the recomputed inputs digest equal the stored one?
    pub inputs_digest_matches: bool,
    /// Line numbers (from 1) that differ, and what differs.
    pub mismatches: Vec<String>,
}

/// A payout reference.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentIn {
    /// E.g. a transaction hash or bank reference (1-200 characters).
    #[schema(example = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060")]
    pub reference: String,
}

fn income_out(r: IncomeRow, scale: u32, distribution_id: Option<String>) -> IncomeOut {
    let minor = to_minor(r.amount.0, scale).unwrap_or_default();
    IncomeOut {
        id: r.id,
        amount: to_human(minor, scale),
        currency: r.currency,
        source: r.source,
        received_at: utc(r.received_at),
        recorded_by: stored_id(&r.recorded_by),
        distribution_id,
    }
}

fn scale_of(conn: &mut AnyConnection, network_id: &str, code: &str) -> Result<u32, ApiError> {
    db::networks::currencies(conn, network_id)?
        .into_iter()
        .find(|c| c.code == code)
        .and_then(|c| u32::try_from(c.scale).ok())
        .ok_or_else(|| ApiError::field("currency", "is not a currency of this network"))
}

fn line_out(no: i32, l: &Line, scale: u32) -> LineOut {
    let (agent_id, account) = match &l.recipient {
        Recipient::Agent(a) => (Some(stored_id(a)), None),
        Recipient::Account(n) => (None, Some(n.clone())),
    };
    LineOut {
        line_no: no,
        bucket: l.bucket.clone(),
        agent_id,
        account,
        weight: l.weight.normalize().to_string(),
        exact_share: l.exact_share.clone(),
        amount_minor: l.amount.to_string(),
        amount: to_human(l.amount, scale),
        leftover: l.leftover,
        paid_reference: None,
        paid_at: None,
    }
}

fn stored_line_out(l: LineRow, p: Option<PaymentRow>, scale: u32) -> LineOut {
    LineOut {
        line_no: l.line_no,
        bucket: l.bucket,
        agent_id: l.agent_id.as_deref().map(stored_id),
        account: l.account,
        weight: l.weight.0.normalize().to_string(),
        exact_share: l.exact_share,
        amount_minor: l.amount_minor.0.to_string(),
        amount: to_human(l.amount_minor.0, scale),
        leftover: l.leftover,
        paid_reference: p.as_ref().map(|p| p.reference.clone()),
        paid_at: p.map(|p| utc(p.paid_at)),
    }
}

fn stored_out(conn: &mut AnyConnection, d: DistributionRow) -> Result<DistributionOut, ApiError> {
    let scale = u32::try_from(d.scale).unwrap_or(0);
    let lines = db::distributions::lines(conn, &d.id)?
        .into_iter()
        .map(|(l, p)| stored_line_out(l, p, scale))
        .collect();
    Ok(DistributionOut {
        id: Some(d.id),
        income_event_id: d.income_event_id,
        equation_version: d.equation_version,
        equation_hash: d.equation_hash,
        cutoff: utc(d.cutoff),
        inputs_digest: d.inputs_digest,
        currency: d.currency,
        scale: d.scale,
        amount_minor: d.amount_minor.0.to_string(),
        amount: to_human(d.amount_minor.0, scale),
        committed_at: Some(utc(d.committed_at)),
        lines,
    })
}

/// Computes the distribution of an income event (for preview and commit).
fn prepare(
    conn: &mut AnyConnection,
    spare: Option<&mut AnyConnection>,
    network_id: &str,
    income_id: &str,
    cutoff: Option<DateTime<Utc>>,
) -> Result<(DistributionOut, accounting::Computed, chrono::NaiveDateTime), ApiError> {
    let income = db::distributions::find_income(conn, network_id, income_id)?
        .ok_or_else(|| ApiError::NotFound("no such income event".into()))?;
    let at = now();
    let cutoff = cutoff.map_or(at, |c| {
        crate::domain::contribution::truncate_to_micros(c).naive_utc()
    });
    if cutoff > at {
        return Err(ApiError::field("cutoff", "must not be in the future"));
    }
    // The equation in force at the cut-off: a distribution for past work uses past rules.
    let force = accounting::in_force(conn, network_id, cutoff)?.ok_or_else(|| {
        ApiError::Conflict(
            "no value equation was in force at the cut-off: adopt one through a proposal".into(),
        )
    })?;
    let scale = scale_of(conn, network_id, &income.currency)?;
    let minor = to_minor(income.amount.0, scale)
        .ok_or_else(|| ApiError::Internal("amount out of range".into()))?;
    let job = Job {
        network_id,
        eq: &force.eq,
        amount_minor: minor,
        scale,
        cutoff,
        as_of: at,
        before: None,
        salt: income_id,
    };
    let computed = accounting::compute(conn, spare, &job)?;
    let lines = computed
        .outcome
        .lines
        .iter()
        .zip(1..)
        .map(|(l, no)| line_out(no, l, scale))
        .collect();
    let out = DistributionOut {
        id: None,
        income_event_id: income.id,
        equation_version: force.row.version,
        equation_hash: force.row.content_hash,
        cutoff: utc(cutoff),
        inputs_digest: computed.digest.clone(),
        currency: income.currency,
        scale: i32::try_from(scale).unwrap_or(0),
        amount_minor: minor.to_string(),
        amount: to_human(minor, scale),
        committed_at: None,
        lines,
    };
    Ok((out, computed, at))
}

/// Record income to redistribute (stewards only).
#[utoipa::path(
    tag = "distributions",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = IncomeIn,
    responses((status = 201, description = "Recorded", body = IncomeOut), WriteErrors)
)]
#[post("/networks/{network}/income")]
pub async fn create_income(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<IncomeIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let amount = parse_decimal("amount", &input.amount)?;
    if amount <= Decimal::ZERO || amount >= Decimal::from(10_000_000_000_i64) {
        return Err(ApiError::field(
            "amount",
            "must be greater than 0 and less than 10000000000",
        ));
    }
    bounded_text("source", input.source.trim(), 1, 200)?;
    if input.received_at > Utc::now() + chrono::Duration::seconds(60) {
        return Err(ApiError::field("received_at", "must not be in the future"));
    }
    let key = path.into_inner();
    let out = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let scale = scale_of(conn, &access.network.id, &input.currency)?;
                if amount.scale() > scale {
                    return Err(ApiError::field(
                        "amount",
                        format!(
                            "must have at most {scale} fraction digits for {}",
                            input.currency
                        ),
                    ));
                }
                let row = IncomeRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    network_id: access.network.id,
                    amount: DbDecimal(amount),
                    currency: input.currency,
                    source: input.source.trim().to_owned(),
                    received_at: crate::domain::contribution::truncate_to_micros(input.received_at)
                        .naive_utc(),
                    recorded_by: caller.0.to_string(),
                    recorded_at: now(),
                };
                db::distributions::insert_income(conn, &row)?;
                let body = serde_json::json!({
                    "id": row.id, "amount": row.amount.0.normalize().to_string(), "currency": row.currency,
                    "source": row.source, "received_at": utc(row.received_at),
                });
                crate::journal::record(conn, &row.network_id, Some(&row.recorded_by), "income.recorded", body)?;
                Ok(income_out(row, scale, None))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// List income events, newest first.
#[utoipa::path(
    tag = "distributions",
    params(("network" = String, Path, description = "Network id or slug"), PageParams),
    responses((status = 200, description = "A page of income events", body = Page<IncomeOut>), ReadErrors)
)]
#[get("/networks/{network}/income")]
pub async fn list_income(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<IncomeOut>>, ApiError> {
    let limit = page_limit(query.0.limit)?;
    let before = decode_cursor(query.0.cursor.as_deref())?;
    let key = path.into_inner();
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let network = access.network.id;
            let mut out = Vec::new();
            for r in db::distributions::list_income(conn, &network, before.as_deref(), limit + 1)? {
                let scale = scale_of(conn, &network, &r.currency)?;
                let d = db::distributions::for_income(conn, &r.id)?.map(|d| d.id);
                out.push(income_out(r, scale, d));
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    Ok(web::Json(paginate(rows, limit, |r| r.id.as_str(), |r| r)))
}

/// Preview the distribution of an income event under the equation in force at the cut-off:
/// nothing is written. A commit right after gives the same lines.
#[utoipa::path(
    tag = "distributions",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug"), ("id" = String, Path, description = "Income event id")),
    request_body = DistributeIn,
    responses((status = 200, description = "The preview", body = DistributionOut), WriteErrors)
)]
#[post("/networks/{network}/income/{id}/preview")]
pub async fn preview_distribution(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<DistributeIn>,
) -> Result<web::Json<DistributionOut>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    let cutoff = body.0.cutoff;
    state
        .db
        .run_with_spare(move |conn, spare| {
            let access = Access::load(conn, &key, Some(caller.0))?;
            access.member_role()?;
            accounting::settle(conn, &access.network.id, now())?;
            prepare(conn, spare, &access.network.id, &id, cutoff).map(|(out, _, _)| out)
        })
        .await
        .map(web::Json)
}

/// Commit the distribution of an income event (stewards only). Stored immutably with the
/// equation version and hash, the cut-off and the inputs digest; an income event is
/// distributed once.
#[utoipa::path(
    tag = "distributions",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug"), ("id" = String, Path, description = "Income event id")),
    request_body = DistributeIn,
    responses((status = 201, description = "Committed", body = DistributionOut), WriteErrors)
)]
#[post("/networks/{network}/income/{id}/distribution")]
pub async fn commit_distribution(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<DistributeIn>,
) -> Result<HttpResponse, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    let cutoff = body.0.cutoff;
    let out = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let network = access.network.id;
                // One commit at a time per network: history must be read in commit order.
                db::equations::lock_network(conn, &network)?;
                accounting::settle(conn, &network, now())?;
                if db::distributions::for_income(conn, &id)?.is_some() {
                    return Err(ApiError::Conflict(
                        "this income event is already distributed".into(),
                    ));
                }
                // The commit time is the snapshot time, so verification sees what the commit saw.
                let (out, computed, committed_at) = prepare(conn, None, &network, &id, cutoff)?;
                let dist_id = uuid::Uuid::now_v7().to_string();
                let row = DistributionRow {
                    id: dist_id.clone(),
                    network_id: network.clone(),
                    income_event_id: id.clone(),
                    equation_version: out.equation_version,
                    equation_hash: out.equation_hash.clone(),
                    cutoff: out.cutoff.naive_utc(),
                    inputs_digest: out.inputs_digest.clone(),
                    amount_minor: DbDecimal(
                        Decimal::from_str_exact(&out.amount_minor).unwrap_or_default(),
                    ),
                    currency: out.currency.clone(),
                    scale: out.scale,
                    committed_by: caller.0.to_string(),
                    committed_at,
                };
                let lines: Vec<LineRow> = computed
                    .outcome
                    .lines
                    .iter()
                    .zip(1..)
                    .map(|(l, no)| {
                        let (agent_id, account) = match &l.recipient {
                            Recipient::Agent(a) => (Some(a.clone()), None),
                            Recipient::Account(n) => (None, Some(n.clone())),
                        };
                        LineRow {
                            id: uuid::Uuid::now_v7().to_string(),
                            distribution_id: dist_id.clone(),
                            line_no: no,
                            bucket: l.bucket.clone(),
                            agent_id,
                            account,
                            weight: DbDecimal(l.weight),
                            exact_share: l.exact_share.clone(),
                            amount_minor: DbDecimal(l.amount),
                            leftover: l.leftover,
                        }
                    })
                    .collect();
                let claims: Vec<ClaimRow> = computed
                    .outcome
                    .claims
                    .iter()
                    .map(|c| ClaimRow {
                        distribution_id: dist_id.clone(),
                        bucket: c.bucket.clone(),
                        contribution_id: c.contribution_id.clone(),
                        amount_minor: DbDecimal(c.amount),
                    })
                    .collect();
                db::distributions::insert(conn, &row, &lines, &claims)?;
                db::distributions::keep_paid(conn, &network, &lines)?;
                let summary: Vec<serde_json::Value> = lines
                    .iter()
                    .map(|l| serde_json::json!([l.line_no, l.bucket, l.agent_id.as_deref().or(l.account.as_deref()), l.amount_minor.0.to_string()]))
                    .collect();
                let body = serde_json::json!({
                    "id": row.id, "income_event_id": row.income_event_id, "equation_version": row.equation_version,
                    "equation_hash": row.equation_hash, "cutoff": utc(row.cutoff), "inputs_digest": row.inputs_digest,
                    "amount_minor": row.amount_minor.0.to_string(), "currency": row.currency, "lines": summary,
                });
                crate::journal::record(conn, &network, Some(&row.committed_by), "distribution.committed", body)?;
                let paid: Vec<(String, Option<String>, Decimal)> = lines
                    .iter()
                    .map(|l| (l.id.clone(), l.agent_id.clone(), l.amount_minor.0))
                    .collect();
                let scale = u32::try_from(row.scale).unwrap_or(0);
                crate::tokens::on_distribution(
                    conn,
                    &network,
                    &paid,
                    scale,
                    &caller.0.to_string(),
                )?;
                stored_out(conn, row)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// List committed distributions, newest first (lines included).
#[utoipa::path(
    tag = "distributions",
    params(("network" = String, Path, description = "Network id or slug"), PageParams),
    responses((status = 200, description = "A page of distributions", body = Page<DistributionOut>), ReadErrors)
)]
#[get("/networks/{network}/distributions")]
pub async fn list_distributions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<DistributionOut>>, ApiError> {
    let limit = page_limit(query.0.limit)?;
    let before = decode_cursor(query.0.cursor.as_deref())?;
    let key = path.into_inner();
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let rows =
                db::distributions::list(conn, &access.network.id, before.as_deref(), limit + 1)?;
            rows.into_iter()
                .map(|r| stored_out(conn, r))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(web::Json(paginate(
        rows,
        limit,
        |d| d.id.as_deref().unwrap_or_default(),
        |d| d,
    )))
}

/// Get a committed distribution with every line.
#[utoipa::path(
    tag = "distributions",
    params(("network" = String, Path, description = "Network id or slug"), ("id" = String, Path, description = "Distribution id")),
    responses((status = 200, description = "The distribution", body = DistributionOut), ReadErrors)
)]
#[get("/networks/{network}/distributions/{id}")]
pub async fn get_distribution(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<DistributionOut>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let d = db::distributions::find(conn, &access.network.id, &id)?
                .ok_or_else(|| ApiError::NotFound("no such distribution".into()))?;
            stored_out(conn, d)
        })
        .await
        .map(web::Json)
}

/// Recompute a committed distribution from the stored contributions (as they stood at the
/// commit), the stored equation version and the distributions before it, and compare.
#[utoipa::path(
    tag = "distributions",
    params(("network" = String, Path, description = "Network id or slug"), ("id" = String, Path, description = "Distribution id")),
    responses((status = 200, description = "The verification", body = VerifyOut), ReadErrors)
)]
#[get("/networks/{network}/distributions/{id}/verify")]
pub async fn verify_distribution(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<VerifyOut>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let network = access.network.id;
            let d = db::distributions::find(conn, &network, &id)?
                .ok_or_else(|| ApiError::NotFound("no such distribution".into()))?;
            verify(conn, &network, &d)
        })
        .await
        .map(web::Json)
}

/// Recomputes `d` and lists every difference.
pub fn verify(
    conn: &mut AnyConnection,
    network: &str,
    d: &DistributionRow,
) -> Result<VerifyOut, ApiError> {
    let version = db::equations::version(conn, network, d.equation_version)?.ok_or_else(|| {
        ApiError::Internal("the distribution's equation version is missing".into())
    })?;
    let eq = compile_body(&version.body)?;
    let scale = u32::try_from(d.scale).unwrap_or(0);
    let job = Job {
        network_id: network,
        eq: &eq,
        amount_minor: d.amount_minor.0,
        scale,
        cutoff: d.cutoff,
        as_of: d.committed_at,
        before: Some((d.committed_at, &d.id)),
        salt: &d.income_event_id,
    };
    let mut mismatches = Vec::new();
    if eq.hash != d.equation_hash || version.content_hash != d.equation_hash {
        mismatches.push("equation hash differs from the stored version".into());
    }
    let computed = accounting::compute(conn, None, &job)?;
    let stored = db::distributions::lines(conn, &d.id)?;
    let fresh: Vec<LineOut> = computed
        .outcome
        .lines
        .iter()
        .zip(1..)
        .map(|(l, no)| line_out(no, l, scale))
        .collect();
    for i in 0..stored.len().max(fresh.len()) {
        let no = i + 1;
        match (stored.get(i), fresh.get(i)) {
            (Some((s, _)), Some(f)) => {
                let s = stored_line_out(s.clone(), None, scale);
                let same = s.bucket == f.bucket
                    && s.agent_id == f.agent_id
                    && s.account == f.account
                    && s.weight == f.weight
                    && s.exact_share == f.exact_share
                    && s.amount_minor == f.amount_minor
                    && s.leftover == f.leftover;
                if !same {
                    mismatches.push(format!(
                        "line {no}: stored {} {} to {:?}{:?}, recomputed {} {} to {:?}{:?}",
                        s.bucket,
                        s.amount_minor,
                        s.agent_id,
                        s.account,
                        f.bucket,
                        f.amount_minor,
                        f.agent_id,
                        f.account
                    ));
                }
            }
            (Some(_), None) => mismatches.push(format!("line {no}: stored but not recomputed")),
            (None, Some(_)) => mismatches.push(format!("line {no}: recomputed but not stored")),
            (None, None) => {}
        }
    }
    let digest_ok = computed.digest == d.inputs_digest;
    Ok(VerifyOut {
        distribution_id: d.id.clone(),
        matches: digest_ok && mismatches.is_empty(),
        inputs_digest_matches: digest_ok,
        mismatches,
    })
}

/// Mark a line paid with a payout reference (stewards only; once per line).
#[utoipa::path(
    tag = "distributions",
    security(("bearer" = [])),
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("id" = String, Path, description = "Distribution id"),
        ("line_no" = i32, Path, description = "Line number"),
    ),
    request_body = PaymentIn,
    responses((status = 201, description = "The line, marked paid", body = LineOut), WriteErrors)
)]
#[post("/networks/{network}/distributions/{id}/lines/{line_no}/payment")]
pub async fn mark_paid(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String, String)>,
    body: ApiJson<PaymentIn>,
) -> Result<HttpResponse, ApiError> {
    let (key, id, line_no) = path.into_inner();
    let id = path_uuid("id", &id)?;
    let line_no: i32 = line_no
        .parse()
        .map_err(|_| ApiError::field("line_no", "must be a whole number"))?;
    let reference = body.0.reference.trim().to_owned();
    bounded_text("reference", &reference, 1, 200)?;
    if reference.contains("://") {
        check_url("reference", &reference).map_err(|e: FieldError| ApiError::Validation(e))?;
    }
    let out = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let d = db::distributions::find(conn, &access.network.id, &id)?
                    .ok_or_else(|| ApiError::NotFound("no such distribution".into()))?;
                let (line, paid) = db::distributions::lines(conn, &d.id)?
                    .into_iter()
                    .find(|(l, _)| l.line_no == line_no)
                    .ok_or_else(|| ApiError::NotFound(format!("no line {line_no}")))?;
                if paid.is_some() {
                    return Err(ApiError::Conflict(
                        "this line is already marked paid".into(),
                    ));
                }
                let payment = PaymentRow {
                    line_id: line.id.clone(),
                    reference,
                    paid_at: now(),
                    marked_by: caller.0.to_string(),
                };
                db::distributions::insert_payment(conn, &payment)?;
                let body = serde_json::json!({ "distribution_id": d.id, "line_no": line.line_no, "reference": payment.reference });
                crate::journal::record(conn, &d.network_id, Some(&payment.marked_by), "payout.marked", body)?;
                if let Some(agent) = &line.agent_id {
                    let scale = u32::try_from(d.scale).unwrap_or(0);
                    let actor = caller.0.to_string();
                    crate::tokens::on_paid(
                        conn,
                        &d.network_id,
                        &line.id,
                        agent,
                        line.amount_minor.0,
                        scale,
                        &actor,
                    )?;
                }
                Ok(stored_line_out(
                    line,
                    Some(payment),
                    u32::try_from(d.scale).unwrap_or(0),
                ))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

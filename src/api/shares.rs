//! Value shares: every member's weighted value, share of the total, what they have been
//! paid, and what they would get of a given amount now.

use std::collections::HashMap;

use actix_web::{get, web};
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::ReadErrors;
use super::extract::ApiQuery;
use super::{decode_cursor, page_limit, path_uuid, stored_id, utc, Access, AppState};
use crate::accounting::{self, to_human, to_minor, Job};
use crate::auth::Caller;
use crate::db::rows::now;
use crate::db::{self, AnyConnection};
use crate::domain::contribution::parse_decimal;
use crate::domain::distribution::Recipient;
use crate::domain::ids::AgentId;
use crate::error::ApiError;

/// Digits kept in a share of the total.
pub const SHARE_DIGITS: u32 = 12;

/// An amount in one currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Currency code.
    pub currency: String,
    /// Amount in the currency.
    pub amount: String,
}

/// One member's value share.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShareOut {
    /// The member.
    pub agent_id: AgentId,
    /// Display name.
    pub display_name: String,
    /// Sum of the weighted values of their counted contributions at the date.
    pub value: String,
    /// value / total value (12 digits after the point, truncated).
    pub share: String,
    /// Paid to them by committed distributions, per currency.
    pub paid: Vec<Money>,
    /// What they would get of `amount` now, if `amount` was given.
    pub would_get: Option<String>,
}

/// Every member's share.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SharesOut {
    /// The date the values are at.
    pub at: DateTime<Utc>,
    /// The equation version used.
    pub equation_version: i32,
    /// Total weighted value of the network.
    pub total_value: String,
    /// The sample amount, if given.
    pub amount: Option<String>,
    /// Its currency.
    pub currency: Option<String>,
    /// Members, by value (highest first), then id.
    pub items: Vec<ShareOut>,
    /// Pass as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Date, sample amount and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SharesParams {
    /// The date (RFC 3339; default now).
    pub at: Option<DateTime<Utc>>,
    /// A sample amount to split now (decimal string).
    pub amount: Option<String>,
    /// Its currency (default: the network's first).
    pub currency: Option<String>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A single member's share, at a date.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShareParams {
    /// The date (RFC 3339; default now).
    pub at: Option<DateTime<Utc>>,
    /// A sample amount to split now (decimal string).
    pub amount: Option<String>,
    /// Its currency (default: the network's first).
    pub currency: Option<String>,
}

struct Table {
    at: NaiveDateTime,
    version: i32,
    total: Decimal,
    amount: Option<(String, String)>,
    rows: Vec<ShareOut>,
}

fn table(
    conn: &mut AnyConnection,
    network: &str,
    at: NaiveDateTime,
    amount: Option<Decimal>,
    currency: Option<String>,
) -> Result<Table, ApiError> {
    let current = now();
    if at > current {
        return Err(ApiError::field("at", "must not be in the future"));
    }
    accounting::settle(conn, network, current)?;
    let force = accounting::in_force(conn, network, at)?
        .ok_or_else(|| ApiError::Conflict("no value equation was in force at that date".into()))?;
    let values = accounting::values_by_agent(conn, network, &force.eq, at, current)?;
    let total = values
        .values()
        .try_fold(Decimal::ZERO, |s, v| s.checked_add(*v))
        .ok_or_else(|| ApiError::Conflict("values overflow".into()))?;
    let paid = db::distributions::paid_by_agent(conn, network)?;
    let currencies = db::networks::currencies(conn, network)?;
    let scale_of = |code: &str| {
        currencies
            .iter()
            .find(|c| c.code == code)
            .and_then(|c| u32::try_from(c.scale).ok())
            .unwrap_or(0)
    };
    let mut would: Option<(HashMap<String, Decimal>, u32, String, Decimal)> = None;
    if let Some(a) = amount {
        let cur = match &currency {
            Some(c) => currencies
                .iter()
                .find(|x| &x.code == c)
                .ok_or_else(|| ApiError::field("currency", "is not a currency of this network"))?,
            None => currencies
                .first()
                .ok_or_else(|| ApiError::field("currency", "the network has no currency"))?,
        };
        let scale = u32::try_from(cur.scale).unwrap_or(0);
        if a.scale() > scale {
            return Err(ApiError::field(
                "amount",
                format!("must have at most {scale} fraction digits"),
            ));
        }
        let minor = to_minor(a, scale).ok_or_else(|| ApiError::field("amount", "is too large"))?;
        let eq_now = accounting::in_force(conn, network, current)?
            .ok_or_else(|| ApiError::Conflict("no value equation in force now".into()))?;
        let job = Job {
            network_id: network,
            eq: &eq_now.eq,
            amount_minor: minor,
            scale,
            cutoff: current,
            as_of: current,
            before: None,
            salt: "shares",
        };
        let out = accounting::compute(conn, &job)?.outcome;
        let mut per: HashMap<String, Decimal> = HashMap::new();
        for l in out.lines {
            if let Recipient::Agent(a) = l.recipient {
                *per.entry(a).or_insert(Decimal::ZERO) += l.amount;
            }
        }
        would = Some((per, scale, cur.code.clone(), minor));
    }
    let mut rows: Vec<(Decimal, ShareOut)> = Vec::new();
    for (m, agent) in db::members::list_members(conn, network, None, i64::MAX)? {
        let value = values.get(&m.agent_id).copied().unwrap_or_default();
        let share = if total.is_zero() {
            Decimal::ZERO
        } else {
            value.checked_div(total).unwrap_or_default()
        };
        let mut paid_list: Vec<Money> = paid
            .get(&m.agent_id)
            .map(|p| {
                p.iter()
                    .map(|(c, v)| Money {
                        currency: c.clone(),
                        amount: to_human(*v, scale_of(c)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        paid_list.sort_by(|a, b| a.currency.cmp(&b.currency));
        rows.push((
            value,
            ShareOut {
                agent_id: stored_id(&m.agent_id),
                display_name: agent.display_name,
                value: value.normalize().to_string(),
                share: share
                    .round_dp_with_strategy(SHARE_DIGITS, RoundingStrategy::ToZero)
                    .normalize()
                    .to_string(),
                paid: paid_list,
                would_get: would.as_ref().map(|(per, scale, _, _)| {
                    to_human(per.get(&m.agent_id).copied().unwrap_or_default(), *scale)
                }),
            },
        ));
    }
    // Highest value first, then by id: sorted on the exact values, not their text.
    rows.sort_by(|(va, a), (vb, b)| vb.cmp(va).then_with(|| a.agent_id.cmp(&b.agent_id)));
    let rows: Vec<ShareOut> = rows.into_iter().map(|(_, r)| r).collect();
    Ok(Table {
        at,
        version: force.row.version,
        total,
        amount: would.map(|(_, scale, code, minor)| (to_human(minor, scale), code)),
        rows,
    })
}

fn sample(amount: Option<&str>) -> Result<Option<Decimal>, ApiError> {
    amount
        .map(|a| {
            let d = parse_decimal("amount", a)?;
            if d <= Decimal::ZERO || d >= Decimal::from(10_000_000_000_i64) {
                return Err(ApiError::field(
                    "amount",
                    "must be greater than 0 and less than 10000000000",
                ));
            }
            Ok(d)
        })
        .transpose()
}

/// Every member's value share at a date, highest first.
#[utoipa::path(
    tag = "shares",
    params(("network" = String, Path, description = "Network id or slug"), SharesParams),
    responses((status = 200, description = "Shares", body = SharesOut), ReadErrors,
              (status = 409, description = "No equation in force", body = crate::error::Problem, content_type = "application/problem+json"))
)]
#[get("/networks/{network}/shares")]
pub async fn list_shares(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<SharesParams>,
) -> Result<web::Json<SharesOut>, ApiError> {
    let q = query.0;
    let limit = usize::try_from(page_limit(q.limit)?).unwrap_or(50);
    let after = decode_cursor(q.cursor.as_deref())?;
    let amount = sample(q.amount.as_deref())?;
    let at = q.at.map_or_else(now, |t| t.naive_utc());
    let key = path.into_inner();
    let t = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            table(conn, &access.network.id, at, amount, q.currency)
        })
        .await?;
    let start = match after {
        Some(a) => t
            .rows
            .iter()
            .position(|r| r.agent_id.to_string() == a)
            .map_or(t.rows.len(), |p| p + 1),
        None => 0,
    };
    let mut items: Vec<ShareOut> = t.rows.into_iter().skip(start).take(limit + 1).collect();
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r.agent_id.to_string())
        })
    } else {
        None
    };
    Ok(web::Json(SharesOut {
        at: utc(t.at),
        equation_version: t.version,
        total_value: t.total.normalize().to_string(),
        amount: t.amount.as_ref().map(|(a, _)| a.clone()),
        currency: t.amount.map(|(_, c)| c),
        items,
        next_cursor,
    }))
}

/// One member's value share at a date.
#[utoipa::path(
    tag = "shares",
    params(("network" = String, Path, description = "Network id or slug"), ("agent_id" = String, Path, description = "Agent id"), ShareParams),
    responses((status = 200, description = "The member's share", body = ShareOut), ReadErrors,
              (status = 409, description = "No equation in force", body = crate::error::Problem, content_type = "application/problem+json"))
)]
#[get("/networks/{network}/shares/{agent_id}")]
pub async fn get_share(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<ShareParams>,
) -> Result<web::Json<ShareOut>, ApiError> {
    let (key, agent) = path.into_inner();
    let agent = path_uuid("agent_id", &agent)?;
    let q = query.0;
    let amount = sample(q.amount.as_deref())?;
    let at = q.at.map_or_else(now, |t| t.naive_utc());
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let t = table(conn, &access.network.id, at, amount, q.currency)?;
            t.rows
                .into_iter()
                .find(|r| r.agent_id.to_string() == agent)
                .ok_or_else(|| ApiError::NotFound("no such member".into()))
        })
        .await
        .map(web::Json)
}

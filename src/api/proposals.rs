//! Governance: proposals to change the value equation, votes, fast-track, and the what-if
//! table that shows every member's share under the current and the proposed rules.

use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{
    decode_cursor, page_limit, paginate, path_uuid, stored_id, utc, Access, AppState, Page,
    PageParams,
};
use crate::accounting::{self, compile_body, to_human, to_minor, Job};
use crate::auth::{Authenticated, Caller};
use crate::db::rows::{now, ProposalRow, VoteRow};
use crate::db::{self, write_tx, AnyConnection};
use crate::domain::contribution::parse_decimal;
use crate::domain::distribution::Recipient;
use crate::domain::equation::{Governance, ValueEquation};
use crate::domain::governance::{ProposalStatus, Tally, Vote};
use crate::domain::ids::AgentId;
use crate::domain::network::Role;
use crate::domain::{bounded_text, presets};
use crate::error::ApiError;

/// A new proposal: an equation, or the name of a preset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalIn {
    /// Short title (1-200 characters).
    #[schema(example = "Adopt the Sensorica preset")]
    pub title: String,
    /// Why (up to 4000 characters).
    #[serde(default)]
    pub description: String,
    /// The proposed equation (or give `preset`).
    pub equation: Option<ValueEquation>,
    /// A preset name from GET /v1/presets (or give `equation`).
    #[schema(example = "sensorica")]
    pub preset: Option<String>,
    /// When it takes effect if passed (default: when it passes).
    pub effective_from: Option<DateTime<Utc>>,
}

/// A vote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteIn {
    /// yes, no or abstain.
    pub vote: Vote,
}

/// A proposal and where it stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProposalOut {
    /// Proposal id.
    pub id: String,
    /// Who proposed it.
    pub proposed_by: AgentId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// The preset it came from, if any.
    pub preset: Option<String>,
    /// The proposed equation.
    pub equation: ValueEquation,
    /// SHA-256 of the equation's canonical JSON.
    pub content_hash: String,
    /// Requested start, if any.
    pub effective_from: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: ProposalStatus,
    /// Yes votes.
    pub yes: i64,
    /// No votes.
    pub no: i64,
    /// Abstentions.
    pub abstain: i64,
    /// Members (and stewards) who may vote, fixed when it was made.
    pub eligible_voters: i32,
    /// Quorum in percent of eligible voters (from the equation in force when it was made).
    pub quorum_percent: String,
    /// Yes share of yes+no to exceed, in percent.
    pub threshold_percent: String,
    /// May a steward fast-track it?
    pub fast_track_allowed: bool,
    /// When voting ends.
    pub voting_ends_at: DateTime<Utc>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// The version it became, if passed.
    pub version: Option<i32>,
    /// The steward who fast-tracked it, if one did.
    pub fast_tracked_by: Option<AgentId>,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

/// A sample amount for the what-if table.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WhatIfParams {
    /// Sample income, a decimal string (default "1000").
    pub amount: Option<String>,
    /// Currency code (default: the network's first currency).
    pub currency: Option<String>,
}

/// One recipient's part under the current and the proposed equation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhatIfRow {
    /// The member, for member rows.
    pub agent_id: Option<AgentId>,
    /// The account, for account rows (reserve, retained, …).
    pub account: Option<String>,
    /// Display name of the member.
    pub display_name: Option<String>,
    /// Under the equation in force (absent when none is).
    pub current: Option<String>,
    /// Under the proposed equation.
    pub proposed: String,
}

/// The what-if table: nobody's value moves silently.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhatIfOut {
    /// The sample amount.
    pub amount: String,
    /// Its currency.
    pub currency: String,
    /// The version in force, if any.
    pub current_version: Option<i32>,
    /// Every member and account, members first.
    pub rows: Vec<WhatIfRow>,
}

fn view(conn: &mut AnyConnection, p: ProposalRow) -> Result<ProposalOut, ApiError> {
    let (yes, no, abstain) = db::equations::tally(conn, &p.id)?;
    let outcome = db::equations::outcome(conn, &p.id)?;
    let equation: ValueEquation = serde_json::from_str(&p.body)
        .map_err(|e| ApiError::Internal(format!("stored proposal unreadable: {e}")))?;
    Ok(ProposalOut {
        id: p.id,
        proposed_by: stored_id(&p.proposed_by),
        title: p.title,
        description: p.description,
        preset: p.preset,
        equation,
        content_hash: p.content_hash,
        effective_from: p.effective_from.map(utc),
        status: outcome
            .as_ref()
            .and_then(|o| ProposalStatus::from_db(&o.status))
            .unwrap_or(ProposalStatus::Open),
        yes,
        no,
        abstain,
        eligible_voters: p.eligible_voters,
        quorum_percent: p.quorum_percent,
        threshold_percent: p.threshold_percent,
        fast_track_allowed: p.fast_track_allowed,
        voting_ends_at: utc(p.voting_ends_at),
        decided_at: outcome.as_ref().map(|o| utc(o.decided_at)),
        version: outcome.as_ref().and_then(|o| o.version),
        fast_tracked_by: outcome
            .and_then(|o| o.fast_tracked_by)
            .map(|a| stored_id(&a)),
        created_at: utc(p.created_at),
    })
}

fn voter_role(access: &Access) -> Result<Role, ApiError> {
    match access.member_role()? {
        r @ (Role::Member | Role::Steward) => Ok(r),
        r => Err(ApiError::Forbidden(format!(
            "a {} cannot propose or vote",
            r.as_str()
        ))),
    }
}

/// Propose a new equation (or a preset). Any member or steward may.
#[utoipa::path(
    tag = "governance",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = ProposalIn,
    responses((status = 201, description = "The proposal", body = ProposalOut), WriteErrors)
)]
#[post("/networks/{network}/proposals")]
pub async fn create_proposal(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<ProposalIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    bounded_text("title", input.title.trim(), 1, 200)?;
    bounded_text("description", &input.description, 0, 4000)?;
    let (equation, preset) = match (input.equation, input.preset) {
        (Some(e), None) => (e, None),
        (None, Some(name)) => {
            let p = presets::find(&name).ok_or_else(|| {
                let names: Vec<&str> = presets::PRESETS.iter().map(|p| p.name).collect();
                ApiError::field(
                    "preset",
                    format!("unknown preset (known: {})", names.join(", ")),
                )
            })?;
            ((p.equation)(), Some(name))
        }
        _ => {
            return Err(ApiError::field(
                "equation",
                "give exactly one of equation and preset",
            ))
        }
    };
    let compiled = equation.compile().map_err(|e| e.within("equation"))?;
    let key = path.into_inner();
    let out = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                voter_role(&access)?;
                let network = access.network.id;
                let at = now();
                accounting::settle(conn, &network, at)?;
                let governance = accounting::in_force(conn, &network, at)?
                    .map_or_else(Governance::default, |f| f.eq.source.governance.clone());
                let eligible = i32::try_from(db::equations::eligible_voters(conn, &network)?)
                    .unwrap_or(i32::MAX);
                let row = ProposalRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    network_id: network.clone(),
                    proposed_by: caller.0.to_string(),
                    title: input.title.trim().to_owned(),
                    description: input.description,
                    preset,
                    body: compiled.canonical.clone(),
                    content_hash: compiled.hash.clone(),
                    effective_from: input.effective_from.map(|t| t.naive_utc()),
                    quorum_percent: governance.quorum_percent,
                    threshold_percent: governance.threshold_percent,
                    fast_track_allowed: governance.steward_fast_track,
                    eligible_voters: eligible,
                    created_at: at,
                    voting_ends_at: at + Duration::days(i64::from(governance.voting_days)),
                };
                db::equations::insert_proposal(conn, &row)?;
                let body = serde_json::json!({
                    "id": row.id, "title": row.title, "preset": row.preset, "content_hash": row.content_hash,
                    "effective_from": row.effective_from.map(utc), "voting_ends_at": utc(row.voting_ends_at),
                    "eligible_voters": row.eligible_voters,
                });
                crate::journal::record(conn, &network, Some(&row.proposed_by), "proposal.created", body)?;
                view(conn, row)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// List a network's proposals, newest first.
#[utoipa::path(
    tag = "governance",
    params(("network" = String, Path, description = "Network id or slug"), PageParams),
    responses((status = 200, description = "A page of proposals", body = Page<ProposalOut>), ReadErrors)
)]
#[get("/networks/{network}/proposals")]
pub async fn list_proposals(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<ProposalOut>>, ApiError> {
    let limit = page_limit(query.0.limit)?;
    let before = decode_cursor(query.0.cursor.as_deref())?;
    let key = path.into_inner();
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            accounting::settle(conn, &access.network.id, now())?;
            let rows = db::equations::list_proposals(
                conn,
                &access.network.id,
                before.as_deref(),
                limit + 1,
            )?;
            rows.into_iter()
                .map(|r| view(conn, r))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(web::Json(paginate(rows, limit, |p| p.id.as_str(), |p| p)))
}

/// Get one proposal.
#[utoipa::path(
    tag = "governance",
    params(("network" = String, Path, description = "Network id or slug"), ("id" = String, Path, description = "Proposal id")),
    responses((status = 200, description = "The proposal", body = ProposalOut), ReadErrors)
)]
#[get("/networks/{network}/proposals/{id}")]
pub async fn get_proposal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<ProposalOut>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            accounting::settle(conn, &access.network.id, now())?;
            let p = db::equations::find_proposal(conn, &access.network.id, &id)?
                .ok_or_else(|| ApiError::NotFound("no such proposal".into()))?;
            view(conn, p)
        })
        .await
        .map(web::Json)
}

/// Vote on an open proposal (members and stewards, once each). A vote that makes the result
/// certain decides it at once; otherwise it is decided when voting ends.
#[utoipa::path(
    tag = "governance",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug"), ("id" = String, Path, description = "Proposal id")),
    request_body = VoteIn,
    responses((status = 201, description = "The proposal after the vote", body = ProposalOut), WriteErrors)
)]
#[post("/networks/{network}/proposals/{id}/votes")]
pub async fn create_vote(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<VoteIn>,
) -> Result<HttpResponse, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    let vote = body.0.vote;
    let out = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                voter_role(&access)?;
                let network = access.network.id;
                db::equations::lock_network(conn, &network)?;
                let at = now();
                accounting::settle(conn, &network, at)?;
                let p = db::equations::find_proposal(conn, &network, &id)?
                    .ok_or_else(|| ApiError::NotFound("no such proposal".into()))?;
                if let Some(o) = db::equations::outcome(conn, &p.id)? {
                    return Err(ApiError::Conflict(format!(
                        "voting is closed: the proposal {}",
                        o.status
                    )));
                }
                let voter = caller.0.to_string();
                if db::equations::has_voted(conn, &p.id, &voter)? {
                    return Err(ApiError::Conflict(
                        "you have already voted on this proposal".into(),
                    ));
                }
                db::equations::insert_vote(
                    conn,
                    &VoteRow {
                        proposal_id: p.id.clone(),
                        voter_id: voter,
                        vote: vote.as_str().into(),
                        created_at: at,
                    },
                )?;
                let body = serde_json::json!({ "proposal_id": p.id, "vote": vote.as_str() });
                crate::journal::record(
                    conn,
                    &network,
                    Some(&caller.0.to_string()),
                    "proposal.vote",
                    body,
                )?;
                accounting::settle(conn, &network, at)?;
                view(conn, p)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// Adopt a proposal without the vote (stewards only, and only when the equation in force
/// allowed it when the proposal was made). Recorded on the proposal.
#[utoipa::path(
    tag = "governance",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug"), ("id" = String, Path, description = "Proposal id")),
    responses((status = 200, description = "The adopted proposal", body = ProposalOut), WriteErrors)
)]
#[post("/networks/{network}/proposals/{id}/fast-track")]
pub async fn fast_track(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<web::Json<ProposalOut>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let network = access.network.id;
                db::equations::lock_network(conn, &network)?;
                let at = now();
                accounting::settle(conn, &network, at)?;
                let p = db::equations::find_proposal(conn, &network, &id)?
                    .ok_or_else(|| ApiError::NotFound("no such proposal".into()))?;
                if !p.fast_track_allowed {
                    return Err(ApiError::Forbidden(
                        "the equation in force does not allow fast-tracking".into(),
                    ));
                }
                if let Some(o) = db::equations::outcome(conn, &p.id)? {
                    return Err(ApiError::Conflict(format!(
                        "the proposal is already {}",
                        o.status
                    )));
                }
                let (yes, no, abstain) = db::equations::tally(conn, &p.id)?;
                let version = accounting::adopt(conn, &p, at)?;
                let t = Tally {
                    yes,
                    no,
                    abstain,
                    eligible: i64::from(p.eligible_voters),
                };
                accounting::record_outcome(
                    conn,
                    &p,
                    ProposalStatus::Passed,
                    at,
                    t,
                    Some(caller.0.to_string()),
                    Some(version),
                )?;
                view(conn, p)
            })
        })
        .await
        .map(web::Json)
}

/// What every member would get of a sample amount under the current and the proposed rules.
#[utoipa::path(
    tag = "governance",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("id" = String, Path, description = "Proposal id"),
        WhatIfParams,
    ),
    responses((status = 200, description = "Side by side", body = WhatIfOut), ReadErrors)
)]
#[get("/networks/{network}/proposals/{id}/what-if")]
pub async fn what_if(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<WhatIfParams>,
) -> Result<web::Json<WhatIfOut>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    let q = query.0;
    let amount = parse_decimal("amount", q.amount.as_deref().unwrap_or("1000"))?;
    if amount <= Decimal::ZERO || amount >= Decimal::from(10_000_000_000_i64) {
        return Err(ApiError::field(
            "amount",
            "must be greater than 0 and less than 10000000000",
        ));
    }
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let network = access.network.id;
            let p = db::equations::find_proposal(conn, &network, &id)?
                .ok_or_else(|| ApiError::NotFound("no such proposal".into()))?;
            let currencies = db::networks::currencies(conn, &network)?;
            let currency = match &q.currency {
                Some(c) => currencies.iter().find(|x| &x.code == c).ok_or_else(|| {
                    ApiError::field("currency", "is not a currency of this network")
                })?,
                None => currencies
                    .first()
                    .ok_or_else(|| ApiError::field("currency", "the network has no currency"))?,
            };
            let scale = u32::try_from(currency.scale).unwrap_or(0);
            if amount.scale() > scale {
                return Err(ApiError::field(
                    "amount",
                    format!("must have at most {scale} fraction digits"),
                ));
            }
            let minor =
                to_minor(amount, scale).ok_or_else(|| ApiError::field("amount", "is too large"))?;
            let at = now();
            let proposed = compile_body(&p.body)?;
            let current = accounting::in_force(conn, &network, at)?;
            let run = |conn: &mut AnyConnection, eq| {
                let job = Job {
                    network_id: &network,
                    eq,
                    amount_minor: minor,
                    scale,
                    cutoff: at,
                    as_of: at,
                    before: None,
                    salt: &id,
                };
                accounting::compute(conn, None, &job).map(|c| c.outcome)
            };
            let proposed_out = run(conn, &proposed)?;
            let current_out = current.as_ref().map(|c| run(conn, &c.eq)).transpose()?;
            let mut table: BTreeMap<Recipient, (Option<Decimal>, Decimal)> = BTreeMap::new();
            for (m, _) in db::members::list_members(conn, &network, None, i64::MAX)? {
                table.insert(
                    Recipient::Agent(m.agent_id),
                    (current_out.as_ref().map(|_| Decimal::ZERO), Decimal::ZERO),
                );
            }
            for l in &proposed_out.lines {
                table
                    .entry(l.recipient.clone())
                    .or_insert((current_out.as_ref().map(|_| Decimal::ZERO), Decimal::ZERO))
                    .1 += l.amount;
            }
            if let Some(c) = &current_out {
                for l in &c.lines {
                    let e = table
                        .entry(l.recipient.clone())
                        .or_insert((Some(Decimal::ZERO), Decimal::ZERO));
                    e.0 = Some(e.0.unwrap_or_default() + l.amount);
                }
            }
            let mut rows = Vec::with_capacity(table.len());
            for (r, (cur, prop)) in table {
                let (agent_id, account, display_name) = match r {
                    Recipient::Agent(a) => {
                        let name = db::members::find_agent(conn, &a)?.map(|x| x.display_name);
                        (Some(stored_id(&a)), None, name)
                    }
                    Recipient::Account(n) => (None, Some(n), None),
                };
                rows.push(WhatIfRow {
                    agent_id,
                    account,
                    display_name,
                    current: cur.map(|c| to_human(c, scale)),
                    proposed: to_human(prop, scale),
                });
            }
            Ok(WhatIfOut {
                amount: to_human(minor, scale),
                currency: currency.code.clone(),
                current_version: current.map(|c| c.row.version),
                rows,
            })
        })
        .await
        .map(web::Json)
}

//! Peer validation: approve or reject a contribution; list a contribution's validations.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{
    decode_cursor, page_limit, paginate, path_uuid, stored_id, utc, Access, AppState, Page,
    PageParams,
};
use crate::auth::{Authenticated, Caller};
use crate::db;
use crate::db::conn::{write_tx_reply, REPLY_CONTENT_TYPE};
use crate::db::rows::{now, OutcomeRow, ValidationRow};
use crate::domain::bounded_text;
use crate::domain::contribution::Status;
use crate::domain::ids::{AgentId, ContributionId, ValidationId};
use crate::domain::validation::{check_validator, outcome, Decision, Refusal};
use crate::error::ApiError;

/// Longest validation note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// A validator's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationIn {
    /// Approve or reject.
    pub decision: Decision,
    /// Why (up to 2000 characters).
    #[schema(example = "Saw the frame in the shop")]
    pub note: Option<String>,
}

/// A recorded validation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidationOut {
    /// Validation id.
    pub id: ValidationId,
    /// The contribution validated.
    pub contribution_id: ContributionId,
    /// Who validated.
    pub validator_id: AgentId,
    /// The decision.
    pub decision: Decision,
    /// The note.
    pub note: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A validation and the contribution's status after it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidationResult {
    /// The validation recorded.
    pub validation: ValidationOut,
    /// The contribution's status now.
    pub contribution_status: Status,
    /// Approvals now.
    pub approvals: i64,
    /// Rejections now.
    pub rejections: i64,
}

fn to_out(r: ValidationRow) -> ValidationOut {
    ValidationOut {
        id: stored_id(&r.id),
        contribution_id: stored_id(&r.contribution_id),
        validator_id: stored_id(&r.validator_id),
        decision: Decision::from_db(&r.decision).unwrap_or(Decision::Reject),
        note: r.note,
        created_at: utc(r.created_at),
    }
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::OwnContribution => ApiError::Forbidden(
            "nobody validates their own contribution (or one they recorded)".into(),
        ),
        Refusal::RoleCannotValidate(role) => {
            ApiError::Forbidden(format!("a {} cannot validate", role.as_str()))
        }
        Refusal::AlreadyDecided(s) => {
            ApiError::Conflict(format!("the contribution is already {}", s.as_str()))
        }
    }
}

/// Approve or reject a contribution.
///
/// Members and stewards only, never on their own (or one they recorded). When approvals
/// reach `approvals_required` the contribution becomes `validated`; when rejections reach
/// `rejections_required`, `rejected` — the thresholds of the value equation in force, or the
/// network's own settings before it adopts one. Each validator decides once.
#[utoipa::path(
    tag = "validations",
    security(("bearer" = [])),
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("id" = String, Path, description = "Contribution id"),
    ),
    request_body = ValidationIn,
    responses((status = 201, description = "Recorded", body = ValidationResult), WriteErrors)
)]
#[post("/networks/{network}/contributions/{id}/validations")]
pub async fn create_validation(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<ValidationIn>,
) -> Result<HttpResponse, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    let input = body.0;
    if let Some(n) = &input.note {
        bounded_text("note", n, 0, MAX_NOTE_CHARS)?;
    }
    let body = state
        .db
        .write(move |conn| {
            write_tx_reply(conn, 201, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                let role = access.member_role()?;
                let network = access.network;
                let contribution =
                    db::contributions::find(conn, &network.id, &id)?.ok_or_else(|| {
                        ApiError::NotFound("no such contribution in this network".into())
                    })?;
                // Serialise validators of this contribution so the threshold sees every vote.
                db::contributions::lock(conn, &id)?;
                let status =
                    if !db::contributions::corrected(conn, std::slice::from_ref(&id))?.is_empty() {
                        Status::Superseded
                    } else {
                        db::contributions::outcome(conn, &id)?
                            .and_then(|s| Status::from_db(&s))
                            .unwrap_or(Status::Pending)
                    };
                let validator = caller.0;
                check_validator(
                    validator,
                    role,
                    stored_id(&contribution.agent_id),
                    stored_id(&contribution.recorded_by),
                    status,
                )
                .map_err(refusal)?;
                if db::contributions::has_validated(conn, &id, &validator.to_string())? {
                    return Err(ApiError::Conflict(
                        "you have already validated this contribution".into(),
                    ));
                }
                let at = now();
                let row = ValidationRow {
                    id: ValidationId::generate().to_string(),
                    contribution_id: id.clone(),
                    validator_id: validator.to_string(),
                    decision: input.decision.as_str().into(),
                    note: input.note,
                    created_at: at,
                };
                db::contributions::insert_validation(conn, &row)?;
                let body = serde_json::json!({ "contribution_id": row.contribution_id, "decision": row.decision, "note": row.note });
                crate::journal::record(conn, &network.id, Some(&row.validator_id), "contribution.validation", body)?;
                let (approvals, rejections) = db::contributions::counts(conn, &id)?;
                // One lookup of the equation in force gives the thresholds and, when the
                // contribution is validated, the mint's rules and weighing.
                let force = crate::accounting::in_force(conn, &network.id, at)?;
                let (approvals_required, rejections_required) =
                    crate::accounting::thresholds(force.as_ref(), &network);
                let decided = outcome(
                    approvals,
                    rejections,
                    approvals_required,
                    rejections_required,
                );
                if let Some(s) = decided {
                    db::contributions::insert_outcome(
                        conn,
                        &OutcomeRow {
                            contribution_id: id.clone(),
                            status: s.as_str().into(),
                            decided_at: at,
                            network_id: contribution.network_id.clone(),
                        },
                    )?;
                    let body = serde_json::json!({ "contribution_id": id, "status": s.as_str(), "approvals": approvals, "rejections": rejections });
                    crate::journal::record(conn, &network.id, None, "contribution.decided", body)?;
                    if s == Status::Validated {
                        // Minted in this transaction: exactly once, even if validators race.
                        crate::tokens::on_validated(conn, &contribution, &validator.to_string(), force.as_ref())?;
                    }
                }
                Ok::<_, ApiError>(ValidationResult {
                    validation: to_out(row),
                    contribution_status: decided.unwrap_or(Status::Pending),
                    approvals,
                    rejections,
                })
            })
        })
        .await?;
    Ok(HttpResponse::Created()
        .content_type(REPLY_CONTENT_TYPE)
        .body(body))
}

/// List a contribution's validations, oldest first.
#[utoipa::path(
    tag = "validations",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("id" = String, Path, description = "Contribution id"),
        PageParams,
    ),
    responses((status = 200, description = "A page of validations", body = Page<ValidationOut>), ReadErrors)
)]
#[get("/networks/{network}/contributions/{id}/validations")]
pub async fn list_validations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<ValidationOut>>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    validation_page(
        &state,
        key,
        caller,
        query.0,
        move |conn, network, after, limit| {
            db::contributions::find(conn, network, &id)?
                .ok_or_else(|| ApiError::NotFound("no such contribution in this network".into()))?;
            Ok(db::contributions::validations_of(conn, &id, after, limit)?)
        },
    )
    .await
}

/// A page of validations, as `fetch` (given the network id, the cursor and the limit plus
/// one) reads them once the caller may read the network.
async fn validation_page(
    state: &AppState,
    key: String,
    caller: Caller,
    query: PageParams,
    fetch: impl FnOnce(
            &mut db::AnyConnection,
            &str,
            Option<&str>,
            i64,
        ) -> Result<Vec<ValidationRow>, ApiError>
        + Send
        + 'static,
) -> Result<web::Json<Page<ValidationOut>>, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            fetch(conn, &access.network.id, after.as_deref(), limit + 1)
        })
        .await?;
    Ok(web::Json(paginate(rows, limit, |r| r.id.as_str(), to_out)))
}

/// List the validations a member made of others' contributions, oldest first.
#[utoipa::path(
    tag = "validations",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("agent_id" = String, Path, description = "The validating member"),
        PageParams,
    ),
    responses((status = 200, description = "A page of validations", body = Page<ValidationOut>), ReadErrors)
)]
#[get("/networks/{network}/members/{agent_id}/validations")]
pub async fn list_validations_by(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<ValidationOut>>, ApiError> {
    let (key, agent) = path.into_inner();
    let agent = path_uuid("agent_id", &agent)?;
    validation_page(
        &state,
        key,
        caller,
        query.0,
        move |conn, network, after, limit| {
            Ok(db::contributions::validations_by(
                conn, network, &agent, after, limit,
            )?)
        },
    )
    .await
}

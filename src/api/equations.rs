//! Value equations: presets, a network's versions, and the version in force at a date.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::ReadErrors;
use super::extract::ApiQuery;
use super::{utc, Access, AppState, AtParams};
use crate::accounting::{self, compile_body};
use crate::auth::Caller;
use crate::db::rows::{now, EquationVersionRow};
use crate::db::{self, AnyConnection};
use crate::domain::equation::ValueEquation;
use crate::domain::presets::PRESETS;
use crate::error::ApiError;

/// A built-in starting equation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresetOut {
    /// Name to use in a proposal's `preset`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// SHA-256 of its canonical JSON.
    pub content_hash: String,
    /// The equation.
    pub equation: ValueEquation,
}

/// Where a version stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// In force now.
    Active,
    /// Adopted, effective later.
    Scheduled,
    /// Replaced by a later version.
    Superseded,
}

/// One adopted version of a network's equation (never edited: a change is a new version).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EquationVersionOut {
    /// Version number, from 1.
    pub version: i32,
    /// Where it stands now.
    pub status: VersionStatus,
    /// When it takes (took) effect.
    pub effective_from: DateTime<Utc>,
    /// When its proposal was adopted.
    pub adopted_at: DateTime<Utc>,
    /// SHA-256 of the canonical JSON of `equation`.
    pub content_hash: String,
    /// The proposal that adopted it.
    pub proposal_id: String,
    /// The whole equation.
    pub equation: ValueEquation,
}

fn to_out(row: EquationVersionRow, in_force: Option<i32>) -> Result<EquationVersionOut, ApiError> {
    let equation: ValueEquation = serde_json::from_str(&row.body)
        .map_err(|e| ApiError::Internal(format!("stored equation unreadable: {e}")))?;
    let status = if Some(row.version) == in_force {
        VersionStatus::Active
    } else if row.effective_from > now() {
        VersionStatus::Scheduled
    } else {
        VersionStatus::Superseded
    };
    Ok(EquationVersionOut {
        version: row.version,
        status,
        effective_from: utc(row.effective_from),
        adopted_at: utc(row.adopted_at),
        content_hash: row.content_hash,
        proposal_id: row.proposal_id,
        equation,
    })
}

fn current_version(conn: &mut AnyConnection, network_id: &str) -> Result<Option<i32>, ApiError> {
    Ok(db::equations::in_force(conn, network_id, now())?.map(|r| r.version))
}

/// List the built-in presets.
#[utoipa::path(tag = "equations", responses((status = 200, description = "Presets", body = Vec<PresetOut>)))]
#[get("/presets")]
pub async fn list_presets() -> Result<web::Json<Vec<PresetOut>>, ApiError> {
    PRESETS
        .iter()
        .map(|p| {
            let eq = (p.equation)();
            let compiled = eq
                .clone()
                .compile()
                .map_err(|e| ApiError::Internal(e.detail))?;
            Ok(PresetOut {
                name: p.name.into(),
                description: p.description.into(),
                content_hash: compiled.hash,
                equation: eq,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()
        .map(web::Json)
}

/// List every version of a network's equation, oldest first.
#[utoipa::path(
    tag = "equations",
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 200, description = "Versions", body = Vec<EquationVersionOut>), ReadErrors)
)]
#[get("/networks/{network}/equations")]
pub async fn list_equations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Vec<EquationVersionOut>>, ApiError> {
    let key = path.into_inner();
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            accounting::settle(conn, &access.network.id, now())?;
            let current = current_version(conn, &access.network.id)?;
            db::equations::versions(conn, &access.network.id)?
                .into_iter()
                .map(|r| to_out(r, current))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map(web::Json)
}

/// Get one version of a network's equation.
#[utoipa::path(
    tag = "equations",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("version" = i32, Path, description = "Version number"),
    ),
    responses((status = 200, description = "The version", body = EquationVersionOut), ReadErrors)
)]
#[get("/networks/{network}/equations/{version}")]
pub async fn get_equation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<EquationVersionOut>, ApiError> {
    let (key, version) = path.into_inner();
    let version: i32 = version
        .parse()
        .map_err(|_| ApiError::field("version", "must be a whole number"))?;
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            accounting::settle(conn, &access.network.id, now())?;
            let current = current_version(conn, &access.network.id)?;
            let row = db::equations::version(conn, &access.network.id, version)?
                .ok_or_else(|| ApiError::NotFound(format!("no version {version}")))?;
            to_out(row, current)
        })
        .await
        .map(web::Json)
}

/// The version in force at a date (default now).
#[utoipa::path(
    tag = "equations",
    params(("network" = String, Path, description = "Network id or slug"), AtParams),
    responses((status = 200, description = "The version in force", body = EquationVersionOut), ReadErrors)
)]
#[get("/networks/{network}/equation")]
pub async fn get_equation_in_force(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<AtParams>,
) -> Result<web::Json<EquationVersionOut>, ApiError> {
    let key = path.into_inner();
    let at = query.0.at.map_or_else(now, |t| t.naive_utc());
    state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            accounting::settle(conn, &access.network.id, now())?;
            let current = current_version(conn, &access.network.id)?;
            let row = db::equations::in_force(conn, &access.network.id, at)?.ok_or_else(|| {
                ApiError::NotFound("no equation was in force at that date".into())
            })?;
            compile_body(&row.body)?;
            to_out(row, current)
        })
        .await
        .map(web::Json)
}

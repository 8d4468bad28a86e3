//! Importing history: contributions from CSV, first as a dry run that reports every bad row
//! with its line number, then all or nothing.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::contributions::{record, to_out, to_raw, ContributionIn, ContributionOut, MAX_BATCH};
use super::docs::WriteErrors;
use super::extract::{read_file_body, ApiQuery};
use super::{Access, AppState};
use crate::auth::Authenticated;
use crate::db::write_tx;
use crate::domain::contribution::RawContribution;
use crate::error::ApiError;

/// The CSV header the import expects (columns may come in any order; only `kind`,
/// `quantity`, `unit` and `occurred_at` are required).
pub const COLUMNS: &[&str] = &[
    "kind",
    "quantity",
    "unit",
    "occurred_at",
    "agent_id",
    "skill",
    "tags",
    "description",
    "evidence_url",
    "cites",
    "corrects",
];

/// Dry run or import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Check every row and write nothing (default true: an import must be asked for).
    pub dry_run: Option<bool>,
}

/// A bad row.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// Line number in the file (the header is line 1).
    pub line: usize,
    /// The column.
    pub field: String,
    /// What is wrong.
    pub detail: String,
}

/// The result of a dry run or an import.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportOut {
    /// Whether anything was written.
    pub dry_run: bool,
    /// Data rows read.
    pub rows: usize,
    /// Every bad row (a dry run lists them all; an import with any refuses everything).
    pub errors: Vec<RowError>,
    /// The imported contributions (an import without errors).
    pub imported: Vec<ContributionOut>,
}

enum Trial {
    Rollback,
    Failed(ApiError),
}

impl From<diesel::result::Error> for Trial {
    fn from(e: diesel::result::Error) -> Self {
        Trial::Failed(ApiError::from(e))
    }
}

impl From<ApiError> for Trial {
    fn from(e: ApiError) -> Self {
        Trial::Failed(e)
    }
}

/// A data row: its line number and the contribution, or what is wrong with it.
type Row = (usize, Result<ContributionIn, RowError>);

fn parse_rows(body: &[u8]) -> Result<Vec<Row>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::field("header", e.to_string()))?
        .clone();
    for h in &headers {
        if !COLUMNS.contains(&h) {
            return Err(ApiError::field(
                "header",
                format!("unknown column '{h}' (known: {})", COLUMNS.join(", ")),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        if out.len() >= MAX_BATCH {
            return Err(ApiError::field(
                "body",
                format!("at most {MAX_BATCH} rows per import"),
            ));
        }
        let row = match record {
            Ok(r) => r,
            Err(e) => {
                out.push((
                    line,
                    Err(RowError {
                        line,
                        field: "row".into(),
                        detail: e.to_string(),
                    }),
                ));
                continue;
            }
        };
        let mut obj = serde_json::Map::new();
        for (h, v) in headers.iter().zip(row.iter()) {
            if v.is_empty() {
                continue;
            }
            let value = if h == "tags" {
                serde_json::Value::Array(
                    v.split(';')
                        .map(|t| serde_json::Value::String(t.trim().to_owned()))
                        .collect(),
                )
            } else {
                serde_json::Value::String(v.to_owned())
            };
            obj.insert(h.to_owned(), value);
        }
        let parsed = super::extract::parse_json::<ContributionIn>(
            serde_json::Value::Object(obj).to_string().as_bytes(),
        )
        .map_err(|e| row_error(line, &e));
        out.push((line, parsed));
    }
    Ok(out)
}

fn row_error(line: usize, e: &ApiError) -> RowError {
    let p = e.problem();
    RowError {
        line,
        field: p.field.unwrap_or_else(|| "row".into()),
        detail: p.detail,
    }
}

/// Import contributions from CSV (stewards only: history is recorded on members' behalf).
/// `dry_run=true` (the default) checks every row and reports each bad one with its line;
/// `dry_run=false` imports all rows in one transaction, or none if any is bad.
#[utoipa::path(
    tag = "contributions",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug"), ImportParams),
    request_body(content = String, content_type = "text/csv", description = "kind,quantity,unit,occurred_at[,agent_id,skill,tags,description,evidence_url,cites,corrects]; tags separated by ';'"),
    responses(
        (status = 200, description = "Dry run (or an import refused for bad rows: nothing written)", body = ImportOut),
        (status = 201, description = "Imported", body = ImportOut),
        WriteErrors
    )
)]
#[post("/networks/{network}/imports/contributions")]
pub async fn import_contributions(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    path: web::Path<String>,
    query: ApiQuery<ImportParams>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_file_body(&req, payload, &["text/csv"]).await?;
    let dry_run = query.0.dry_run.unwrap_or(true);
    let rows = parse_rows(&body)?;
    if rows.is_empty() {
        return Err(ApiError::field("body", "has no data rows"));
    }
    let key = path.into_inner();
    let out = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, Some(caller.0))?;
            access.require_steward()?;
            let count = rows.len();
            let mut errors: Vec<RowError> = Vec::new();
            let mut good: Vec<(usize, RawContribution)> = Vec::new();
            for (line, parsed) in rows {
                match parsed {
                    Err(e) => errors.push(e),
                    Ok(c) => good.push((line, to_raw(c))),
                }
            }
            // Each well-formed row is tried against the database in a transaction that is
            // always rolled back, so the dry run finds every bad row, not just the first.
            for (line, raw) in &good {
                let trial = write_tx(conn, |c| -> Result<(), Trial> {
                    record(c, &key, caller.0, vec![raw.clone()], false)?;
                    Err(Trial::Rollback)
                });
                if let Err(Trial::Failed(e)) = trial {
                    errors.push(row_error(*line, &e));
                }
            }
            errors.sort_by_key(|e| e.line);
            if dry_run || !errors.is_empty() {
                return Ok::<_, ApiError>((
                    ImportOut {
                        dry_run: true,
                        rows: count,
                        errors,
                        imported: Vec::new(),
                    },
                    false,
                ));
            }
            let raws: Vec<RawContribution> = good.into_iter().map(|(_, r)| r).collect();
            let views = write_tx(conn, |c| record(c, &key, caller.0, raws, true))?;
            Ok((
                ImportOut {
                    dry_run: false,
                    rows: count,
                    errors,
                    imported: views.into_iter().map(to_out).collect(),
                },
                true,
            ))
        })
        .await?;
    let (out, written) = out;
    Ok(if written {
        HttpResponse::Created().json(out)
    } else {
        HttpResponse::Ok().json(out)
    })
}

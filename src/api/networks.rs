//! Networks: create (the creator becomes steward), list, read, update (stewards only).

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{
    decode_cursor, page_limit, paginate, stored_id, utc, Access, AppState, Page, PageParams,
};
use crate::auth::{Authenticated, Caller};
use crate::db::rows::{now, CurrencyRow, MembershipRow, NetworkRow};
use crate::db::{self, write_tx};
use crate::domain::bounded_text;
use crate::domain::ids::NetworkId;
use crate::domain::network::{
    parse_currencies, parse_threshold, Currency, JoinPolicy, Role, Slug, Visibility,
};
use crate::error::ApiError;

/// Longest network name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest network description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

/// A currency the network accounts in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencyDto {
    /// Upper-case code: ISO 4217 or a token symbol (2-12 of A-Z, 0-9).
    #[schema(example = "EUR")]
    pub code: String,
    /// Fraction digits (0-18): 2 for EUR, 8 for BTC, 18 for most ERC-20 tokens.
    #[schema(example = 2)]
    pub scale: i64,
}

/// A new network.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    /// Display name (1-100 characters).
    #[schema(example = "Open Fab Lab")]
    pub name: String,
    /// Unique URL-safe short name (3-64 of a-z, 0-9, '-'); usable in paths instead of the id.
    #[schema(example = "open-fab-lab")]
    pub slug: String,
    /// What the network is about (up to 4000 characters).
    #[serde(default)]
    pub description: String,
    /// Who may join; default `open`.
    #[serde(default = "default_join")]
    pub join_policy: JoinPolicy,
    /// Who may read; default `public`.
    #[serde(default = "default_visibility")]
    pub visibility: Visibility,
    /// Currencies for cash contributions (at most 16).
    #[serde(default)]
    pub currencies: Vec<CurrencyDto>,
    /// Approvals that validate a contribution (1-100); default 1.
    #[serde(default = "one")]
    pub approvals_required: i64,
    /// Rejections that reject a contribution (1-100); default 1.
    #[serde(default = "one")]
    pub rejections_required: i64,
}

fn default_join() -> JoinPolicy {
    JoinPolicy::Open
}
fn default_visibility() -> Visibility {
    Visibility::Public
}
fn one() -> i64 {
    1
}

/// Settings changes; absent fields stay as they are. Currencies can only be added: existing
/// ones may be in use by contributions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New join policy.
    pub join_policy: Option<JoinPolicy>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// Currencies to add.
    pub add_currencies: Option<Vec<CurrencyDto>>,
    /// New approval threshold (applies to contributions decided from now on).
    pub approvals_required: Option<i64>,
    /// New rejection threshold.
    pub rejections_required: Option<i64>,
}

/// A network.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NetworkOut {
    /// Network id.
    pub id: NetworkId,
    /// Unique short name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Who may join.
    pub join_policy: JoinPolicy,
    /// Who may read.
    pub visibility: Visibility,
    /// Currencies, by code.
    pub currencies: Vec<CurrencyDto>,
    /// Approvals that validate a contribution.
    pub approvals_required: i32,
    /// Rejections that reject a contribution.
    pub rejections_required: i32,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last settings change.
    pub updated_at: DateTime<Utc>,
}

fn to_out(row: NetworkRow, currencies: Vec<CurrencyRow>) -> NetworkOut {
    NetworkOut {
        id: stored_id(&row.id),
        join_policy: JoinPolicy::from_db(&row.join_policy).unwrap_or(JoinPolicy::Invite),
        visibility: Visibility::from_db(&row.visibility).unwrap_or(Visibility::Members),
        currencies: currencies
            .into_iter()
            .map(|c| CurrencyDto {
                code: c.code,
                scale: i64::from(c.scale),
            })
            .collect(),
        slug: row.slug,
        name: row.name,
        description: row.description,
        approvals_required: row.approvals_required,
        rejections_required: row.rejections_required,
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
    }
}

fn currency_rows(network_id: &str, list: Vec<Currency>) -> Result<Vec<CurrencyRow>, ApiError> {
    list.into_iter()
        .map(|c| {
            let scale = i32::try_from(c.scale)
                .map_err(|_| ApiError::field("currencies", "scale out of range"))?;
            Ok(CurrencyRow {
                network_id: network_id.to_owned(),
                code: c.code,
                scale,
            })
        })
        .collect()
}

fn raw_currencies(list: &[CurrencyDto]) -> Vec<(String, i64)> {
    list.iter().map(|c| (c.code.clone(), c.scale)).collect()
}

/// Create a network; the caller becomes its first steward.
#[utoipa::path(
    tag = "networks",
    security(("bearer" = [])),
    request_body = NetworkCreate,
    responses((status = 201, description = "The new network", body = NetworkOut), WriteErrors)
)]
#[post("/networks")]
pub async fn create_network(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<NetworkCreate>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let name = input.name.trim().to_owned();
    bounded_text("name", &name, 1, MAX_NAME_CHARS)?;
    let slug = Slug::parse("slug", &input.slug)?;
    bounded_text("description", &input.description, 0, MAX_DESCRIPTION_CHARS)?;
    let currencies = parse_currencies("currencies", &raw_currencies(&input.currencies))?;
    let approvals = parse_threshold("approvals_required", input.approvals_required)?;
    let rejections = parse_threshold("rejections_required", input.rejections_required)?;
    let id = NetworkId::generate().to_string();
    let at = now();
    let row = NetworkRow {
        id: id.clone(),
        slug: slug.as_str().to_owned(),
        name,
        description: input.description,
        join_policy: input.join_policy.as_str().into(),
        visibility: input.visibility.as_str().into(),
        approvals_required: approvals,
        rejections_required: rejections,
        created_at: at,
        updated_at: at,
    };
    let currency_rows = currency_rows(&id, currencies)?;
    let steward = MembershipRow {
        network_id: id.clone(),
        agent_id: caller.0.to_string(),
        role: Role::Steward.as_str().into(),
        joined_at: at,
    };
    let (stored, stored_currencies) = (row.clone(), currency_rows.clone());
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                if db::networks::slug_taken(conn, &stored.slug)? {
                    return Err(ApiError::Conflict(format!(
                        "slug '{}' is taken",
                        stored.slug
                    )));
                }
                if db::members::find_agent(conn, &steward.agent_id)?.is_none() {
                    return Err(ApiError::Unauthenticated(
                        "the token's agent no longer exists".into(),
                    ));
                }
                db::networks::insert(conn, &stored, &stored_currencies, &steward)?;
                let currencies: Vec<_> = stored_currencies.iter().map(|c| json!({ "code": c.code, "scale": c.scale })).collect();
                let body = json!({
                    "id": stored.id, "slug": stored.slug, "name": stored.name, "description": stored.description,
                    "join_policy": stored.join_policy, "visibility": stored.visibility,
                    "approvals_required": stored.approvals_required, "rejections_required": stored.rejections_required,
                    "currencies": currencies, "steward": steward.agent_id,
                });
                crate::journal::record(conn, &stored.id, Some(&steward.agent_id), "network.created", body)?;
                Ok(())
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(to_out(row, currency_rows)))
}

/// List the networks the caller can see: public ones, and members-only ones it belongs to.
#[utoipa::path(
    tag = "networks",
    params(PageParams),
    responses((status = 200, description = "A page of networks", body = Page<NetworkOut>), ReadErrors)
)]
#[get("/networks")]
pub async fn list_networks(
    state: web::Data<AppState>,
    caller: Caller,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<NetworkOut>>, ApiError> {
    let limit = page_limit(query.0.limit)?;
    let after = decode_cursor(query.0.cursor.as_deref())?;
    let viewer = caller.0.map(|a| a.to_string());
    let rows = state
        .db
        .run(move |conn| {
            let rows =
                db::networks::list_visible(conn, viewer.as_deref(), after.as_deref(), limit + 1)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let c = db::networks::currencies(conn, &r.id)?;
                out.push((r, c));
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    Ok(web::Json(paginate(
        rows,
        limit,
        |(r, _)| r.id.as_str(),
        |(r, c)| to_out(r, c),
    )))
}

/// Get a network by id or slug.
#[utoipa::path(
    tag = "networks",
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 200, description = "The network", body = NetworkOut), ReadErrors)
)]
#[get("/networks/{network}")]
pub async fn get_network(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<NetworkOut>, ApiError> {
    let key = path.into_inner();
    let (row, currencies) = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let c = db::networks::currencies(conn, &access.network.id)?;
            Ok::<_, ApiError>((access.network, c))
        })
        .await?;
    Ok(web::Json(to_out(row, currencies)))
}

/// Change a network's settings (stewards only).
#[utoipa::path(
    tag = "networks",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = NetworkUpdate,
    responses((status = 200, description = "The updated network", body = NetworkOut), WriteErrors)
)]
#[patch("/networks/{network}")]
pub async fn update_network(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<NetworkUpdate>,
) -> Result<web::Json<NetworkOut>, ApiError> {
    let input = body.0;
    let name = input.name.as_deref().map(str::trim).map(str::to_owned);
    if let Some(n) = &name {
        bounded_text("name", n, 1, MAX_NAME_CHARS)?;
    }
    if let Some(d) = &input.description {
        bounded_text("description", d, 0, MAX_DESCRIPTION_CHARS)?;
    }
    let added = parse_currencies(
        "add_currencies",
        &raw_currencies(input.add_currencies.as_deref().unwrap_or(&[])),
    )?;
    let approvals = input
        .approvals_required
        .map(|t| parse_threshold("approvals_required", t))
        .transpose()?;
    let rejections = input
        .rejections_required
        .map(|t| parse_threshold("rejections_required", t))
        .transpose()?;
    let key = path.into_inner();
    let (row, currencies) = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let mut row = access.network;
                let existing = db::networks::currencies(conn, &row.id)?;
                if let Some(dup) = added
                    .iter()
                    .find(|a| existing.iter().any(|e| e.code == a.code))
                {
                    return Err(ApiError::field(
                        "add_currencies",
                        format!("{} is already a currency of this network", dup.code),
                    ));
                }
                if existing.len() + added.len() > crate::domain::network::MAX_CURRENCIES {
                    return Err(ApiError::field(
                        "add_currencies",
                        "a network may have at most 16 currencies",
                    ));
                }
                let added_codes: Vec<String> = added.iter().map(|c| format!("{}:{}", c.code, c.scale)).collect();
                db::networks::add_currencies(conn, &currency_rows(&row.id, added)?)?;
                if let Some(n) = name {
                    row.name = n;
                }
                if let Some(d) = input.description {
                    row.description = d;
                }
                if let Some(j) = input.join_policy {
                    row.join_policy = j.as_str().into();
                }
                if let Some(v) = input.visibility {
                    row.visibility = v.as_str().into();
                }
                if let Some(a) = approvals {
                    row.approvals_required = a;
                }
                if let Some(r) = rejections {
                    row.rejections_required = r;
                }
                row.updated_at = now();
                db::networks::update(conn, &row)?;
                let body = json!({
                    "name": row.name, "description": row.description, "join_policy": row.join_policy,
                    "visibility": row.visibility, "approvals_required": row.approvals_required,
                    "rejections_required": row.rejections_required, "added_currencies": added_codes,
                });
                crate::journal::record(conn, &row.id, Some(&caller.0.to_string()), "network.updated", body)?;
                let currencies = db::networks::currencies(conn, &row.id)?;
                Ok((row, currencies))
            })
        })
        .await?;
    Ok(web::Json(to_out(row, currencies)))
}

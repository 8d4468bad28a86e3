//! Agents: register (no network needed), read and edit one's own profile.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::{ReadErrors, WriteErrors};
use super::extract::ApiJson;
use super::{stored_id, utc, AppState};
use crate::auth::keys::{hash_secret, new_api_key};
use crate::auth::Authenticated;
use crate::db::rows::{now, AgentRow, ApiKeyRow};
use crate::db::{self, write_tx};
use crate::domain::ids::AgentId;
use crate::domain::wallet::WalletAddress;
use crate::domain::{bounded_text, FieldError};
use crate::error::ApiError;

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A new agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentCreate {
    /// How the agent is shown to others (1-100 characters).
    #[schema(example = "Ada")]
    pub display_name: String,
    /// Optional Ethereum address; EIP-55 checksummed or all lowercase.
    #[schema(example = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")]
    pub wallet_address: Option<String>,
}

/// Profile changes; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdate {
    /// New display name.
    pub display_name: Option<String>,
    /// New wallet address.
    pub wallet_address: Option<String>,
}

/// An agent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentOut {
    /// Agent id.
    pub id: AgentId,
    /// Display name.
    pub display_name: String,
    /// EIP-55 checksummed wallet address, if recorded.
    pub wallet_address: Option<String>,
    /// When the agent was created.
    pub created_at: DateTime<Utc>,
}

/// A newly created agent and its API key, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentCreated {
    /// The agent.
    pub agent: AgentOut,
    /// The API key: store it now, it is never shown again.
    pub api_key: String,
}

impl From<AgentRow> for AgentOut {
    fn from(r: AgentRow) -> Self {
        Self {
            id: stored_id(&r.id),
            display_name: r.display_name,
            wallet_address: r.wallet_address,
            created_at: utc(r.created_at),
        }
    }
}

/// Checks a display name.
pub fn parse_display_name(field: &str, raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    bounded_text(field, trimmed, 1, MAX_NAME_CHARS)?;
    Ok(trimmed.to_owned())
}

/// Builds a new agent row and its key row; returns them with the clear-text key.
pub fn new_agent(
    display_name: String,
    wallet: Option<WalletAddress>,
) -> (AgentRow, ApiKeyRow, String) {
    let id = AgentId::generate().to_string();
    let key = new_api_key();
    let created_at = now();
    let agent = AgentRow {
        id: id.clone(),
        display_name,
        wallet_address: wallet.map(|w| w.as_str().to_owned()),
        created_at,
    };
    let key_row = ApiKeyRow {
        key_hash: hash_secret(&key),
        agent_id: id,
        created_at,
    };
    (agent, key_row, key)
}

/// Register an agent (a person, organisation or bot) and get its API key.
///
/// No network is needed: the agent can then create a network or join open ones.
#[utoipa::path(
    tag = "agents",
    request_body = AgentCreate,
    responses((status = 201, description = "The agent and its API key (shown once)", body = AgentCreated), WriteErrors)
)]
#[post("/agents")]
pub async fn create_agent(
    state: web::Data<AppState>,
    body: ApiJson<AgentCreate>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let name = parse_display_name("display_name", &input.display_name)?;
    let wallet = input
        .wallet_address
        .as_deref()
        .map(|w| WalletAddress::parse("wallet_address", w))
        .transpose()?;
    let (agent, key_row, api_key) = new_agent(name, wallet);
    let stored = agent.clone();
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                db::members::insert_agent(conn, &stored, &key_row).map_err(ApiError::from)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(AgentCreated {
        agent: agent.into(),
        api_key,
    }))
}

/// The caller's own agent.
#[utoipa::path(
    tag = "agents",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = AgentOut), ReadErrors)
)]
#[get("/agents/me")]
pub async fn get_me(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<web::Json<AgentOut>, ApiError> {
    let id = caller.0.to_string();
    let row = state
        .db
        .run(move |conn| db::members::find_agent(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::NotFound("the token's agent no longer exists".into()))?;
    Ok(web::Json(row.into()))
}

/// Change the caller's display name or wallet address.
#[utoipa::path(
    tag = "agents",
    security(("bearer" = [])),
    request_body = AgentUpdate,
    responses((status = 200, description = "The updated agent", body = AgentOut), WriteErrors)
)]
#[patch("/agents/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<AgentUpdate>,
) -> Result<web::Json<AgentOut>, ApiError> {
    let input = body.0;
    let name = input
        .display_name
        .as_deref()
        .map(|n| parse_display_name("display_name", n))
        .transpose()?;
    let wallet = input
        .wallet_address
        .as_deref()
        .map(|w| WalletAddress::parse("wallet_address", w))
        .transpose()?;
    let id = caller.0.to_string();
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let mut agent = db::members::find_agent(conn, &id)?.ok_or_else(|| {
                    ApiError::NotFound("the token's agent no longer exists".into())
                })?;
                if let Some(n) = name {
                    agent.display_name = n;
                }
                if let Some(w) = wallet {
                    agent.wallet_address = Some(w.as_str().to_owned());
                }
                db::members::update_agent(conn, &agent)?;
                Ok::<_, ApiError>(agent)
            })
        })
        .await?;
    Ok(web::Json(row.into()))
}

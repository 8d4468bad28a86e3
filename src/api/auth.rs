//! `POST /v1/auth/token`: an API key for a short-lived access token.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::WriteErrors;
use super::extract::ApiJson;
use super::AppState;
use crate::auth::keys::hash_secret;
use crate::db;
use crate::error::ApiError;

/// An API key to exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The API key shown once when the agent was created.
    #[schema(example = "hol_3q2-7wJ0sVd0m4lK8cWc5m3Zp1fBq9yXn2uA6hT0eRk")]
    pub api_key: String,
}

/// An access token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until it expires.
    #[schema(example = 900)]
    pub expires_in: i64,
}

/// Exchange an API key for an access token.
#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, description = "A new access token", body = TokenResponse), WriteErrors)
)]
#[post("/auth/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    body: ApiJson<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = body.0.api_key;
    if key.len() > 200 {
        return Err(ApiError::field("api_key", "must be at most 200 characters"));
    }
    let hash = hash_secret(&key);
    let agent = state
        .db
        .run(move |conn| db::members::agent_for_key(conn, &hash).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("unknown API key".into()))?;
    let agent = agent
        .parse()
        .map_err(|_| ApiError::Internal("stored agent id is not a UUID".into()))?;
    let (access_token, expires_in) = state.keys.issue(agent).map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in,
    }))
}

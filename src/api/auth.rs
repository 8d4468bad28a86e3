//! Access tokens: `POST /v1/auth/token` takes an API key; Sign-In with Ethereum (EIP-4361)
//! takes a wallet's signature over a message carrying a single-use nonce of ours.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString as _};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::docs::WriteErrors;
use super::extract::ApiJson;
use super::AppState;
use crate::auth::extract::SESSION_COOKIE;
use crate::auth::keys::hash_secret;
use crate::db::rows::{now, SiweNonceRow};
use crate::db::{self, write_tx};
use crate::domain::ids::AgentId;
use crate::domain::siwe::{recover_signer, SiweMessage};
use crate::error::ApiError;

/// How long a sign-in nonce stays usable, in seconds.
pub const NONCE_TTL_SECS: i64 = 600;
/// Clock skew tolerated between the wallet and the service, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 300;

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
    let agent = agent_by_api_key(&state, body.0.api_key).await?;
    token_response(&state, agent)
}

fn token_response(state: &AppState, agent: AgentId) -> Result<HttpResponse, ApiError> {
    let (access_token, expires_in) = state.keys.issue(agent).map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in,
    }))
}

/// The agent an API key belongs to (401 for an unknown key).
async fn agent_by_api_key(state: &AppState, key: String) -> Result<AgentId, ApiError> {
    if key.len() > 200 {
        return Err(ApiError::field("api_key", "must be at most 200 characters"));
    }
    let hash = hash_secret(&key);
    let agent = state
        .db
        .run(move |conn| db::members::agent_for_key(conn, &hash).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("unknown API key".into()))?;
    agent
        .parse()
        .map_err(|_| ApiError::Internal("stored agent id is not a UUID".into()))
}

/// A nonce to put in a Sign-In with Ethereum message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SiweNonce {
    /// Put this in the message's `Nonce:` field; it is accepted once.
    #[schema(example = "q7Z3mK8pW2xR5tLb")]
    pub nonce: String,
    /// The nonce is refused after this.
    pub expires_at: DateTime<Utc>,
    /// The domain the message must name, when the service has one configured (otherwise the
    /// host the request was sent to).
    pub domain: Option<String>,
    /// Chain ids the message may name.
    pub chain_ids: Vec<u64>,
}

/// A signed EIP-4361 message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiweLogin {
    /// The exact message the wallet signed.
    pub message: String,
    /// The EIP-191 `personal_sign` signature: 0x and 65 bytes in hex.
    #[schema(
        example = "0x28e4a475a17946f68b44b143b6aea2747db4905d81c86d597a12e1ba916e4d80265f04dade6f33de8ca552b45a9fb94a9bf3ddf3f3979912c44e03ae19aafa6d1b"
    )]
    pub signature: String,
}

/// Get a single-use nonce for Sign-In with Ethereum.
#[utoipa::path(
    tag = "auth",
    responses((status = 201, description = "A new nonce", body = SiweNonce), WriteErrors)
)]
#[post("/auth/siwe/nonce")]
pub async fn create_siwe_nonce(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let created_at = now();
    let row = SiweNonceRow {
        nonce: Alphanumeric.sample_string(&mut rand::thread_rng(), 16),
        created_at,
        expires_at: created_at + chrono::Duration::seconds(NONCE_TTL_SECS),
        used_at: None,
    };
    let out = SiweNonce {
        nonce: row.nonce.clone(),
        expires_at: super::utc(row.expires_at),
        domain: state.siwe_domain.clone(),
        chain_ids: state.siwe_chains.clone(),
    };
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                Ok::<_, ApiError>(db::siwe::insert_nonce(conn, &row)?)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// Sign in with an Ethereum wallet (EIP-4361): the message must name this service's domain,
/// an accepted chain id and a nonce from `POST /v1/auth/siwe/nonce` (used once, within ten
/// minutes), be inside its validity window, and be signed by its address, which must be an
/// agent's recorded wallet address. Answers the same access token as an API key does.
#[utoipa::path(
    tag = "auth",
    request_body = SiweLogin,
    responses((status = 200, description = "A new access token", body = TokenResponse), WriteErrors)
)]
#[post("/auth/siwe")]
pub async fn siwe_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ApiJson<SiweLogin>,
) -> Result<HttpResponse, ApiError> {
    let SiweLogin { message, signature } = body.0;
    let agent = agent_by_siwe(&req, &state, message, signature).await?;
    token_response(&state, agent)
}

/// The agent whose recorded wallet signed `message` (EIP-4361), after every check of the
/// message, the domain, the chain, the validity window and the single-use nonce.
async fn agent_by_siwe(
    req: &HttpRequest,
    state: &AppState,
    message: String,
    signature: String,
) -> Result<AgentId, ApiError> {
    let parsed = SiweMessage::parse(&message)?;
    let signer = recover_signer(&message, &signature)?;
    let refuse = |why: String| Err(ApiError::Unauthenticated(why));
    if signer != parsed.address {
        return refuse("the signature was not made by the message's address".into());
    }
    let domain = match &state.siwe_domain {
        Some(d) => d.clone(),
        None => req.connection_info().host().to_owned(),
    };
    if parsed.domain != domain {
        return refuse(format!(
            "the message is for domain '{}', not '{domain}'",
            parsed.domain
        ));
    }
    if !state.siwe_chains.contains(&parsed.chain_id) {
        return refuse(format!("chain id {} is not accepted here", parsed.chain_id));
    }
    let at = now();
    let at_utc = super::utc(at);
    let skew = chrono::Duration::seconds(CLOCK_SKEW_SECS);
    if parsed.expiration_time.is_some_and(|t| t <= at_utc) {
        return refuse("the message has expired".into());
    }
    if parsed.not_before.is_some_and(|t| t > at_utc + skew) {
        return refuse("the message is not valid yet".into());
    }
    if parsed.issued_at > at_utc + skew {
        return refuse("the message was issued in the future".into());
    }
    let address = parsed.address.as_str().to_owned();
    let agent = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let stored = db::siwe::find_nonce(conn, &parsed.nonce)?.ok_or_else(|| {
                    ApiError::Unauthenticated("the nonce was not issued by this service".into())
                })?;
                if stored.used_at.is_some() {
                    return Err(ApiError::Unauthenticated("the nonce was already used".into()));
                }
                if super::utc(stored.created_at) > parsed.issued_at + skew {
                    return Err(ApiError::Unauthenticated(
                        "the message was issued before its nonce".into(),
                    ));
                }
                if !db::siwe::use_nonce(conn, &parsed.nonce, at)? {
                    return Err(ApiError::Unauthenticated(
                        "the nonce has expired or was already used".into(),
                    ));
                }
                Ok(())
            })?;
            // The nonce is spent (committed) whatever the lookup finds.
            let agents = db::siwe::agents_with_wallet(conn, &address)?;
                match agents.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err(ApiError::Unauthenticated(format!(
                        "no agent has {address} as its wallet address"
                    ))),
                    _ => Err(ApiError::Conflict(format!(
                        "several agents have {address} as their wallet address; sign in with an API key"
                    ))),
                }
        })
        .await?;
    agent
        .parse()
        .map_err(|_| ApiError::Internal("stored agent id is not a UUID".into()))
}

/// How to open a dashboard session: an API key, or a signed Sign-In with Ethereum message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// An API key (or give `message` and `signature` instead).
    pub api_key: Option<String>,
    /// An EIP-4361 message signed by a member's wallet (with `signature`).
    pub message: Option<String>,
    /// The `personal_sign` signature of `message`.
    pub signature: Option<String>,
}

/// An open session. Writes with the session cookie send `csrf_token` in `X-CSRF-Token`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionOut {
    /// The signed-in agent.
    pub agent_id: AgentId,
    /// Send as `X-CSRF-Token` with every write made with the session cookie.
    pub csrf_token: String,
}

/// Open a browser session (the dashboard's sign-in): answers a `holoptic_session` cookie
/// (HttpOnly, SameSite=Strict, Secure unless configured off) holding an access token that
/// lives `HOLOPTIC_SESSION_TTL_SECS`. Requests without `Authorization` are then made as the
/// agent; writes also need the answered CSRF token in `X-CSRF-Token`.
#[utoipa::path(
    tag = "auth",
    request_body = SessionRequest,
    responses((status = 201, description = "Signed in; the cookie is set", body = SessionOut), WriteErrors)
)]
#[post("/auth/session")]
pub async fn create_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ApiJson<SessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent = match body.0 {
        SessionRequest {
            api_key: Some(key),
            message: None,
            signature: None,
        } => agent_by_api_key(&state, key).await?,
        SessionRequest {
            api_key: None,
            message: Some(message),
            signature: Some(signature),
        } => agent_by_siwe(&req, &state, message, signature).await?,
        SessionRequest {
            api_key: None,
            message: Some(_),
            signature: None,
        } => return Err(ApiError::field("signature", "is required with message")),
        SessionRequest { api_key: None, .. } => {
            return Err(ApiError::field(
                "api_key",
                "give an API key, or a signed message and its signature",
            ))
        }
        SessionRequest {
            api_key: Some(_), ..
        } => {
            return Err(ApiError::field(
                "api_key",
                "give an API key or a signed message, not both",
            ))
        }
    };
    let (token, ttl) = state
        .keys
        .issue_for(agent, state.session_ttl_secs)
        .map_err(ApiError::Internal)?;
    let out = SessionOut {
        agent_id: agent,
        csrf_token: state.keys.csrf_token(&token),
    };
    let mut cookie = session_cookie(&state, token);
    cookie.set_max_age(CookieAge::seconds(ttl));
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .json(out))
}

/// The session the request's cookie holds, with its CSRF token (401 without a live one).
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "The open session", body = SessionOut), (status = 401, description = "No session, or it has ended", body = crate::error::Problem, content_type = "application/problem+json"))
)]
#[get("/auth/session")]
pub async fn get_session(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let cookie = req
        .cookie(SESSION_COOKIE)
        .ok_or_else(|| ApiError::Unauthenticated("not signed in".into()))?;
    let agent = state
        .keys
        .verify(cookie.value())
        .map_err(|why| ApiError::Unauthenticated(format!("the session has ended ({why})")))?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(SessionOut {
            agent_id: agent,
            csrf_token: state.keys.csrf_token(cookie.value()),
        }))
}

/// Sign out: the session cookie is removed from the browser.
#[utoipa::path(
    tag = "auth",
    responses((status = 204, description = "Signed out"))
)]
#[delete("/auth/session")]
pub async fn delete_session(state: web::Data<AppState>) -> HttpResponse {
    let mut cookie = session_cookie(&state, String::new());
    cookie.make_removal();
    HttpResponse::NoContent().cookie(cookie).finish()
}

/// The session cookie: for the whole site, out of scripts' reach, never sent cross-site.
fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Strict)
        .finish()
}

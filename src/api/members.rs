//! Membership: joining (self-service for open networks, by invite otherwise), listing,
//! roles and invites.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::agents::{new_agent, parse_display_name};
use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{
    decode_cursor, page_limit, paginate, path_uuid, stored_id, utc, Access, AppState, Page,
    PageParams,
};
use crate::auth::keys::{hash_secret, new_invite_code};
use crate::auth::{Authenticated, Caller};
use crate::db::rows::{now, AgentRow, InviteRow, MembershipRow};
use crate::db::{self, write_tx};
use crate::domain::ids::{AgentId, NetworkId};
use crate::domain::network::{JoinPolicy, Role};
use crate::domain::wallet::WalletAddress;
use crate::error::ApiError;

/// Default invite lifetime, in hours (a week).
pub const DEFAULT_INVITE_HOURS: i64 = 168;
/// Longest invite lifetime, in hours (30 days).
pub const MAX_INVITE_HOURS: i64 = 720;

/// A request to join a network. Without a bearer token a new agent is created (give its
/// `display_name`) and its API key returned once; with a token the caller joins.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Display name of the new agent (required without a token; not allowed with one).
    #[schema(example = "Grace")]
    pub display_name: Option<String>,
    /// Wallet address of the new agent (without a token only).
    pub wallet_address: Option<String>,
    /// Invite code from a steward; required for `invite` networks.
    pub invite_code: Option<String>,
}

/// The result of joining.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinResponse {
    /// The network joined.
    pub network_id: NetworkId,
    /// The member.
    pub agent_id: AgentId,
    /// The role granted.
    pub role: Role,
    /// The new agent's API key, shown this once (only when joining without a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// A member of a network.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberOut {
    /// Agent id.
    pub agent_id: AgentId,
    /// Display name.
    pub display_name: String,
    /// Wallet address, if recorded.
    pub wallet_address: Option<String>,
    /// Role in this network.
    pub role: Role,
    /// When the agent joined.
    pub joined_at: DateTime<Utc>,
    /// The member's identities in tools the network's history was imported from (e.g.
    /// SourceCred identity ids and aliases). Only in the single-member read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<MemberAlias>>,
}

/// An identity of a member in another tool.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberAlias {
    /// `sourcecred-identity` or `sourcecred-alias`.
    pub source: String,
    /// The identity there.
    pub alias: String,
    /// Its description there.
    pub description: String,
}

/// A role change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    /// The new role.
    pub role: Role,
}

/// A new invite.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteCreate {
    /// Role the invitee gets; default `member`.
    #[serde(default = "member")]
    pub role: Role,
    /// Hours until the invite expires (1-720, default 168).
    #[serde(default = "week")]
    pub expires_in_hours: i64,
}

fn member() -> Role {
    Role::Member
}
fn week() -> i64 {
    DEFAULT_INVITE_HOURS
}

/// An invite code, shown once; single use.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InviteOut {
    /// Give this to the invitee; it is stored only as a hash.
    pub code: String,
    /// Role it grants.
    pub role: Role,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

fn to_out(m: MembershipRow, a: AgentRow) -> MemberOut {
    MemberOut {
        agent_id: stored_id(&a.id),
        display_name: a.display_name,
        wallet_address: a.wallet_address,
        role: Role::from_db(&m.role).unwrap_or(Role::Member),
        joined_at: utc(m.joined_at),
        aliases: None,
    }
}

/// Join a network.
///
/// Open networks: anyone may join as `member`. Invite networks: an `invite_code` is needed,
/// and grants the role it was made for.
#[utoipa::path(
    tag = "members",
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = JoinRequest,
    responses((status = 201, description = "Joined", body = JoinResponse), WriteErrors)
)]
#[post("/networks/{network}/members")]
pub async fn join_network(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<JoinRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let new = match caller.0 {
        Some(_) => {
            if input.display_name.is_some() || input.wallet_address.is_some() {
                return Err(ApiError::field(
                    "display_name",
                    "only when joining without a token (a new agent); edit your profile at /v1/agents/me",
                ));
            }
            None
        }
        None => {
            let name = input.display_name.as_deref().ok_or_else(|| {
                ApiError::field("display_name", "is required when joining without a token")
            })?;
            let name = parse_display_name("display_name", name)?;
            let wallet = input
                .wallet_address
                .as_deref()
                .map(|w| WalletAddress::parse("wallet_address", w))
                .transpose()?;
            Some(new_agent(name, wallet))
        }
    };
    if input.invite_code.as_ref().is_some_and(|c| c.len() > 200) {
        return Err(ApiError::field(
            "invite_code",
            "must be at most 200 characters",
        ));
    }
    let key = path.into_inner();
    let invite_hash = input.invite_code.as_deref().map(hash_secret);
    let (network_id, agent_id, role, api_key) = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let network = db::networks::find(conn, &key)?
                    .ok_or_else(|| ApiError::NotFound(format!("no network '{key}'")))?;
                let (agent_id, api_key) = match (caller.0, new) {
                    (Some(agent), _) => {
                        let id = agent.to_string();
                        if db::members::find_agent(conn, &id)?.is_none() {
                            return Err(ApiError::Unauthenticated(
                                "the token's agent no longer exists".into(),
                            ));
                        }
                        if db::members::membership(conn, &network.id, &id)?.is_some() {
                            return Err(ApiError::Conflict(
                                "already a member of this network".into(),
                            ));
                        }
                        (id, None)
                    }
                    (None, Some((agent, key_row, clear))) => {
                        db::members::insert_agent(conn, &agent, &key_row)?;
                        (agent.id, Some(clear))
                    }
                    (None, None) => return Err(ApiError::Internal("join without agent".into())),
                };
                let at = now();
                let role = match (JoinPolicy::from_db(&network.join_policy), &invite_hash) {
                    (_, Some(hash)) => {
                        let invite =
                            db::members::take_invite(conn, &network.id, hash, &agent_id, at)?
                                .ok_or_else(|| {
                                    ApiError::Forbidden(
                                        "the invite code is unknown, used or expired".into(),
                                    )
                                })?;
                        Role::from_db(&invite.role).unwrap_or(Role::Member)
                    }
                    (Some(JoinPolicy::Open), None) => Role::Member,
                    _ => {
                        return Err(ApiError::Forbidden(
                            "this network is invite-only: an invite_code is required".into(),
                        ))
                    }
                };
                db::members::insert_membership(
                    conn,
                    &MembershipRow {
                        network_id: network.id.clone(),
                        agent_id: agent_id.clone(),
                        role: role.as_str().into(),
                        joined_at: at,
                    },
                )?;
                let body = json!({ "agent_id": agent_id, "role": role.as_str(), "by_invite": invite_hash.is_some(), "new_agent": api_key.is_some() });
                crate::journal::record(conn, &network.id, Some(&agent_id), "member.joined", body)?;
                Ok((network.id, agent_id, role, api_key))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(JoinResponse {
        network_id: stored_id(&network_id),
        agent_id: stored_id(&agent_id),
        role,
        api_key,
    }))
}

/// List a network's members.
#[utoipa::path(
    tag = "members",
    params(("network" = String, Path, description = "Network id or slug"), PageParams),
    responses((status = 200, description = "A page of members", body = Page<MemberOut>), ReadErrors)
)]
#[get("/networks/{network}/members")]
pub async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<PageParams>,
) -> Result<web::Json<Page<MemberOut>>, ApiError> {
    let limit = page_limit(query.0.limit)?;
    let after = decode_cursor(query.0.cursor.as_deref())?;
    let key = path.into_inner();
    let rows = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            Ok::<_, ApiError>(db::members::list_members(
                conn,
                &access.network.id,
                after.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    Ok(web::Json(paginate(
        rows,
        limit,
        |(m, _)| m.agent_id.as_str(),
        |(m, a)| to_out(m, a),
    )))
}

/// Get one member.
#[utoipa::path(
    tag = "members",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("agent_id" = String, Path, description = "Agent id"),
    ),
    responses((status = 200, description = "The member", body = MemberOut), ReadErrors)
)]
#[get("/networks/{network}/members/{agent_id}")]
pub async fn get_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<MemberOut>, ApiError> {
    let (key, agent) = path.into_inner();
    let agent = path_uuid("agent_id", &agent)?;
    let (m, a, aliases) = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let (m, a) = db::members::member(conn, &access.network.id, &agent)?
                .ok_or_else(|| ApiError::NotFound("no such member".into()))?;
            let aliases = db::history::aliases(conn, &access.network.id, &agent)?;
            Ok::<_, ApiError>((m, a, aliases))
        })
        .await?;
    let mut out = to_out(m, a);
    out.aliases = Some(
        aliases
            .into_iter()
            .map(|r| MemberAlias {
                source: r.source,
                alias: r.alias,
                description: r.description,
            })
            .collect(),
    );
    Ok(web::Json(out))
}

/// Change a member's role (stewards only). The last steward cannot step down.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("agent_id" = String, Path, description = "Agent id"),
    ),
    request_body = MemberUpdate,
    responses((status = 200, description = "The member", body = MemberOut), WriteErrors)
)]
#[patch("/networks/{network}/members/{agent_id}")]
pub async fn update_member(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<MemberUpdate>,
) -> Result<web::Json<MemberOut>, ApiError> {
    let (key, agent) = path.into_inner();
    let agent = path_uuid("agent_id", &agent)?;
    let role = body.0.role;
    let (m, a) = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let network = access.network.id;
                let (current, _) = db::members::member(conn, &network, &agent)?
                    .ok_or_else(|| ApiError::NotFound("no such member".into()))?;
                if current.role == Role::Steward.as_str()
                    && role != Role::Steward
                    && db::members::count_stewards(conn, &network)? <= 1
                {
                    return Err(ApiError::Conflict(
                        "a network needs at least one steward".into(),
                    ));
                }
                db::members::set_role(conn, &network, &agent, role.as_str())?;
                let body = json!({ "agent_id": agent, "from": current.role, "to": role.as_str() });
                crate::journal::record(
                    conn,
                    &network,
                    Some(&caller.0.to_string()),
                    "member.role_changed",
                    body,
                )?;
                db::members::member(conn, &network, &agent)?
                    .ok_or_else(|| ApiError::NotFound("no such member".into()))
            })
        })
        .await?;
    Ok(web::Json(to_out(m, a)))
}

/// Create a single-use invite (stewards only).
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = InviteCreate,
    responses((status = 201, description = "The invite code (shown once)", body = InviteOut), WriteErrors)
)]
#[post("/networks/{network}/invites")]
pub async fn create_invite(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<InviteCreate>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    if !(1..=MAX_INVITE_HOURS).contains(&input.expires_in_hours) {
        return Err(ApiError::field(
            "expires_in_hours",
            format!("must be 1 to {MAX_INVITE_HOURS}"),
        ));
    }
    let code = new_invite_code();
    let at = now();
    let expires_at = at + Duration::hours(input.expires_in_hours);
    let key = path.into_inner();
    let code_hash = hash_secret(&code);
    let role = input.role;
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let access = Access::load(conn, &key, Some(caller.0))?;
                access.require_steward()?;
                let body = json!({ "role": role.as_str(), "expires_at": utc(expires_at) });
                crate::journal::record(
                    conn,
                    &access.network.id,
                    Some(&caller.0.to_string()),
                    "invite.created",
                    body,
                )?;
                db::members::insert_invite(
                    conn,
                    &InviteRow {
                        code_hash,
                        network_id: access.network.id,
                        role: role.as_str().into(),
                        created_by: caller.0.to_string(),
                        created_at: at,
                        expires_at,
                        used_by: None,
                        used_at: None,
                    },
                )?;
                Ok::<_, ApiError>(())
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(InviteOut {
        code,
        role,
        expires_at: utc(expires_at),
    }))
}

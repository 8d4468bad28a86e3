//! HTTP only: one file per resource, small `verb_noun` handlers. Handlers parse input into
//! domain types, run one closure on the database (one transaction for writes), and map the
//! result to DTOs. Every handler is registered once, in [`configure`], which also feeds the
//! OpenAPI document.

pub mod agents;
pub mod auth;
pub mod contributions;
pub mod distributions;
pub mod docs;
pub mod equations;
pub mod exports;
pub mod extract;
pub mod health;
pub mod imports;
pub mod journal;
pub mod members;
pub mod middleware;
pub mod networks;
pub mod proposals;
pub mod shares;
pub mod snapshot;
pub mod sourcecred;
pub mod tokens;
pub mod validations;
pub mod valueflows;
pub mod webhooks;

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::TokenKeys;
use crate::db::rows::NetworkRow;
use crate::db::{self, AnyConnection, Db};
use crate::domain::ids::AgentId;
use crate::domain::network::{Role, Visibility};
use crate::error::ApiError;

/// Default page size.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest page size.
pub const MAX_PAGE: i64 = 200;

/// What every handler shares.
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Token signing and verification keys.
    pub keys: Arc<TokenKeys>,
    /// The journal checkpoint signing key.
    pub signer: Arc<crate::journal::CheckpointSigner>,
    /// Sign-In with Ethereum: the domain messages must name (None: the request's `Host`) and
    /// the accepted chain ids.
    pub siwe_domain: Option<String>,
    /// Accepted EIP-155 chain ids.
    pub siwe_chains: Vec<u64>,
    /// Whether webhook URLs may be plain `http://`.
    pub webhook_allow_http: bool,
    /// An in-progress idempotency key older than this belongs to a request whose process
    /// died: a retry retakes it.
    pub idempotency_stale: chrono::Duration,
    /// Lifetime of a dashboard session, in seconds.
    pub session_ttl_secs: i64,
    /// Whether the session cookie is `Secure`.
    pub cookie_secure: bool,
    /// The shares tables last computed, per network.
    pub shares: Arc<shares::SharesCache>,
    /// The networks single contribution writes found, by the path segment that named them.
    pub network_ids: Arc<contributions::NetworkIds>,
    /// Single contribution writes on PostgreSQL, gathered into one statement when they
    /// arrive together.
    pub member_writes: Arc<crate::db::gather::Gather<crate::db::as_member::MemberWrite>>,
}

/// Registers every `/v1` handler (and so every documented path).
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(auth::create_token)
        .service(auth::create_siwe_nonce)
        .service(auth::siwe_login)
        .service(auth::create_session)
        .service(auth::get_session)
        .service(auth::delete_session)
        .service(agents::create_agent)
        .service(agents::get_me)
        .service(agents::update_me)
        .service(networks::create_network)
        .service(networks::list_networks)
        .service(networks::get_network)
        .service(networks::update_network)
        .service(members::join_network)
        .service(members::list_members)
        .service(members::get_member)
        .service(members::update_member)
        .service(members::create_invite)
        .service(contributions::create_contribution)
        .service(contributions::create_contribution_batch)
        .service(contributions::list_contributions)
        .service(contributions::get_contribution)
        .service(imports::import_contributions)
        .service(sourcecred::import_sourcecred)
        .service(validations::create_validation)
        .service(validations::list_validations)
        .service(validations::list_validations_by)
        .service(equations::list_presets)
        .service(equations::list_equations)
        .service(equations::get_equation)
        .service(equations::get_equation_in_force)
        .service(proposals::create_proposal)
        .service(proposals::list_proposals)
        .service(proposals::get_proposal)
        .service(proposals::create_vote)
        .service(proposals::fast_track)
        .service(proposals::what_if)
        .service(distributions::create_income)
        .service(distributions::list_income)
        .service(distributions::preview_distribution)
        .service(distributions::commit_distribution)
        .service(distributions::list_distributions)
        .service(distributions::get_distribution)
        .service(distributions::verify_distribution)
        .service(distributions::mark_paid)
        .service(exports::export_distribution)
        .service(snapshot::snapshot_scores)
        .service(valueflows::export_valueflows)
        .service(shares::list_shares)
        .service(shares::get_share)
        .service(tokens::create_token)
        .service(tokens::get_token)
        .service(tokens::get_balance)
        .service(tokens::list_entries)
        .service(tokens::list_holders)
        .service(tokens::create_transfer)
        .service(tokens::create_departure)
        .service(tokens::check_ledger)
        .service(journal::list_journal)
        .service(journal::verify_journal)
        .service(journal::create_checkpoint)
        .service(journal::list_checkpoints)
        .service(journal::get_signing_key)
        .service(webhooks::create_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::delete_webhook)
        .service(webhooks::list_deliveries);
}

/// Paging, for every list that takes nothing else.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A date to read at.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AtParams {
    /// The date (RFC 3339; default now).
    pub at: Option<DateTime<Utc>>,
}

/// A page of results and the cursor of the next one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items, at most `limit`.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Checks a requested page size.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field("limit", format!("must be 1 to {MAX_PAGE}"))),
    }
}

/// Decodes an opaque cursor back to the id it carries.
pub fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(c) = cursor else { return Ok(None) };
    let bad = || ApiError::field("cursor", "is not a cursor this service issued");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    uuid::Uuid::parse_str(&text).map_err(|_| bad())?;
    Ok(Some(text))
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
pub fn paginate<R, T: ToSchema>(
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> &str,
    map: impl Fn(R) -> T,
) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last()
            .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(r)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor,
    }
}

/// A network as the caller may see it: the row and the caller's role there, if any.
pub struct Access {
    /// The network.
    pub network: NetworkRow,
    /// The caller's role, if a member.
    pub role: Option<Role>,
}

impl Access {
    /// Loads network `key` (id or slug) and the caller's role, and checks read access:
    /// public networks are readable by anyone; members-only networks by members only.
    pub fn load(
        conn: &mut AnyConnection,
        key: &str,
        caller: Option<AgentId>,
    ) -> Result<Self, ApiError> {
        let missing = || ApiError::NotFound(format!("no network '{key}'"));
        let (network, role) = match caller {
            Some(agent) => {
                let (network, role) = db::networks::find_with_role(conn, key, &agent.to_string())?
                    .ok_or_else(missing)?;
                (network, role.as_deref().and_then(Role::from_db))
            }
            None => (db::networks::find(conn, key)?.ok_or_else(missing)?, None),
        };
        let access = Self { network, role };
        if access.visibility() == Visibility::Members && access.role.is_none() {
            return Err(match caller {
                None => ApiError::Unauthenticated(
                    "this network is visible to members only: sign in".into(),
                ),
                Some(_) => {
                    ApiError::Forbidden("this network is visible to its members only".into())
                }
            });
        }
        Ok(access)
    }

    /// The network's visibility.
    pub fn visibility(&self) -> Visibility {
        Visibility::from_db(&self.network.visibility).unwrap_or(Visibility::Members)
    }

    /// The caller's role, or 403 when it is not a member.
    pub fn member_role(&self) -> Result<Role, ApiError> {
        self.role
            .ok_or_else(|| ApiError::Forbidden("only members of this network may do this".into()))
    }

    /// 403 unless the caller is a steward.
    pub fn require_steward(&self) -> Result<(), ApiError> {
        match self.member_role()? {
            Role::Steward => Ok(()),
            _ => Err(ApiError::Forbidden(
                "only stewards of this network may do this".into(),
            )),
        }
    }
}

/// A stored UTC timestamp as an RFC 3339 `DateTime<Utc>`.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// Parses a path segment that must be a UUID.
pub fn path_uuid(field: &str, raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::field(field, "must be a UUID"))
}

/// Parses an optional agent id given as a query parameter.
pub fn query_uuid(field: &str, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    raw.map(|r| path_uuid(field, r)).transpose()
}

/// Reads an id the database stored. Ids are only ever written from generated UUIDs, so a
/// malformed one is corruption: it reads as the nil UUID rather than failing the request.
pub fn stored_id<T: From<uuid::Uuid>>(raw: &str) -> T {
    T::from(uuid::Uuid::parse_str(raw).unwrap_or_else(|_| uuid::Uuid::nil()))
}

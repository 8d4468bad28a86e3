//! Row structs: one per table, as stored. Conversion to domain types and DTOs happens in
//! the API layer.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;
use super::types::DbDecimal;

/// `networks`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = networks)]
pub struct NetworkRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub join_policy: String,
    pub visibility: String,
    pub approvals_required: i32,
    pub rejections_required: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// `network_currencies`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = network_currencies)]
pub struct CurrencyRow {
    pub network_id: String,
    pub code: String,
    pub scale: i32,
}

/// `agents`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = agents)]
pub struct AgentRow {
    pub id: String,
    pub display_name: String,
    pub wallet_address: Option<String>,
    pub created_at: NaiveDateTime,
}

/// `api_keys`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub key_hash: String,
    pub agent_id: String,
    pub created_at: NaiveDateTime,
}

/// `memberships`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub network_id: String,
    pub agent_id: String,
    pub role: String,
    pub joined_at: NaiveDateTime,
}

/// `invites`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invites)]
pub struct InviteRow {
    pub code_hash: String,
    pub network_id: String,
    pub role: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_by: Option<String>,
    pub used_at: Option<NaiveDateTime>,
}

/// `contributions`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contributions)]
pub struct ContributionRow {
    pub id: String,
    pub network_id: String,
    pub agent_id: String,
    pub recorded_by: String,
    pub kind: String,
    pub quantity: DbDecimal,
    pub unit: String,
    pub skill: Option<String>,
    pub description: String,
    pub evidence_url: Option<String>,
    pub cites: Option<String>,
    pub corrects: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
}

/// `contribution_tags`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contribution_tags)]
pub struct TagRow {
    pub contribution_id: String,
    pub tag: String,
}

/// `validations`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = validations)]
pub struct ValidationRow {
    pub id: String,
    pub contribution_id: String,
    pub validator_id: String,
    pub decision: String,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
}

/// `contribution_outcomes`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contribution_outcomes)]
pub struct OutcomeRow {
    pub contribution_id: String,
    pub status: String,
    pub decided_at: NaiveDateTime,
}

/// `idempotency_keys`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub scope: String,
    pub idem_key: String,
    pub request_hash: String,
    pub state: String,
    pub status_code: Option<i32>,
    pub content_type: Option<String>,
    pub response_body: Option<String>,
    pub created_at: NaiveDateTime,
}

/// Now, in UTC, truncated to microseconds (both backends then store the same value).
pub fn now() -> NaiveDateTime {
    let t = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros())
        .unwrap_or(t)
        .naive_utc()
}

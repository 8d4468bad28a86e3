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
#[diesel(table_name = contributions, treat_none_as_default_value = false)]
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
#[diesel(table_name = contribution_tags, treat_none_as_default_value = false)]
pub struct TagRow {
    pub contribution_id: String,
    pub tag: String,
    /// The contribution's network (computations read a network's tags by it).
    pub network_id: String,
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
    /// The contribution's network (computations read a network's outcomes by it).
    pub network_id: String,
}

/// `idempotency_keys`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
// None is written as NULL (the column has no default), not as `DEFAULT`: a statement with
// `DEFAULT` in it is not kept prepared by diesel, so PostgreSQL parsed and planned this
// insert on every request.
#[diesel(table_name = idempotency_keys, treat_none_as_default_value = false)]
pub struct IdempotencyRow {
    pub scope: String,
    pub idem_key: String,
    pub request_hash: String,
    pub state: String,
    pub status_code: Option<i32>,
    pub content_type: Option<String>,
    /// The answer, when stored as text (see [`crate::db::idempotency::Stored`]).
    pub response_body: Option<String>,
    pub created_at: NaiveDateTime,
    /// The answer, when stored compressed.
    pub response_zstd: Option<Vec<u8>>,
}

/// `equation_versions`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = equation_versions)]
pub struct EquationVersionRow {
    pub network_id: String,
    pub version: i32,
    pub body: String,
    pub content_hash: String,
    pub effective_from: NaiveDateTime,
    pub adopted_at: NaiveDateTime,
    pub proposal_id: String,
}

/// `proposals`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = proposals)]
pub struct ProposalRow {
    pub id: String,
    pub network_id: String,
    pub proposed_by: String,
    pub title: String,
    pub description: String,
    pub preset: Option<String>,
    pub body: String,
    pub content_hash: String,
    pub effective_from: Option<NaiveDateTime>,
    pub quorum_percent: String,
    pub threshold_percent: String,
    pub fast_track_allowed: bool,
    pub eligible_voters: i32,
    pub created_at: NaiveDateTime,
    pub voting_ends_at: NaiveDateTime,
}

/// `votes`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = votes)]
pub struct VoteRow {
    pub proposal_id: String,
    pub voter_id: String,
    pub vote: String,
    pub created_at: NaiveDateTime,
}

/// `proposal_outcomes`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = proposal_outcomes)]
pub struct ProposalOutcomeRow {
    pub proposal_id: String,
    pub status: String,
    pub decided_at: NaiveDateTime,
    pub yes_votes: i32,
    pub no_votes: i32,
    pub abstain_votes: i32,
    pub fast_tracked_by: Option<String>,
    pub version: Option<i32>,
}

/// `income_events`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = income_events)]
pub struct IncomeRow {
    pub id: String,
    pub network_id: String,
    pub amount: DbDecimal,
    pub currency: String,
    pub source: String,
    pub received_at: NaiveDateTime,
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

/// `distributions`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = distributions)]
pub struct DistributionRow {
    pub id: String,
    pub network_id: String,
    pub income_event_id: String,
    pub equation_version: i32,
    pub equation_hash: String,
    pub cutoff: NaiveDateTime,
    pub inputs_digest: String,
    pub amount_minor: DbDecimal,
    pub currency: String,
    pub scale: i32,
    pub committed_by: String,
    pub committed_at: NaiveDateTime,
}

/// `distribution_lines`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = distribution_lines)]
pub struct LineRow {
    pub id: String,
    pub distribution_id: String,
    pub line_no: i32,
    pub bucket: String,
    pub agent_id: Option<String>,
    pub account: Option<String>,
    pub weight: DbDecimal,
    pub exact_share: String,
    pub amount_minor: DbDecimal,
    pub leftover: bool,
}

/// `distribution_claims`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = distribution_claims)]
pub struct ClaimRow {
    pub distribution_id: String,
    pub bucket: String,
    pub contribution_id: String,
    pub amount_minor: DbDecimal,
}

/// `line_payments`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = line_payments)]
pub struct PaymentRow {
    pub line_id: String,
    pub reference: String,
    pub paid_at: NaiveDateTime,
    pub marked_by: String,
}

/// `tokens`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tokens)]
pub struct TokenRow {
    pub network_id: String,
    pub symbol: String,
    pub name: String,
    pub decimals: i32,
    pub chain_id: Option<i64>,
    pub address: Option<String>,
    pub created_at: NaiveDateTime,
}

/// `ledger_transactions`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_transactions)]
pub struct TxRow {
    pub id: String,
    pub network_id: String,
    pub kind: String,
    pub cause_type: String,
    pub cause_id: String,
    pub reverses: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// `ledger_entries`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_entries)]
pub struct EntryRow {
    pub id: String,
    pub transaction_id: String,
    pub network_id: String,
    pub account: String,
    pub amount_minor: DbDecimal,
    pub vest_cliff: Option<NaiveDateTime>,
    pub vest_end: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// `token_balances`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = token_balances)]
pub struct BalanceRow {
    pub network_id: String,
    pub account: String,
    pub balance_minor: DbDecimal,
}

/// `paid_totals`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = paid_totals)]
pub struct PaidTotalRow {
    pub network_id: String,
    pub bucket: String,
    pub agent_id: String,
    pub amount_minor: DbDecimal,
}

/// `departures`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = departures)]
pub struct DepartureRow {
    pub network_id: String,
    pub agent_id: String,
    pub reason: String,
    pub for_cause: bool,
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

/// `journal_entries`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
// None is written as NULL (the column has no default), not as `DEFAULT`: a statement with
// `DEFAULT` in it is not kept prepared by diesel, so PostgreSQL parsed and planned this
// insert on every request.
#[diesel(table_name = journal_entries, treat_none_as_default_value = false)]
pub struct JournalRow {
    pub id: String,
    pub network_id: String,
    pub recorded_at: NaiveDateTime,
    pub actor: Option<String>,
    pub kind: String,
    pub body: String,
}

/// `journal_seals`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = journal_seals)]
pub struct SealRow {
    pub entry_id: String,
    pub network_id: String,
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub sealed_at: NaiveDateTime,
}

/// `checkpoints`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = checkpoints)]
pub struct CheckpointRow {
    pub network_id: String,
    pub seq: i64,
    pub head_hash: String,
    pub signed_at: NaiveDateTime,
    pub key_id: String,
    pub signature: String,
}

/// `siwe_nonces`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = siwe_nonces)]
pub struct SiweNonceRow {
    pub nonce: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// `webhooks`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub network_id: String,
    pub url: String,
    /// Comma-separated event names.
    pub events: String,
    pub secret: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub active: bool,
}

/// `webhook_deliveries`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub network_id: String,
    pub event: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
}

/// `member_aliases`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = member_aliases)]
pub struct AliasRow {
    pub network_id: String,
    /// Where the alias comes from, e.g. `sourcecred-identity`, `sourcecred-alias`.
    pub source: String,
    pub alias: String,
    pub agent_id: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

/// `prior_payouts`
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = prior_payouts)]
pub struct PriorPayoutRow {
    pub id: String,
    pub network_id: String,
    pub agent_id: String,
    pub bucket: String,
    pub currency: String,
    pub amount_minor: DbDecimal,
    pub source: String,
    pub source_ref: String,
    pub paid_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
    pub recorded_by: String,
}

/// Now, in UTC, truncated to microseconds (both backends then store the same value).
pub fn now() -> NaiveDateTime {
    let t = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros())
        .unwrap_or(t)
        .naive_utc()
}

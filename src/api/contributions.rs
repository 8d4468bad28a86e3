//! Contributions: log one or a batch (all or nothing), list with filters, get one.
//! Never edited: a correction is a new contribution whose `corrects` names the earlier one.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::{ReadErrors, WriteErrors};
use super::extract::{ApiJson, ApiQuery};
use super::{
    decode_cursor, page_limit, paginate, path_uuid, query_uuid, stored_id, utc, Access, AppState,
    Page,
};
use crate::auth::{Authenticated, Caller};
use crate::db::as_member::MemberWrite;
use crate::db::conn::{write_tx_reply, REPLY_CONTENT_TYPE};
use crate::db::contributions::{ContributionView, ListFilter};
use crate::db::gather::Gather;
use crate::db::rows::{now, ContributionRow, IdempotencyRow, JournalRow, TagRow};
use crate::db::types::DbDecimal;
use crate::db::{self, AnyConnection};
use crate::domain::contribution::{self, ContributionDraft, Kind, RawContribution, Status};
use crate::domain::ids::{AgentId, ContributionId, NetworkId};
use crate::domain::network::{Currency, Role};
use crate::domain::FieldError;
use crate::error::ApiError;

/// Most contributions in one batch.
pub const MAX_BATCH: usize = 1000;

/// A contribution to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "work", "quantity": "2.5", "unit": "hours", "skill": "cnc",
    "tags": ["prototype"], "description": "Milled the frame",
    "occurred_at": "2026-11-20T14:00:00Z"
}))]
pub struct ContributionIn {
    /// On whose behalf (bots and stewards only); default: the caller.
    pub agent_id: Option<AgentId>,
    /// What kind of contribution.
    pub kind: Kind,
    /// Positive decimal as a string ("2.5"), below 10,000,000,000; cash at most the currency's
    /// fraction digits, other kinds at most 18; work at most 10,000 hours.
    #[schema(example = "2.5")]
    pub quantity: String,
    /// Unit fitting the kind: work `hours`; cash a network currency code; material `each`,
    /// `kg`, `g`, `t`, `l`, `ml`, `m`, `m2`, `m3`; equipment_use `hours`, `days`; space
    /// `m2_days`, `hours`, `days`; citation `each`; relationship `each` or a currency code;
    /// other any 1-32 of a-z, 0-9, `_`.
    #[schema(example = "hours")]
    pub unit: String,
    /// Skill used (1-40 of a-z, 0-9, `_.:-`).
    pub skill: Option<String>,
    /// Up to 16 tags (1-40 of a-z, 0-9, `_.:-` each).
    #[serde(default)]
    pub tags: Vec<String>,
    /// What was done (up to 4000 characters); required on a correction, as its reason.
    #[serde(default)]
    pub description: String,
    /// http(s) link to evidence (up to 2048 bytes).
    pub evidence_url: Option<String>,
    /// For a citation: the earlier contribution it cites.
    pub cites: Option<ContributionId>,
    /// The earlier contribution this one corrects; that one stops counting.
    pub corrects: Option<ContributionId>,
    /// When it happened (RFC 3339); not in the future.
    pub occurred_at: DateTime<Utc>,
}

/// A batch of contributions, recorded all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContributionBatch {
    /// 1 to 1000 contributions.
    pub items: Vec<ContributionIn>,
}

/// The recorded batch, in request order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContributionBatchOut {
    /// The recorded contributions.
    pub items: Vec<ContributionOut>,
}

/// A recorded contribution.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContributionOut {
    /// Contribution id.
    pub id: ContributionId,
    /// Network.
    pub network_id: NetworkId,
    /// Whose contribution it is.
    pub agent_id: AgentId,
    /// Who recorded it (the agent, a bot or a steward).
    pub recorded_by: AgentId,
    /// Kind.
    pub kind: Kind,
    /// Exact decimal quantity, as a string.
    #[schema(example = "2.5")]
    pub quantity: String,
    /// Unit.
    pub unit: String,
    /// Skill.
    pub skill: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: String,
    /// Evidence link.
    pub evidence_url: Option<String>,
    /// The contribution it cites.
    pub cites: Option<ContributionId>,
    /// The contribution it corrects.
    pub corrects: Option<ContributionId>,
    /// The contribution that corrects it (then its status is `superseded`).
    pub corrected_by: Option<ContributionId>,
    /// Derived status.
    pub status: Status,
    /// Approvals so far.
    pub approvals: i64,
    /// Rejections so far.
    pub rejections: i64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Filters and paging for listing contributions (newest first).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContributionListParams {
    /// Only this agent's.
    pub agent: Option<String>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only those with this tag.
    pub tag: Option<String>,
    /// Only those that occurred at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only those that occurred before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Maps a stored contribution with its derived state to the DTO.
pub fn to_out(v: ContributionView) -> ContributionOut {
    let r = v.row;
    ContributionOut {
        id: stored_id(&r.id),
        network_id: stored_id(&r.network_id),
        agent_id: stored_id(&r.agent_id),
        recorded_by: stored_id(&r.recorded_by),
        kind: Kind::from_db(&r.kind).unwrap_or(Kind::Other),
        quantity: r.quantity.0.normalize().to_string(),
        unit: r.unit,
        skill: r.skill,
        tags: v.tags,
        description: r.description,
        evidence_url: r.evidence_url,
        cites: r.cites.as_deref().map(stored_id),
        corrects: r.corrects.as_deref().map(stored_id),
        corrected_by: v.corrected_by.as_deref().map(stored_id),
        status: v.status,
        approvals: v.approvals,
        rejections: v.rejections,
        occurred_at: utc(r.occurred_at),
        recorded_at: utc(r.recorded_at),
    }
}

pub(crate) fn to_raw(c: ContributionIn) -> RawContribution {
    RawContribution {
        agent_id: c.agent_id,
        kind: c.kind,
        quantity: c.quantity,
        unit: c.unit,
        skill: c.skill,
        tags: c.tags,
        description: c.description,
        evidence_url: c.evidence_url,
        cites: c.cites,
        corrects: c.corrects,
        occurred_at: c.occurred_at,
    }
}

/// Names a batch item's field (`items[3].quantity`); single contributions keep bare names.
fn locate(prefix: Option<usize>, e: FieldError) -> ApiError {
    match prefix {
        Some(i) => ApiError::Validation(e.within(&format!("items[{i}]"))),
        None => ApiError::Validation(e),
    }
}

/// The journal kind of a batch: one entry whose body's `items` are the batch's contributions,
/// each as a `contribution.recorded` entry's body.
pub const BATCH_KIND: &str = "contribution.batch_recorded";

/// A `contribution.recorded` entry's body, written straight to canonical JSON: the fields
/// are in sorted order, so serde writes the same bytes as a sorted JSON map, without building
/// one (a batch's body holds up to 1,000 of these).
#[derive(Serialize)]
struct RecordedBody<'a> {
    agent_id: &'a str,
    cites: Option<&'a str>,
    corrects: Option<&'a str>,
    description: &'a str,
    evidence_url: Option<&'a str>,
    id: &'a str,
    kind: &'a str,
    occurred_at: DateTime<Utc>,
    quantity: String,
    recorded_by: &'a str,
    skill: Option<&'a str>,
    tags: &'a [&'a str],
    unit: &'a str,
}

/// A `contribution.batch_recorded` entry's body.
#[derive(Serialize)]
struct BatchBody<'a> {
    items: &'a [RecordedBody<'a>],
}

/// Checks drafts against the network and the caller's role, then stores them, all in the
/// caller's transaction. `indexed` says whether errors name `items[i]`.
pub(crate) fn record(
    conn: &mut AnyConnection,
    key: &str,
    caller: AgentId,
    raws: Vec<RawContribution>,
    indexed: bool,
) -> Result<Vec<ContributionView>, ApiError> {
    let checked = check(conn, key, caller, raws, indexed)?;
    db::contributions::insert(conn, &checked.rows, &checked.tags)?;
    let (kind, body) = checked.journal_body(indexed)?;
    let Checked {
        network_id,
        caller_id,
        rows,
        tags,
    } = checked;
    crate::journal::record_text(conn, &network_id, Some(&caller_id), kind, body)?;
    for target in rows.iter().filter_map(|r| r.corrects.as_deref()) {
        crate::tokens::on_superseded(conn, &network_id, target, &caller_id)?;
    }
    Ok(db::contributions::fresh_views(rows, &tags))
}

/// A single contribution that corrects none, on PostgreSQL outside any transaction, written
/// with its tags, its journal entry and the request's key (answered `201` with
/// `ContributionOut`) in one statement, after one read or none:
/// - when an earlier request found the network the path names, and the contribution is the
///   caller's own, in a unit that cannot be a currency, citing none and untagged, it is
///   written without any read, by a statement that writes only if the caller is a member or a
///   steward of that network ([`db::as_member::insert_as_member`]): one round trip, shared
///   with the single writes that arrive with it ([`db::as_member::insert_gathered`]);
/// - else, or when that statement wrote nothing, it is checked as [`record`] checks it (the
///   network with the caller's role, and what else the contribution names), then written by
///   [`db::contributions::insert_together`]: two round trips.
///
/// The request's key is not looked up first: the statement inserts its row, and fails whole
/// if one is there already ([`Db::write_looking_key_up_itself`](db::Db::write_looking_key_up_itself)).
/// None when the write must go the way of a transaction, after the key's lookup: on SQLite,
/// inside a transaction (the group writer's), for a correction (which also moves tokens), or
/// when the request's key already has a row (a retry to replay, a request still running, a
/// row left behind by an earlier version to take over). A 4xx returned from here has the key
/// looked up by the idempotency middleware before it is given.
fn record_in_one_statement(
    conn: &mut AnyConnection,
    ids: &NetworkIds,
    gather: &Gather<MemberWrite>,
    key: &str,
    caller: AgentId,
    raw: &RawContribution,
) -> Result<Option<String>, ApiError> {
    let postgres = matches!(conn, AnyConnection::Postgres(_));
    if !postgres || raw.corrects.is_some() || db::conn::in_transaction(conn)? {
        return Ok(None);
    }
    if let (Some(network_id), AnyConnection::Postgres(pg)) = (ids.get(key), &mut *conn) {
        match record_as_member(pg, gather, &network_id, key, caller, raw)? {
            Written::Yes(reply) => return Ok(Some(reply)),
            Written::KeyTaken => return Ok(None),
            Written::No => {}
        }
    }
    let checked = check(conn, key, caller, vec![raw.clone()], false)?;
    ids.put(key, &checked.network_id);
    let Some((entry, reply)) = entry_and_reply(&checked)? else {
        return Ok(None);
    };
    let AnyConnection::Postgres(pg) = conn else {
        return Ok(None);
    };
    let written = with_key_row(&reply, |key_row| {
        db::contributions::insert_together(pg, &checked.rows[0], &checked.tags, &entry, key_row)
            .map(|()| true)
    })?;
    Ok(matches!(written, Written::Yes(())).then_some(reply))
}

/// The one-round-trip write of [`record_in_one_statement`], for the network `network_id` an
/// earlier request found under `key`; [`Written::No`] when it does not apply or the statement
/// wrote nothing (the caller is not a member or steward there, or `key` names another
/// network now).
fn record_as_member(
    pg: &mut diesel::PgConnection,
    gather: &Gather<MemberWrite>,
    network_id: &str,
    key: &str,
    caller: AgentId,
    raw: &RawContribution,
) -> Result<Written<String>, ApiError> {
    let caller_id = caller.to_string();
    let own = raw.agent_id.is_none_or(|a| a == caller);
    if !own
        || raw.cites.is_some()
        || !raw.tags.is_empty()
        || contribution::needs_currencies(raw.kind, &raw.unit)
    {
        return Ok(Written::No);
    }
    let at = now();
    // A draft that does not parse goes the checked way, which answers as it always did.
    let Ok(draft) = contribution::parse(raw.clone(), &[], utc(at)) else {
        return Ok(Written::No);
    };
    let (row, tags) = new_row(draft, network_id, caller_id.clone(), &caller_id, at);
    let checked = Checked {
        network_id: network_id.to_owned(),
        caller_id,
        rows: vec![row],
        tags,
    };
    let Some((entry, reply)) = entry_and_reply(&checked)? else {
        return Ok(Written::No);
    };
    let Checked { mut rows, .. } = checked;
    let row = rows
        .pop()
        .ok_or_else(|| ApiError::Internal("nothing to write".into()))?;
    let written = with_key_row(&reply, |key_row| {
        let write = MemberWrite {
            network_key: key.to_owned(),
            row,
            entry,
            key: key_row.cloned(),
        };
        db::as_member::insert_gathered(pg, gather, write)
    })?;
    Ok(match written {
        Written::Yes(()) => Written::Yes(reply),
        Written::No => Written::No,
        Written::KeyTaken => Written::KeyTaken,
    })
}

/// What a one-statement write did.
enum Written<T> {
    /// It wrote, and this is its answer.
    Yes(T),
    /// It wrote nothing: its condition did not hold.
    No,
    /// It wrote nothing: a row for the request's key is there already.
    KeyTaken,
}

/// A single contribution's journal entry and its `201` answer; None for an entry that must
/// go through [`crate::journal::record_text`].
fn entry_and_reply(checked: &Checked) -> Result<Option<(JournalRow, String)>, ApiError> {
    let (kind, body) = checked.journal_body(false)?;
    let Some(entry) =
        crate::journal::plain_entry(&checked.network_id, Some(&checked.caller_id), kind, body)
    else {
        return Ok(None);
    };
    let [row] = checked.rows.as_slice() else {
        return Err(ApiError::Internal(
            "one contribution checked as several".into(),
        ));
    };
    let view = db::contributions::fresh_views(vec![row.clone()], &checked.tags)
        .pop()
        .ok_or_else(|| ApiError::Internal("nothing recorded".into()))?;
    let reply = serde_json::to_string(&to_out(view))
        .map_err(|e| ApiError::Internal(format!("reply: {e}")))?;
    Ok(Some((entry, reply)))
}

/// Runs a one-statement `write` with the request's key row (`done`, with `reply`), if the
/// request has a key: the key is marked written if the statement wrote, and put back for the
/// next write otherwise.
fn with_key_row(
    reply: &str,
    write: impl FnOnce(Option<&IdempotencyRow>) -> diesel::QueryResult<bool>,
) -> Result<Written<()>, ApiError> {
    let claim = db::idempotency::take_thread_claim((201, REPLY_CONTENT_TYPE, reply));
    let written = match write(claim.as_ref().map(|(_, row)| row)) {
        Ok(true) => Ok(Written::Yes(())),
        Ok(false) => Ok(Written::No),
        Err(e) if db::idempotency::is_key_taken(&e) => Ok(Written::KeyTaken),
        Err(e) => Err(ApiError::from(e)),
    };
    if let Some((key, _)) = claim {
        if matches!(written, Ok(Written::Yes(()))) {
            key.committed(true);
        } else {
            db::idempotency::restore_thread_claim(key);
        }
    }
    written
}

/// The networks single writes found, by the path segment (id or slug) that named them, so
/// that the next write to the same path can go in one round trip ([`record_as_member`]).
/// Not trusted: the statement that uses an entry writes only if the path still names that
/// network, so a renamed slug costs one write the checked way, which puts the new entry.
/// Bounded: emptied when it reaches [`NetworkIds::MAX`] entries.
#[derive(Debug, Default)]
pub struct NetworkIds(parking_lot::RwLock<HashMap<String, String>>);

impl NetworkIds {
    /// Most entries kept.
    const MAX: usize = 10_000;

    fn get(&self, key: &str) -> Option<String> {
        self.0.read().get(key).cloned()
    }

    fn put(&self, key: &str, network_id: &str) {
        if self.0.read().get(key).is_some_and(|id| id == network_id) {
            return;
        }
        let mut ids = self.0.write();
        if ids.len() >= Self::MAX {
            ids.clear();
        }
        ids.insert(key.to_owned(), network_id.to_owned());
    }
}

/// Drafts checked against the network and the caller's role, as rows ready to store.
struct Checked {
    network_id: String,
    caller_id: String,
    rows: Vec<ContributionRow>,
    tags: Vec<TagRow>,
}

impl Checked {
    /// The journal entry's kind and body: one entry per request, a contribution alone or a
    /// batch's contributions in one body (one entry, queue row and seal for up to 1,000
    /// contributions instead of one each).
    fn journal_body(&self, indexed: bool) -> Result<(&'static str, String), ApiError> {
        let mut row_tags: HashMap<&str, Vec<&str>> = HashMap::new();
        for t in &self.tags {
            row_tags
                .entry(t.contribution_id.as_str())
                .or_default()
                .push(t.tag.as_str());
        }
        let entries: Vec<RecordedBody<'_>> = self
            .rows
            .iter()
            .map(|r| RecordedBody {
                agent_id: &r.agent_id,
                cites: r.cites.as_deref(),
                corrects: r.corrects.as_deref(),
                description: &r.description,
                evidence_url: r.evidence_url.as_deref(),
                id: &r.id,
                kind: &r.kind,
                occurred_at: utc(r.occurred_at),
                quantity: r.quantity.0.normalize().to_string(),
                recorded_by: &r.recorded_by,
                skill: r.skill.as_deref(),
                tags: row_tags.get(r.id.as_str()).map_or(&[][..], Vec::as_slice),
                unit: &r.unit,
            })
            .collect();
        let (kind, body) = match (indexed, entries.as_slice()) {
            (false, [one]) => ("contribution.recorded", serde_json::to_string(one)),
            _ => (
                BATCH_KIND,
                serde_json::to_string(&BatchBody { items: &entries }),
            ),
        };
        let body = body.map_err(|e| ApiError::Internal(format!("journal body: {e}")))?;
        Ok((kind, body))
    }
}

/// Checks drafts against the network and the caller's role (the reads [`record`] needs), and
/// makes their rows.
fn check(
    conn: &mut AnyConnection,
    key: &str,
    caller: AgentId,
    raws: Vec<RawContribution>,
    indexed: bool,
) -> Result<Checked, ApiError> {
    let access = Access::load(conn, key, Some(caller))?;
    let role = access.member_role()?;
    if !role.can_contribute() {
        return Err(ApiError::Forbidden(format!(
            "a {} cannot record contributions",
            role.as_str()
        )));
    }
    let network_id = access.network.id;
    // Most contributions (work in hours, say) cannot be in a currency: their units have no
    // upper-case letter. Then the currencies are not read (a round trip on PostgreSQL).
    let currencies: Vec<Currency> = if raws
        .iter()
        .any(|r| contribution::needs_currencies(r.kind, &r.unit))
    {
        db::networks::currencies(conn, &network_id)?
            .into_iter()
            .map(|c| Currency {
                code: c.code,
                scale: u32::try_from(c.scale).unwrap_or(0),
            })
            .collect()
    } else {
        Vec::new()
    };
    let at = now();
    let now_utc = utc(at);
    let mut drafts: Vec<ContributionDraft> = Vec::with_capacity(raws.len());
    for (i, raw) in raws.into_iter().enumerate() {
        let pos = indexed.then_some(i);
        drafts.push(contribution::parse(raw, &currencies, now_utc).map_err(|e| locate(pos, e))?);
    }
    let referenced: Vec<String> = drafts
        .iter()
        .flat_map(|d| d.cites.iter().chain(d.corrects.iter()))
        .map(ToString::to_string)
        .collect();
    let targets: HashMap<String, ContributionRow> =
        db::contributions::existing(conn, &network_id, &referenced)?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
    let already_corrected = db::contributions::corrected(conn, &referenced)?;
    let caller_id = caller.to_string();
    let mut member_cache: HashMap<String, bool> = HashMap::new();
    let mut rows = Vec::with_capacity(drafts.len());
    let mut tags = Vec::new();
    for (i, d) in drafts.into_iter().enumerate() {
        let pos = indexed.then_some(i);
        let err = |field: &str, detail: &str| locate(pos, FieldError::new(field, detail));
        if let Some(c) = d.cites {
            if !targets.contains_key(&c.to_string()) {
                return Err(err("cites", "no such contribution in this network"));
            }
        }
        let mut agent = d.agent_id.map(|a| a.to_string());
        if let Some(c) = d.corrects {
            let c = c.to_string();
            let target = targets
                .get(&c)
                .ok_or_else(|| err("corrects", "no such contribution in this network"))?;
            if already_corrected.contains_key(&c) {
                return Err(ApiError::Conflict(format!(
                    "contribution {c} is already corrected; correct the latest version instead"
                )));
            }
            if target.agent_id != caller_id
                && target.recorded_by != caller_id
                && role != Role::Steward
            {
                return Err(ApiError::Forbidden(
                    "only the contributor, whoever recorded it, or a steward may correct a contribution".into(),
                ));
            }
            if d.description.trim().is_empty() {
                return Err(err(
                    "description",
                    "is required on a correction: say why it is corrected",
                ));
            }
            agent.get_or_insert_with(|| target.agent_id.clone());
        }
        if role == Role::Bot && agent.is_none() {
            return Err(err(
                "agent_id",
                "is required when a bot records a contribution: on whose behalf",
            ));
        }
        let agent = agent.unwrap_or_else(|| caller_id.clone());
        if agent != caller_id {
            if !role.can_record_for_others() && d.corrects.is_none() {
                return Err(ApiError::Forbidden(
                    "only bots and stewards may record contributions for others".into(),
                ));
            }
            let is_member = match member_cache.get(&agent) {
                Some(m) => *m,
                None => {
                    let m = db::members::membership(conn, &network_id, &agent)?.is_some();
                    member_cache.insert(agent.clone(), m);
                    m
                }
            };
            if !is_member {
                return Err(err("agent_id", "is not a member of this network"));
            }
        }
        let (row, row_tags) = new_row(d, &network_id, agent, &caller_id, at);
        rows.push(row);
        tags.extend(row_tags);
    }
    Ok(Checked {
        network_id,
        caller_id,
        rows,
        tags,
    })
}

/// A checked draft's row (with a new id) and its tags' rows.
fn new_row(
    d: ContributionDraft,
    network_id: &str,
    agent: String,
    caller_id: &str,
    at: NaiveDateTime,
) -> (ContributionRow, Vec<TagRow>) {
    let id = ContributionId::generate().to_string();
    let tags = d
        .tags
        .iter()
        .map(|t| TagRow {
            contribution_id: id.clone(),
            tag: t.clone(),
            network_id: network_id.to_owned(),
        })
        .collect();
    let row = ContributionRow {
        id,
        network_id: network_id.to_owned(),
        agent_id: agent,
        recorded_by: caller_id.to_owned(),
        kind: d.kind.as_str().into(),
        quantity: DbDecimal(d.quantity),
        unit: d.unit,
        skill: d.skill,
        description: d.description,
        evidence_url: d.evidence_url,
        cites: d.cites.map(|c| c.to_string()),
        corrects: d.corrects.map(|c| c.to_string()),
        occurred_at: d.occurred_at.naive_utc(),
        recorded_at: at,
    };
    (row, tags)
}

/// Record a contribution.
#[utoipa::path(
    tag = "contributions",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = ContributionIn,
    responses((status = 201, description = "Recorded (status `pending`)", body = ContributionOut), WriteErrors)
)]
#[post("/networks/{network}/contributions")]
pub async fn create_contribution(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<ContributionIn>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let raw = to_raw(body.0);
    let ids = Arc::clone(&state.network_ids);
    let gather = Arc::clone(&state.member_writes);
    let body = state
        .db
        .write_looking_key_up_itself(move |conn| {
            if let Some(reply) = record_in_one_statement(conn, &ids, &gather, &key, caller.0, &raw)?
            {
                return Ok(reply);
            }
            db::idempotency::check_thread_claim(conn)?;
            write_tx_reply(conn, 201, |conn| {
                let view = record(conn, &key, caller.0, vec![raw], false)?
                    .pop()
                    .ok_or_else(|| ApiError::Internal("nothing recorded".into()))?;
                Ok::<_, ApiError>(to_out(view))
            })
        })
        .await?;
    Ok(HttpResponse::Created()
        .content_type(REPLY_CONTENT_TYPE)
        .body(body))
}

/// Record up to 1000 contributions in one transaction: all are recorded, or none.
#[utoipa::path(
    tag = "contributions",
    security(("bearer" = [])),
    params(("network" = String, Path, description = "Network id or slug")),
    request_body = ContributionBatch,
    responses((status = 201, description = "All recorded", body = ContributionBatchOut), WriteErrors)
)]
#[post("/networks/{network}/contributions/batch")]
pub async fn create_contribution_batch(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: ApiJson<ContributionBatch>,
) -> Result<HttpResponse, ApiError> {
    let items = body.0.items;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::field(
            "items",
            format!("must have 1 to {MAX_BATCH} entries"),
        ));
    }
    let key = path.into_inner();
    let raws: Vec<RawContribution> = items.into_iter().map(to_raw).collect();
    let body = state
        .db
        .write(move |conn| {
            write_tx_reply(conn, 201, |conn| {
                let views = record(conn, &key, caller.0, raws, true)?;
                Ok::<_, ApiError>(ContributionBatchOut {
                    items: views.into_iter().map(to_out).collect(),
                })
            })
        })
        .await?;
    Ok(HttpResponse::Created()
        .content_type(REPLY_CONTENT_TYPE)
        .body(body))
}

/// List a network's contributions, newest first.
#[utoipa::path(
    tag = "contributions",
    params(("network" = String, Path, description = "Network id or slug"), ContributionListParams),
    responses((status = 200, description = "A page of contributions", body = Page<ContributionOut>), ReadErrors)
)]
#[get("/networks/{network}/contributions")]
pub async fn list_contributions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<ContributionListParams>,
) -> Result<web::Json<Page<ContributionOut>>, ApiError> {
    let q = query.0;
    let limit = page_limit(q.limit)?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(ApiError::field("to", "must be after from"));
        }
    }
    if q.tag.as_ref().is_some_and(|t| t.len() > 40) {
        return Err(ApiError::field("tag", "must be at most 40 characters"));
    }
    let filter = ListFilter {
        agent_id: query_uuid("agent", q.agent.as_deref())?,
        kind: q.kind.map(|k| k.as_str().to_owned()),
        status: q.status,
        tag: q.tag,
        from: q
            .from
            .map(|t| contribution::truncate_to_micros(t).naive_utc()),
        to: q
            .to
            .map(|t| contribution::truncate_to_micros(t).naive_utc()),
        before: decode_cursor(q.cursor.as_deref())?,
    };
    let key = path.into_inner();
    let views = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let rows = db::contributions::list(conn, &access.network.id, &filter, limit + 1)?;
            Ok::<_, ApiError>(db::contributions::views(conn, rows)?)
        })
        .await?;
    Ok(web::Json(paginate(
        views,
        limit,
        |v| v.row.id.as_str(),
        to_out,
    )))
}

/// Get one contribution.
#[utoipa::path(
    tag = "contributions",
    params(
        ("network" = String, Path, description = "Network id or slug"),
        ("id" = String, Path, description = "Contribution id"),
    ),
    responses((status = 200, description = "The contribution", body = ContributionOut), ReadErrors)
)]
#[get("/networks/{network}/contributions/{id}")]
pub async fn get_contribution(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<ContributionOut>, ApiError> {
    let (key, id) = path.into_inner();
    let id = path_uuid("id", &id)?;
    let view = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let row = db::contributions::find(conn, &access.network.id, &id)?
                .ok_or_else(|| ApiError::NotFound("no such contribution in this network".into()))?;
            db::contributions::views(conn, vec![row])?
                .pop()
                .ok_or_else(|| ApiError::Internal("view lost".into()))
        })
        .await?;
    Ok(web::Json(to_out(view)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    /// The struct writes the bytes the sorted JSON map it replaced wrote, so the journal's
    /// bodies keep their canonical form.
    #[test]
    fn recorded_body_is_the_sorted_map() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 15, 10, 0, 0)
            .single()
            .expect("date");
        for (cites, skill, tags) in [
            (None, None, vec![]),
            (Some("c-1"), Some("cnc \"x\""), vec!["a", "é 🦀"]),
        ] {
            let body = RecordedBody {
                agent_id: "agent",
                cites,
                corrects: cites,
                description: "Milled the frame\n\u{1}",
                evidence_url: skill,
                id: "id-1",
                kind: "work",
                occurred_at: at,
                quantity: "2.5".into(),
                recorded_by: "bot",
                skill,
                tags: &tags,
                unit: "hours",
            };
            let map = serde_json::json!({
                "id": body.id, "agent_id": body.agent_id, "recorded_by": body.recorded_by,
                "kind": body.kind, "quantity": body.quantity, "unit": body.unit,
                "skill": body.skill, "tags": body.tags, "description": body.description,
                "evidence_url": body.evidence_url, "cites": body.cites,
                "corrects": body.corrects, "occurred_at": body.occurred_at,
            });
            let one = serde_json::to_string(&body).expect("json");
            assert_eq!(one, map.to_string());
            let batch = serde_json::to_string(&BatchBody {
                items: std::slice::from_ref(&body),
            })
            .expect("json");
            assert_eq!(batch, serde_json::json!({ "items": [map] }).to_string());
        }
    }
}

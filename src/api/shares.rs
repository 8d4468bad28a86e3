//! Value shares: every member's weighted value, share of the total, what they have been
//! paid, and what they would get of a given amount now.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::{get, web};
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::ReadErrors;
use super::extract::ApiQuery;
use super::{decode_cursor, page_limit, path_uuid, stored_id, utc, Access, AppState};
use crate::accounting::{self, to_human, to_minor, Job};
use crate::auth::Caller;
use crate::db::rows::now;
use crate::db::{self, AnyConnection};
use crate::domain::contribution::parse_decimal;
use crate::domain::distribution::Recipient;
use crate::domain::ids::AgentId;
use crate::error::ApiError;

/// Digits kept in a share of the total.
pub const SHARE_DIGITS: u32 = 12;

/// An amount in one currency.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Currency code.
    pub currency: String,
    /// Amount in the currency.
    pub amount: String,
}

/// One member's value share.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShareOut {
    /// The member.
    pub agent_id: AgentId,
    /// Display name.
    pub display_name: String,
    /// Sum of the weighted values of their counted contributions at the date.
    pub value: String,
    /// value / total value (12 digits after the point, truncated).
    pub share: String,
    /// Paid to them by committed distributions, per currency.
    pub paid: Vec<Money>,
    /// What they would get of `amount` now, if `amount` was given.
    pub would_get: Option<String>,
}

/// Every member's share.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SharesOut {
    /// The date the values are at.
    pub at: DateTime<Utc>,
    /// The equation version used.
    pub equation_version: i32,
    /// Total weighted value of the network.
    pub total_value: String,
    /// The sample amount, if given.
    pub amount: Option<String>,
    /// Its currency.
    pub currency: Option<String>,
    /// Members, by value (highest first), then id.
    pub items: Vec<ShareOut>,
    /// Pass as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Date, sample amount and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SharesParams {
    /// The date (RFC 3339; default now).
    pub at: Option<DateTime<Utc>>,
    /// A sample amount to split now (decimal string).
    pub amount: Option<String>,
    /// Its currency (default: the network's first).
    pub currency: Option<String>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A single member's share, at a date.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShareParams {
    /// The date (RFC 3339; default now).
    pub at: Option<DateTime<Utc>>,
    /// A sample amount to split now (decimal string).
    pub amount: Option<String>,
    /// Its currency (default: the network's first).
    pub currency: Option<String>,
}

/// A member's row of the shares table. The display name is not kept here: profiles change
/// without a journal entry, so names are read for the rows shown.
struct Ranked {
    agent_id: String,
    value: String,
    share: String,
    paid: Vec<Money>,
    would_get: Option<String>,
}

/// Every member's share at a date, highest value first.
struct Table {
    at: NaiveDateTime,
    version: i32,
    total: Decimal,
    amount: Option<(String, String)>,
    rows: Arc<Vec<Ranked>>,
}

/// Checks the date, decides any proposal that is due, and finds the equation in force then.
fn prepare(
    conn: &mut AnyConnection,
    network: &str,
    at: NaiveDateTime,
) -> Result<accounting::InForce, ApiError> {
    let current = now();
    if at > current {
        return Err(ApiError::field("at", "must not be in the future"));
    }
    accounting::settle(conn, network, current)?;
    accounting::in_force(conn, network, at)?
        .ok_or_else(|| ApiError::Conflict("no value equation was in force at that date".into()))
}

/// Computes the table from every counted contribution at `at`, as things stood at `as_of`.
fn compute_table(
    conn: &mut AnyConnection,
    network: &str,
    force: &accounting::InForce,
    at: NaiveDateTime,
    as_of: NaiveDateTime,
    amount: Option<Decimal>,
    currency: Option<String>,
) -> Result<Table, ApiError> {
    let values = accounting::values_by_agent(conn, network, &force.eq, at, as_of)?;
    let total = values
        .values()
        .try_fold(Decimal::ZERO, |s, v| s.checked_add(*v))
        .ok_or_else(|| ApiError::Conflict("values overflow".into()))?;
    let paid = db::distributions::paid_by_agent(conn, network)?;
    let currencies = db::networks::currencies(conn, network)?;
    let scale_of = |code: &str| {
        currencies
            .iter()
            .find(|c| c.code == code)
            .and_then(|c| u32::try_from(c.scale).ok())
            .unwrap_or(0)
    };
    let mut would: Option<(HashMap<String, Decimal>, u32, String, Decimal)> = None;
    if let Some(a) = amount {
        let cur = match &currency {
            Some(c) => currencies
                .iter()
                .find(|x| &x.code == c)
                .ok_or_else(|| ApiError::field("currency", "is not a currency of this network"))?,
            None => currencies
                .first()
                .ok_or_else(|| ApiError::field("currency", "the network has no currency"))?,
        };
        let scale = u32::try_from(cur.scale).unwrap_or(0);
        if a.scale() > scale {
            return Err(ApiError::field(
                "amount",
                format!("must have at most {scale} fraction digits"),
            ));
        }
        let minor = to_minor(a, scale).ok_or_else(|| ApiError::field("amount", "is too large"))?;
        let eq_now = accounting::in_force(conn, network, as_of)?
            .ok_or_else(|| ApiError::Conflict("no value equation in force now".into()))?;
        let job = Job {
            network_id: network,
            eq: &eq_now.eq,
            amount_minor: minor,
            scale,
            cutoff: as_of,
            as_of,
            before: None,
            salt: "shares",
        };
        let out = accounting::compute(conn, None, &job)?.outcome;
        let mut per: HashMap<String, Decimal> = HashMap::new();
        for l in out.lines {
            if let Recipient::Agent(a) = l.recipient {
                *per.entry(a).or_insert(Decimal::ZERO) += l.amount;
            }
        }
        would = Some((per, scale, cur.code.clone(), minor));
    }
    let mut rows: Vec<(Decimal, Ranked)> = Vec::new();
    for (m, _) in db::members::list_members(conn, network, None, i64::MAX)? {
        let value = values.get(&m.agent_id).copied().unwrap_or_default();
        let share = if total.is_zero() {
            Decimal::ZERO
        } else {
            value.checked_div(total).unwrap_or_default()
        };
        let mut paid_list: Vec<Money> = paid
            .get(&m.agent_id)
            .map(|p| {
                p.iter()
                    .map(|(c, v)| Money {
                        currency: c.clone(),
                        amount: to_human(*v, scale_of(c)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        paid_list.sort_by(|a, b| a.currency.cmp(&b.currency));
        let would_get = would.as_ref().map(|(per, scale, _, _)| {
            to_human(per.get(&m.agent_id).copied().unwrap_or_default(), *scale)
        });
        rows.push((
            value,
            Ranked {
                value: value.normalize().to_string(),
                share: share
                    .round_dp_with_strategy(SHARE_DIGITS, RoundingStrategy::ToZero)
                    .normalize()
                    .to_string(),
                paid: paid_list,
                would_get,
                agent_id: m.agent_id,
            },
        ));
    }
    // Highest value first, then by id: sorted on the exact values, not their text.
    rows.sort_by(|(va, a), (vb, b)| vb.cmp(va).then_with(|| a.agent_id.cmp(&b.agent_id)));
    Ok(Table {
        at,
        version: force.row.version,
        total,
        amount: would.map(|(_, scale, code, minor)| (to_human(minor, scale), code)),
        rows: Arc::new(rows.into_iter().map(|(_, r)| r).collect()),
    })
}

/// How many networks' tables a process keeps.
const CACHED_NETWORKS: usize = 32;

/// Fills of different networks may run side by side: one lock per stripe.
const FILL_STRIPES: usize = 16;

/// The last shares table computed for each network, reused while nothing it depends on has
/// changed, so that reading shares does not weigh every contribution on every request.
///
/// A table is reused only when the journal holds the same entries as when it was computed
/// (every write that changes contributions, outcomes, members, equations or distributions is
/// journaled in its own transaction; see [`db::journal::version`]), the same equation
/// version is in force, and the new date selects the same contributions: no contribution
/// happened between the two dates, and none was recorded after the moment the table was
/// computed for. Equations that weigh contributions by their age (decay, `age_days`) change
/// with the date alone and are never cached; nor are reads with a sample `amount`.
pub struct SharesCache {
    tables: parking_lot::Mutex<HashMap<String, Arc<Cached>>>,
    fills: [tokio::sync::Mutex<()>; FILL_STRIPES],
    reused: AtomicU64,
    computed: AtomicU64,
}

impl Default for SharesCache {
    fn default() -> Self {
        Self {
            tables: parking_lot::Mutex::new(HashMap::new()),
            fills: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
            reused: AtomicU64::new(0),
            computed: AtomicU64::new(0),
        }
    }
}

/// A computed table and what it holds for.
struct Cached {
    journal: i64,
    version: i32,
    as_of: NaiveDateTime,
    /// The latest `occurred_at` at or before the table's date, if any.
    from: Option<NaiveDateTime>,
    /// The earliest `occurred_at` after it, if any.
    until: Option<NaiveDateTime>,
    total: Decimal,
    rows: Arc<Vec<Ranked>>,
}

impl Cached {
    fn serves(&self, journal: i64, version: i32, at: NaiveDateTime, as_of: NaiveDateTime) -> bool {
        self.journal == journal
            && self.version == version
            && as_of >= self.as_of
            && self.from.is_none_or(|f| at >= f)
            && self.until.is_none_or(|u| at < u)
    }
}

impl SharesCache {
    /// How many reads were answered from a kept table, and how many tables were computed,
    /// since the process started.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.reused.load(Ordering::Relaxed),
            self.computed.load(Ordering::Relaxed),
        )
    }

    fn get(
        &self,
        network: &str,
        journal: i64,
        version: i32,
        at: NaiveDateTime,
        as_of: NaiveDateTime,
    ) -> Option<Table> {
        let tables = self.tables.lock();
        let c = tables.get(network)?;
        if !c.serves(journal, version, at, as_of) {
            return None;
        }
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(Table {
            at,
            version: c.version,
            total: c.total,
            amount: None,
            rows: Arc::clone(&c.rows),
        })
    }

    fn put(&self, network: &str, cached: Cached) {
        let mut tables = self.tables.lock();
        if tables.len() >= CACHED_NETWORKS && !tables.contains_key(network) {
            let oldest = tables
                .iter()
                .min_by_key(|(_, c)| c.as_of)
                .map(|(n, _)| n.clone());
            if let Some(n) = oldest {
                tables.remove(&n);
            }
        }
        tables.insert(network.to_owned(), Arc::new(cached));
    }

    /// The lock a fill of this network's table takes, so that concurrent readers wait for
    /// one computation instead of each running their own.
    fn fill_turn(&self, network: &str) -> &tokio::sync::Mutex<()> {
        let stripe = usize::try_from(foldhash::fast::FixedState::with_seed(0).hash_one(network))
            .unwrap_or(0)
            % FILL_STRIPES;
        &self.fills[stripe]
    }
}

/// What a read shows: the table's header and the rows picked, with their names.
struct Shown {
    at: NaiveDateTime,
    version: i32,
    total: Decimal,
    amount: Option<(String, String)>,
    items: Vec<ShareOut>,
    /// Whether rows follow the last one picked.
    more: bool,
}

/// What the pick needs: a page after a cursor, or one member.
enum Picker {
    Page { after: Option<String>, limit: usize },
    One(String),
}

/// Which rows of the table a read shows, and whether any follow.
fn pick(rows: &[Ranked], picker: &Picker) -> Result<(Vec<usize>, bool), ApiError> {
    match picker {
        Picker::Page { after, limit } => {
            let start = match after {
                Some(a) => rows
                    .iter()
                    .position(|r| &r.agent_id == a)
                    .map_or(rows.len(), |p| p + 1),
                None => 0,
            };
            let end = start.saturating_add(*limit).min(rows.len());
            Ok(((start..end).collect(), end < rows.len()))
        }
        Picker::One(agent) => rows
            .iter()
            .position(|r| &r.agent_id == agent)
            .map(|p| (vec![p], false))
            .ok_or_else(|| ApiError::NotFound("no such member".into())),
    }
}

fn show(conn: &mut AnyConnection, t: &Table, picker: &Picker) -> Result<Shown, ApiError> {
    let (picked, more) = pick(&t.rows, picker)?;
    let ids: Vec<&str> = picked
        .iter()
        .map(|&i| t.rows[i].agent_id.as_str())
        .collect();
    let names = db::members::display_names(conn, &ids)?;
    let items = picked
        .into_iter()
        .map(|i| {
            let r = &t.rows[i];
            ShareOut {
                agent_id: stored_id(&r.agent_id),
                display_name: names.get(&r.agent_id).cloned().unwrap_or_default(),
                value: r.value.clone(),
                share: r.share.clone(),
                paid: r.paid.clone(),
                would_get: r.would_get.clone(),
            }
        })
        .collect();
    Ok(Shown {
        at: t.at,
        version: t.version,
        total: t.total,
        amount: t.amount.clone(),
        items,
        more,
    })
}

/// What a shares read asked for.
struct Ask {
    key: String,
    caller: Option<AgentId>,
    at: NaiveDateTime,
    amount: Option<Decimal>,
    currency: Option<String>,
    picker: Picker,
}

/// Reads the shares table for `ask` (from the cache when it still holds, else computing
/// it, once for all readers waiting on it) and shows the rows it picks.
async fn read(state: &AppState, ask: Ask) -> Result<Shown, ApiError> {
    enum Step {
        Done(Shown),
        Fill(String, Ask),
    }
    let cache = Arc::clone(&state.shares);
    let step = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &ask.key, ask.caller)?;
            let network = access.network.id;
            let force = prepare(conn, &network, ask.at)?;
            if ask.amount.is_some() || force.eq.weighs_by_age() {
                cache.computed.fetch_add(1, Ordering::Relaxed);
                let t = compute_table(
                    conn,
                    &network,
                    &force,
                    ask.at,
                    now(),
                    ask.amount,
                    ask.currency.clone(),
                )?;
                return show(conn, &t, &ask.picker).map(Step::Done);
            }
            let journal = db::journal::version(conn, &network)?;
            match cache.get(&network, journal, force.row.version, ask.at, now()) {
                Some(t) => show(conn, &t, &ask.picker).map(Step::Done),
                None => Ok(Step::Fill(network, ask)),
            }
        })
        .await?;
    let (network, ask) = match step {
        Step::Done(shown) => return Ok(shown),
        Step::Fill(network, ask) => (network, ask),
    };
    let _turn = state.shares.fill_turn(&network).lock().await;
    let cache = Arc::clone(&state.shares);
    state
        .db
        .run(move |conn| {
            db::conn::read_snapshot(conn, |conn| {
                // The journal is read first, then the clock: everything the table reads was
                // committed by then, so was recorded at or before `as_of` (checked below).
                let journal = db::journal::version(conn, &network)?;
                let as_of = now();
                let force = accounting::in_force(conn, &network, ask.at)?.ok_or_else(|| {
                    ApiError::Conflict("no value equation was in force at that date".into())
                })?;
                // Another reader may have filled it while this one waited for its turn.
                if let Some(t) = cache.get(&network, journal, force.row.version, ask.at, as_of) {
                    return show(conn, &t, &ask.picker);
                }
                cache.computed.fetch_add(1, Ordering::Relaxed);
                let t = compute_table(conn, &network, &force, ask.at, as_of, None, None)?;
                let around = db::contributions::dates_around(conn, &network, ask.at)?;
                // A row stamped after `as_of` would count in a later read of the same
                // journal: such a table is not kept. On PostgreSQL that happens when another
                // instance's clock runs ahead of this one's; an SQLite file has one host, so
                // one clock, and everything committed before the snapshot is stamped before
                // `as_of` (its outcomes are not read again for this).
                let stamped_by = |t: Option<NaiveDateTime>| t.is_none_or(|t| t <= as_of);
                let settled = stamped_by(around.recorded)
                    && (matches!(conn, AnyConnection::Sqlite(_))
                        || stamped_by(db::contributions::last_decided(conn, &network)?));
                if settled {
                    cache.put(
                        &network,
                        Cached {
                            journal,
                            version: t.version,
                            as_of,
                            from: around.before,
                            until: around.after,
                            total: t.total,
                            rows: Arc::clone(&t.rows),
                        },
                    );
                }
                show(conn, &t, &ask.picker)
            })
        })
        .await
}

fn sample(amount: Option<&str>) -> Result<Option<Decimal>, ApiError> {
    amount
        .map(|a| {
            let d = parse_decimal("amount", a)?;
            if d <= Decimal::ZERO || d >= Decimal::from(10_000_000_000_i64) {
                return Err(ApiError::field(
                    "amount",
                    "must be greater than 0 and less than 10000000000",
                ));
            }
            Ok(d)
        })
        .transpose()
}

/// Every member's value share at a date, highest first.
///
/// Computing shares weighs every counted contribution. The table computed last is kept per
/// network and reused until the journal gains an entry or a date selects other
/// contributions, so repeated reads cost a few indexed lookups. Reads with `amount`, and
/// equations that weigh contributions by age, are computed each time.
#[utoipa::path(
    tag = "shares",
    params(("network" = String, Path, description = "Network id or slug"), SharesParams),
    responses((status = 200, description = "Shares", body = SharesOut), ReadErrors,
              (status = 409, description = "No equation in force", body = crate::error::Problem, content_type = "application/problem+json"))
)]
#[get("/networks/{network}/shares")]
pub async fn list_shares(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: ApiQuery<SharesParams>,
) -> Result<web::Json<SharesOut>, ApiError> {
    let q = query.0;
    let limit = usize::try_from(page_limit(q.limit)?).unwrap_or(50);
    let after = decode_cursor(q.cursor.as_deref())?;
    let ask = Ask {
        key: path.into_inner(),
        caller: caller.0,
        at: q.at.map_or_else(now, |t| t.naive_utc()),
        amount: sample(q.amount.as_deref())?,
        currency: q.currency,
        picker: Picker::Page { after, limit },
    };
    let shown = read(&state, ask).await?;
    let next_cursor = if shown.more {
        shown.items.last().map(|r| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r.agent_id.to_string())
        })
    } else {
        None
    };
    Ok(web::Json(SharesOut {
        at: utc(shown.at),
        equation_version: shown.version,
        total_value: shown.total.normalize().to_string(),
        amount: shown.amount.as_ref().map(|(a, _)| a.clone()),
        currency: shown.amount.map(|(_, c)| c),
        items: shown.items,
        next_cursor,
    }))
}

/// One member's value share at a date.
#[utoipa::path(
    tag = "shares",
    params(("network" = String, Path, description = "Network id or slug"), ("agent_id" = String, Path, description = "Agent id"), ShareParams),
    responses((status = 200, description = "The member's share", body = ShareOut), ReadErrors,
              (status = 409, description = "No equation in force", body = crate::error::Problem, content_type = "application/problem+json"))
)]
#[get("/networks/{network}/shares/{agent_id}")]
pub async fn get_share(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: ApiQuery<ShareParams>,
) -> Result<web::Json<ShareOut>, ApiError> {
    let (key, agent) = path.into_inner();
    let agent = path_uuid("agent_id", &agent)?;
    let q = query.0;
    let ask = Ask {
        key,
        caller: caller.0,
        at: q.at.map_or_else(now, |t| t.naive_utc()),
        amount: sample(q.amount.as_deref())?,
        currency: q.currency,
        picker: Picker::One(agent),
    };
    let shown = read(&state, ask).await?;
    shown
        .items
        .into_iter()
        .next()
        .map(web::Json)
        .ok_or_else(|| ApiError::NotFound("no such member".into()))
}

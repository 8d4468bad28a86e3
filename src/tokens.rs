//! The token ledger's operations: minting by the rules, reversals, transfers, redemption,
//! leavers, balances (total, vested, unvested) and the whole-ledger check. Every posting
//! runs inside the caller's write transaction, after taking the network's ledger lock, so
//! concurrent spends are serialised per network and can never overdraw.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use rust_decimal::Decimal;

use crate::accounting;
use crate::db::rows::{now, ContributionRow, EntryRow, TokenRow, TxRow};
use crate::db::types::DbDecimal;
use crate::db::{self, AnyConnection};
use crate::domain::contribution::Kind;
use crate::domain::equation::{Facts, MintOn, TokenRules};
use crate::domain::ledger::{self, agent_account, Schedule, TxKind, ISSUANCE, REDEMPTION};
use crate::error::ApiError;

/// A network's token with the rules of the equation in force.
pub struct Active {
    /// The token.
    pub token: TokenRow,
    /// Its rules (absent when the equation in force has none).
    pub rules: Option<TokenRules>,
}

/// The token and its rules now, if the network has a token.
pub fn active(conn: &mut AnyConnection, network_id: &str) -> Result<Option<Active>, ApiError> {
    let Some(token) = db::ledger::token(conn, network_id)? else {
        return Ok(None);
    };
    let rules =
        accounting::in_force(conn, network_id, now())?.and_then(|f| f.eq.source.token.clone());
    Ok(Some(Active { token, rules }))
}

fn scale(token: &TokenRow) -> u32 {
    u32::try_from(token.decimals).unwrap_or(0)
}

fn parse_units(raw: &str) -> Decimal {
    Decimal::from_str_exact(raw).unwrap_or_default()
}

/// Whole token minor units of `units` tokens (rounded down).
pub fn token_minor(token: &TokenRow, units: Decimal) -> Decimal {
    accounting::to_minor(units, scale(token))
        .unwrap_or_default()
        .floor()
}

/// One entry of a posting: account, signed amount, and a vesting (cliff, end) for mints.
type Leg = (String, Decimal, Option<(NaiveDateTime, NaiveDateTime)>);

struct Posting<'a> {
    network_id: &'a str,
    kind: TxKind,
    cause_type: &'a str,
    cause_id: &'a str,
    reverses: Option<String>,
    reason: String,
    actor: &'a str,
    legs: Vec<Leg>,
}

fn post(conn: &mut AnyConnection, p: Posting<'_>) -> Result<TxRow, ApiError> {
    let at = now();
    let tx = TxRow {
        id: uuid::Uuid::now_v7().to_string(),
        network_id: p.network_id.to_owned(),
        kind: p.kind.as_str().into(),
        cause_type: p.cause_type.into(),
        cause_id: p.cause_id.into(),
        reverses: p.reverses,
        reason: p.reason,
        created_by: p.actor.into(),
        created_at: at,
    };
    let sum: Decimal = p.legs.iter().map(|(_, a, _)| *a).sum();
    if !sum.is_zero() {
        return Err(ApiError::Internal(format!(
            "unbalanced {} transaction",
            tx.kind
        )));
    }
    let entries: Vec<EntryRow> = p
        .legs
        .into_iter()
        .map(|(account, amount, vesting)| EntryRow {
            id: uuid::Uuid::now_v7().to_string(),
            transaction_id: tx.id.clone(),
            network_id: p.network_id.into(),
            account,
            amount_minor: DbDecimal(amount),
            vest_cliff: vesting.map(|v| v.0),
            vest_end: vesting.map(|v| v.1),
            created_at: at,
        })
        .collect();
    db::ledger::post(conn, &tx, &entries)?;
    let legs: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| serde_json::json!([e.account, e.amount_minor.0.to_string()]))
        .collect();
    let body = serde_json::json!({
        "id": tx.id, "kind": tx.kind, "cause": format!("{}:{}", tx.cause_type, tx.cause_id),
        "reverses": tx.reverses, "reason": tx.reason, "entries": legs,
    });
    crate::journal::record(
        conn,
        &tx.network_id,
        Some(&tx.created_by),
        "ledger.transaction",
        body,
    )?;
    Ok(tx)
}

/// What to mint, to whom and why.
struct MintOrder<'a> {
    agent: &'a str,
    amount: Decimal,
    cause: (&'a str, &'a str),
    actor: &'a str,
    reason: String,
}

fn mint(
    conn: &mut AnyConnection,
    a: &Active,
    rules: &TokenRules,
    order: MintOrder<'_>,
) -> Result<(), ApiError> {
    let MintOrder {
        agent,
        amount,
        cause,
        actor,
        reason,
    } = order;
    if amount <= Decimal::ZERO {
        return Ok(());
    }
    let network = a.token.network_id.as_str();
    // Exactly once per cause: a retried or raced validation finds the first mint.
    if db::ledger::by_cause(conn, network, TxKind::Mint.as_str(), cause.0, cause.1)?.is_some() {
        return Ok(());
    }
    let at = now();
    let vesting = rules.vesting.map(|v| {
        (
            at + Duration::days(i64::from(v.cliff_days)),
            at + Duration::days(i64::from(v.duration_days)),
        )
    });
    post(
        conn,
        Posting {
            network_id: network,
            kind: TxKind::Mint,
            cause_type: cause.0,
            cause_id: cause.1,
            reverses: None,
            reason,
            actor,
            legs: vec![
                (ISSUANCE.into(), -amount, None),
                (agent_account(agent), amount, vesting),
            ],
        },
    )
    .map(|_| ())
}

/// Mints for a contribution that was just validated, under `force` (the equation in force the
/// validation read), when the rules say so.
pub fn on_validated(
    conn: &mut AnyConnection,
    c: &ContributionRow,
    actor: &str,
    force: Option<&accounting::InForce>,
) -> Result<(), ApiError> {
    // The equation in force, as the validation read it: it gives both the token rules and
    // the weighting.
    let Some(force) = force else {
        return Ok(());
    };
    let Some(token) = db::ledger::token(conn, &c.network_id)? else {
        return Ok(());
    };
    let Some(rules) = force
        .eq
        .source
        .token
        .clone()
        .filter(|r| r.mint_on == MintOn::Validation)
    else {
        return Ok(());
    };
    db::equations::lock_network(conn, &c.network_id)?;
    let a = Active {
        token,
        rules: Some(rules.clone()),
    };
    let facts = Facts {
        id: c.id.clone(),
        agent_id: c.agent_id.clone(),
        kind: Kind::from_db(&c.kind).unwrap_or(Kind::Other),
        quantity: c.quantity.0,
        unit: c.unit.clone(),
        skill: c.skill.clone(),
        tags: Vec::new(),
        occurred_at: DateTime::from_naive_utc_and_offset(c.occurred_at, Utc),
    };
    let value = force.eq.weigh(&facts, Utc::now()).map_err(|e| {
        ApiError::field(
            "formulas",
            format!("contribution {}: {}", e.contribution_id, e.message),
        )
    })?;
    let amount = token_minor(
        &a.token,
        value
            .checked_mul(parse_units(&rules.per_unit))
            .unwrap_or_default(),
    );
    let reason = format!("validated value {value}");
    mint(
        conn,
        &a,
        &rules,
        MintOrder {
            agent: &c.agent_id,
            amount,
            cause: ("contribution", &c.id),
            actor,
            reason,
        },
    )
}

/// Reverses the mint of a contribution that a correction supersedes. The contributor must
/// still hold the tokens: a balance never goes below zero.
pub fn on_superseded(
    conn: &mut AnyConnection,
    network_id: &str,
    contribution_id: &str,
    actor: &str,
) -> Result<(), ApiError> {
    let Some(m) = db::ledger::by_cause(
        conn,
        network_id,
        TxKind::Mint.as_str(),
        "contribution",
        contribution_id,
    )?
    else {
        return Ok(());
    };
    if db::ledger::reversal_of(conn, &m.id)?.is_some() {
        return Ok(());
    }
    db::equations::lock_network(conn, network_id)?;
    let legs: Vec<Leg> = db::ledger::entries_of(conn, &m.id)?
        .into_iter()
        .map(|e| (e.account, -e.amount_minor.0, None))
        .collect();
    for (account, amount, _) in &legs {
        if amount.is_sign_negative() && db::ledger::balance(conn, network_id, account)? < -*amount {
            return Err(ApiError::Conflict(format!(
                "the correction would reverse {} token units minted for the corrected contribution, but {account} no longer holds them",
                -*amount
            )));
        }
    }
    post(
        conn,
        Posting {
            network_id,
            kind: TxKind::Reversal,
            cause_type: "contribution",
            cause_id: contribution_id,
            reverses: Some(m.id.clone()),
            reason: "the contribution was corrected".into(),
            actor,
            legs,
        },
    )
    .map(|_| ())
}

/// Mints for the member lines of a committed distribution, when the rules say so.
pub fn on_distribution(
    conn: &mut AnyConnection,
    network_id: &str,
    lines: &[(String, Option<String>, Decimal)],
    currency_scale: u32,
    actor: &str,
) -> Result<(), ApiError> {
    let Some(a) = active(conn, network_id)? else {
        return Ok(());
    };
    let Some(rules) = a
        .rules
        .clone()
        .filter(|r| r.mint_on == MintOn::Distribution)
    else {
        return Ok(());
    };
    let per_unit = parse_units(&rules.per_unit);
    for (line_id, agent, amount_minor) in lines {
        let Some(agent) = agent else { continue };
        let paid = *amount_minor / Decimal::from(10u64.pow(currency_scale.min(18)));
        let amount = token_minor(&a.token, paid.checked_mul(per_unit).unwrap_or_default());
        let reason = format!("paid {paid}");
        mint(
            conn,
            &a,
            &rules,
            MintOrder {
                agent,
                amount,
                cause: ("line", line_id),
                actor,
                reason,
            },
        )?;
    }
    Ok(())
}

/// Burns a holder's tokens when their distribution line is marked paid, when the rules say so
/// (capped at what has vested and is available).
pub fn on_paid(
    conn: &mut AnyConnection,
    network_id: &str,
    line_id: &str,
    agent: &str,
    amount_minor: Decimal,
    currency_scale: u32,
    actor: &str,
) -> Result<(), ApiError> {
    let Some(a) = active(conn, network_id)? else {
        return Ok(());
    };
    let Some(rate) = a
        .rules
        .as_ref()
        .and_then(|r| r.redeem_per_unit_paid.clone())
    else {
        return Ok(());
    };
    db::equations::lock_network(conn, network_id)?;
    let paid = amount_minor / Decimal::from(10u64.pow(currency_scale.min(18)));
    let wanted = token_minor(
        &a.token,
        paid.checked_mul(parse_units(&rate)).unwrap_or_default(),
    );
    let amount = wanted.min(available(conn, network_id, agent, now())?);
    if amount <= Decimal::ZERO {
        return Ok(());
    }
    post(
        conn,
        Posting {
            network_id,
            kind: TxKind::Burn,
            cause_type: "line",
            cause_id: line_id,
            reverses: None,
            reason: format!("redeemed at a payout of {paid}"),
            actor,
            legs: vec![
                (agent_account(agent), -amount, None),
                (REDEMPTION.into(), amount, None),
            ],
        },
    )
    .map(|_| ())
}

/// Total, vested and unvested balance of a member at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    /// Everything held.
    pub total: Decimal,
    /// Of which still vesting.
    pub unvested: Decimal,
}

/// A member's holding at `at`: the cached balance when nothing was posted to the account
/// after `at`, else the sum of its entries by then.
pub fn holding(
    conn: &mut AnyConnection,
    network_id: &str,
    agent: &str,
    at: NaiveDateTime,
) -> Result<Holding, ApiError> {
    let account = agent_account(agent);
    // Reads at the present use the balance kept with every posting; a past `at` sums the
    // entries made by then.
    let total = match db::ledger::cached_total_at(conn, network_id, &account, at)? {
        Some(t) => t,
        None => match db::ledger::account_total(conn, network_id, &account, at)? {
            Some(t) => t,
            None => db::ledger::account_entries(conn, network_id, &account, Some(at))?
                .iter()
                .map(|e| e.amount_minor.0)
                .sum(),
        },
    };
    let departed =
        db::ledger::departure(conn, network_id, agent)?.is_some_and(|d| d.recorded_at <= at);
    if departed {
        return Ok(Holding {
            total,
            unvested: Decimal::ZERO,
        });
    }
    let entries = db::ledger::vesting_entries(conn, network_id, &account, at)?;
    let vesting: Vec<&EntryRow> = entries
        .iter()
        .filter(|e| e.vest_end.is_some() && e.amount_minor.0 > Decimal::ZERO)
        .collect();
    let tx_ids: Vec<String> = vesting.iter().map(|e| e.transaction_id.clone()).collect();
    let reversed = db::ledger::reversals(conn, &tx_ids)?;
    let t = DateTime::<Utc>::from_naive_utc_and_offset(at, Utc);
    let mut unvested = Decimal::ZERO;
    for e in vesting {
        if reversed.get(&e.transaction_id).is_some_and(|r| *r <= at) {
            continue;
        }
        let utc = |n: NaiveDateTime| DateTime::<Utc>::from_naive_utc_and_offset(n, Utc);
        let s = Schedule {
            start: utc(e.created_at),
            cliff: utc(e.vest_cliff.unwrap_or(e.created_at)),
            end: utc(e.vest_end.unwrap_or(e.created_at)),
        };
        unvested += e.amount_minor.0 - s.vested(e.amount_minor.0, t);
    }
    Ok(Holding {
        total,
        unvested: unvested.min(total).max(Decimal::ZERO),
    })
}

/// What a member may spend at `at`: vested tokens held.
pub fn available(
    conn: &mut AnyConnection,
    network_id: &str,
    agent: &str,
    at: NaiveDateTime,
) -> Result<Decimal, ApiError> {
    let h = holding(conn, network_id, agent, at)?;
    Ok(h.total - h.unvested)
}

/// Moves vested tokens between members. `transfer_id` makes it idempotent: the same id
/// returns the first transaction (when its parameters match) and never moves tokens twice.
pub fn transfer(
    conn: &mut AnyConnection,
    network_id: &str,
    from: &str,
    to: &str,
    amount: Decimal,
    transfer_id: &str,
    memo: String,
) -> Result<(TxRow, bool), ApiError> {
    let a = active(conn, network_id)?
        .ok_or_else(|| ApiError::Conflict("the network has no token".into()))?;
    if !a.rules.as_ref().is_some_and(|r| r.transferable) {
        return Err(ApiError::Forbidden(
            "the value equation in force does not allow token transfers".into(),
        ));
    }
    db::equations::lock_network(conn, network_id)?;
    if let Some(existing) = db::ledger::by_cause(
        conn,
        network_id,
        TxKind::Transfer.as_str(),
        "transfer",
        transfer_id,
    )? {
        let legs = db::ledger::entries_of(conn, &existing.id)?;
        let same = existing.created_by == from
            && legs
                .iter()
                .any(|e| e.account == agent_account(to) && e.amount_minor.0 == amount);
        if !same {
            return Err(ApiError::field(
                "transfer_id",
                "was already used for a different transfer",
            ));
        }
        return Ok((existing, false));
    }
    let spendable = available(conn, network_id, from, now())?;
    if spendable < amount {
        return Err(ApiError::Conflict(format!(
            "insufficient vested balance: {spendable} token units available"
        )));
    }
    let tx = post(
        conn,
        Posting {
            network_id,
            kind: TxKind::Transfer,
            cause_type: "transfer",
            cause_id: transfer_id,
            reverses: None,
            reason: memo,
            actor: from,
            legs: vec![
                (agent_account(from), -amount, None),
                (agent_account(to), amount, None),
            ],
        },
    )?;
    Ok((tx, true))
}

/// Records a departure and applies the leaver rules: unvested tokens (and, for cause,
/// tokens minted for non-cash contributions) are burned. Returns the amount forfeited.
pub fn depart(
    conn: &mut AnyConnection,
    network_id: &str,
    agent: &str,
    reason: &str,
    for_cause: bool,
    actor: &str,
) -> Result<Decimal, ApiError> {
    db::equations::lock_network(conn, network_id)?;
    if db::ledger::departure(conn, network_id, agent)?.is_some() {
        return Err(ApiError::Conflict(
            "this member's departure is already recorded".into(),
        ));
    }
    let at = now();
    let mut forfeit = Decimal::ZERO;
    if let Some(a) = active(conn, network_id)? {
        let rules = a.rules.unwrap_or(TokenRules {
            mint_on: MintOn::Never,
            per_unit: "1".into(),
            transferable: false,
            vesting: None,
            redeem_per_unit_paid: None,
            leaver: Default::default(),
        });
        let h = holding(conn, network_id, agent, at)?;
        if rules.leaver.forfeit_unvested {
            forfeit += h.unvested;
        }
        if for_cause && rules.leaver.for_cause_forfeits_non_cash {
            forfeit += vested_non_cash(conn, network_id, agent, at)?;
        }
        forfeit = forfeit.min(h.total);
        if forfeit > Decimal::ZERO {
            post(
                conn,
                Posting {
                    network_id,
                    kind: TxKind::Burn,
                    cause_type: "departure",
                    cause_id: agent,
                    reverses: None,
                    reason: format!(
                        "leaver ({}): {reason}",
                        if for_cause { "for cause" } else { "no fault" }
                    ),
                    actor,
                    legs: vec![
                        (agent_account(agent), -forfeit, None),
                        (REDEMPTION.into(), forfeit, None),
                    ],
                },
            )?;
        }
    }
    db::ledger::insert_departure(
        conn,
        &db::rows::DepartureRow {
            network_id: network_id.into(),
            agent_id: agent.into(),
            reason: reason.into(),
            for_cause,
            recorded_by: actor.into(),
            recorded_at: at,
        },
    )?;
    let body = serde_json::json!({ "agent_id": agent, "reason": reason, "for_cause": for_cause, "forfeited": forfeit.to_string() });
    crate::journal::record(conn, network_id, Some(actor), "member.departed", body)?;
    Ok(forfeit)
}

/// The vested part of tokens minted to `agent` for non-cash contributions (not reversed).
fn vested_non_cash(
    conn: &mut AnyConnection,
    network_id: &str,
    agent: &str,
    at: NaiveDateTime,
) -> Result<Decimal, ApiError> {
    let account = agent_account(agent);
    let txs = db::ledger::transactions(conn, network_id)?;
    let mints: Vec<&TxRow> = txs
        .iter()
        .filter(|t| t.kind == "mint" && t.cause_type == "contribution")
        .collect();
    let ids: Vec<String> = mints.iter().map(|t| t.cause_id.clone()).collect();
    let cash: HashSet<String> = db::contributions::existing(conn, network_id, &ids)?
        .into_iter()
        .filter(|c| c.kind == Kind::Cash.as_str())
        .map(|c| c.id)
        .collect();
    let reversed = db::ledger::reversals(
        conn,
        &mints.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
    )?;
    let t = DateTime::<Utc>::from_naive_utc_and_offset(at, Utc);
    let mut total = Decimal::ZERO;
    for m in mints
        .into_iter()
        .filter(|m| !cash.contains(&m.cause_id) && !reversed.contains_key(&m.id))
    {
        for e in db::ledger::entries_of(conn, &m.id)?
            .into_iter()
            .filter(|e| e.account == account)
        {
            let utc = |n: NaiveDateTime| DateTime::<Utc>::from_naive_utc_and_offset(n, Utc);
            total += match (e.vest_cliff, e.vest_end) {
                (Some(c), Some(end)) => Schedule {
                    start: utc(e.created_at),
                    cliff: utc(c),
                    end: utc(end),
                }
                .vested(e.amount_minor.0, t),
                _ => e.amount_minor.0,
            };
        }
    }
    Ok(total)
}

/// Checks a network's whole ledger (see [`ledger::check`]).
pub fn check(conn: &mut AnyConnection, network_id: &str) -> Result<Vec<String>, ApiError> {
    let txs = db::ledger::transactions(conn, network_id)?;
    let entries = db::ledger::entries(conn, network_id)?;
    let cached: BTreeMap<String, Decimal> = db::ledger::balances(conn, network_id)?
        .into_iter()
        .map(|b| (b.account, b.balance_minor.0))
        .collect();
    let contribution_ids: Vec<String> = txs
        .iter()
        .filter(|t| t.cause_type == "contribution")
        .map(|t| t.cause_id.clone())
        .collect();
    let known_contributions: HashSet<String> =
        db::contributions::existing(conn, network_id, &contribution_ids)?
            .into_iter()
            .map(|c| c.id)
            .collect();
    let line_ids: HashSet<String> = db::distributions::line_ids(conn, network_id)?
        .into_iter()
        .collect();
    let mut by_kind: HashMap<&str, TxKind> = HashMap::new();
    for k in [
        TxKind::Mint,
        TxKind::Transfer,
        TxKind::Burn,
        TxKind::Reversal,
        TxKind::VestingRelease,
    ] {
        by_kind.insert(k.as_str(), k);
    }
    let ltxs: Vec<ledger::Tx> = txs
        .iter()
        .map(|t| ledger::Tx {
            id: t.id.clone(),
            kind: by_kind
                .get(t.kind.as_str())
                .copied()
                .unwrap_or(TxKind::Transfer),
            cause: format!("{}:{}", t.cause_type, t.cause_id),
            cause_exists: match t.cause_type.as_str() {
                "contribution" => known_contributions.contains(&t.cause_id),
                "line" => line_ids.contains(&t.cause_id),
                _ => true,
            },
        })
        .collect();
    let lentries: Vec<ledger::Entry> = entries
        .into_iter()
        .map(|e| ledger::Entry {
            tx: e.transaction_id,
            account: e.account,
            amount: e.amount_minor.0,
        })
        .collect();
    Ok(ledger::check(&ltxs, &lentries, &cached))
}

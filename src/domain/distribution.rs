//! Splitting one income amount through an equation's buckets (DESIGN.md, part 2).
//!
//! Pure: given the compiled equation, the counted contributions with their weighted values,
//! and what earlier distributions paid (per bucket and agent, per bucket and claim), it
//! returns lines that sum exactly to the amount. What a bucket cannot place, and what the
//! percentages leave unassigned, goes to the equation's leftover target as lines of its own.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::{Decimal, MathematicalOps as _, RoundingStrategy};

use super::allocation::{self, whole_text, AllocError};
use super::contribution::Kind;
use super::equation::{Claim, Compiled, Leftover, Policy, Pool, ShareType, Target, WEIGHT_DIGITS};

/// A total per agent, keyed by agent id (hashed with foldhash: these maps are filled once per
/// counted contribution).
pub type ByAgent = foldhash::HashMap<String, Decimal>;

/// A counted contribution with its weighted value.
#[derive(Debug, Clone)]
pub struct Weighed {
    /// Contribution id.
    pub id: String,
    /// Whose.
    pub agent_id: String,
    /// Kind.
    pub kind: Kind,
    /// Tags.
    pub tags: Vec<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Weighted value.
    pub value: Decimal,
}

/// What earlier distributions paid, in minor units.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// (bucket, agent) → paid.
    pub paid: HashMap<(String, String), Decimal>,
    /// (bucket, contribution) → paid on that claim.
    pub claims: HashMap<(String, String), Decimal>,
}

/// Who a line pays.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recipient {
    /// A member.
    Agent(String),
    /// A named account.
    Account(String),
}

/// One line of a distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Bucket name (`unallocated` for what the percentages leave).
    pub bucket: String,
    /// Who is paid.
    pub recipient: Recipient,
    /// The weight it was allocated by (0 for whole and leftover lines).
    pub weight: Decimal,
    /// Its exact share in minor units (18 digits after the point).
    pub exact_share: String,
    /// Amount in minor units.
    pub amount: Decimal,
    /// Is this what a bucket could not place?
    pub leftover: bool,
}

/// A payment on one claim (debt, once and fifo pools), for the claim's outstanding balance.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimPayment {
    /// Bucket name.
    pub bucket: String,
    /// The contribution the claim comes from.
    pub contribution_id: String,
    /// Paid now, in minor units.
    pub amount: Decimal,
}

/// A computed distribution.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Lines, in bucket order, then recipient order.
    pub lines: Vec<Line>,
    /// Claim payments.
    pub claims: Vec<ClaimPayment>,
}

/// Why a distribution cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistError(pub String);

impl From<AllocError> for DistError {
    fn from(e: AllocError) -> Self {
        DistError(format!("allocation failed: {e:?}"))
    }
}

fn in_pool(pool: &Pool, c: &Weighed) -> bool {
    pool.kinds.as_ref().is_none_or(|k| k.contains(&c.kind))
        && pool
            .tags
            .as_ref()
            .is_none_or(|t| c.tags.iter().any(|x| t.contains(x)))
        && pool.from.is_none_or(|f| c.occurred_at >= f)
        && pool.to.is_none_or(|t| c.occurred_at < t)
}

fn round_weight(d: Decimal) -> Decimal {
    d.max(Decimal::ZERO)
        .round_dp_with_strategy(WEIGHT_DIGITS, RoundingStrategy::ToZero)
        .normalize()
}

fn checked(v: Option<Decimal>, what: &str) -> Result<Decimal, DistError> {
    v.ok_or_else(|| DistError(format!("{what} overflows")))
}

/// Allocates `budget` among agents by weight; returns (lines, placed).
fn by_agent(
    bucket: &str,
    budget: Decimal,
    weights: &BTreeMap<String, Decimal>,
    salt: &str,
) -> Result<Vec<Line>, DistError> {
    let agents: Vec<&String> = weights.keys().collect();
    let ws: Vec<Decimal> = weights.values().copied().collect();
    let keys: Vec<&[u8]> = agents.iter().map(|a| a.as_bytes()).collect();
    let parts = allocation::allocate(budget, &ws, &keys, format!("{salt}/{bucket}").as_bytes())?;
    Ok(parts
        .into_iter()
        .map(|p| Line {
            bucket: bucket.to_owned(),
            recipient: Recipient::Agent(agents[p.index].clone()),
            weight: ws[p.index],
            exact_share: p.exact_share,
            amount: p.amount,
            leftover: false,
        })
        .collect())
}

/// Splits an agent's amount among its claims by weight (for bookkeeping of claim balances).
fn split_claims(
    bucket: &str,
    amount: Decimal,
    claims: &[(String, Decimal)],
    salt: &str,
) -> Result<Vec<ClaimPayment>, DistError> {
    if claims.iter().all(|(_, w)| w.is_zero()) {
        return Ok(claims
            .iter()
            .map(|(id, _)| ClaimPayment {
                bucket: bucket.into(),
                contribution_id: id.clone(),
                amount: Decimal::ZERO,
            })
            .collect());
    }
    let ws: Vec<Decimal> = claims.iter().map(|(_, w)| *w).collect();
    let keys: Vec<&[u8]> = claims.iter().map(|(id, _)| id.as_bytes()).collect();
    let parts = allocation::allocate(
        amount,
        &ws,
        &keys,
        format!("{salt}/{bucket}/claims").as_bytes(),
    )?;
    Ok(parts
        .into_iter()
        .map(|p| ClaimPayment {
            bucket: bucket.into(),
            contribution_id: claims[p.index].0.clone(),
            amount: p.amount,
        })
        .collect())
}

struct Ctx<'a> {
    eq: &'a Compiled,
    history: &'a History,
    salt: &'a str,
    scale: u32,
}

/// A counted contribution as a claim in a debt, once or fifo pool.
#[derive(Debug, Clone)]
struct ClaimIn {
    id: String,
    agent_id: String,
    occurred_at: DateTime<Utc>,
    value: Decimal,
}

/// What one pool has gathered of the contributions so far.
#[derive(Debug)]
enum Gathered {
    /// Per agent: its weight (pro-rata equity, immediate, recent, equal) or its value
    /// (balanced, whose weights need the history).
    PerAgent(ByAgent),
    /// One claim per contribution (debt, once, fifo).
    Claims(Vec<ClaimIn>),
}

/// Adds `w` to `agent`'s total (allocating its key only the first time).
pub fn add_to(map: &mut ByAgent, agent: &str, w: Decimal, what: &str) -> Result<(), DistError> {
    match map.get_mut(agent) {
        Some(e) => *e = checked(e.checked_add(w), what)?,
        None => {
            map.insert(agent.to_owned(), w);
        }
    }
    Ok(())
}

/// The counted contributions folded, one at a time, into what each pool of an equation
/// needs: a total per agent, or a claim per contribution in debt, once and fifo pools. A
/// distribution is computed from this, so it never holds every contribution at once.
#[derive(Debug)]
pub struct Gatherer<'a> {
    eq: &'a Compiled,
    cutoff: DateTime<Utc>,
    /// Per bucket, what its pool gathered (None for a bucket paid to a named target).
    pools: Vec<Option<Gathered>>,
    /// Per bucket, a `recent` pool's factor (1 − discount)^age by age in periods, computed
    /// once per age rather than once per contribution.
    factors: Vec<foldhash::HashMap<i64, Decimal>>,
}

impl<'a> Gatherer<'a> {
    /// Nothing gathered yet; contributions after `cutoff` will not count.
    pub fn new(eq: &'a Compiled, cutoff: DateTime<Utc>) -> Self {
        let pools = eq
            .source
            .buckets
            .iter()
            .map(|b| match (&b.to, &b.pool) {
                (None, Some(pool)) => Some(match pool.policy {
                    Policy::ProRata {
                        claim: Claim::Debt | Claim::Once,
                        ..
                    }
                    | Policy::Fifo { .. } => Gathered::Claims(Vec::new()),
                    _ => Gathered::PerAgent(ByAgent::default()),
                }),
                _ => None,
            })
            .collect();
        let factors = eq
            .source
            .buckets
            .iter()
            .map(|_| Default::default())
            .collect();
        Gatherer {
            eq,
            cutoff,
            pools,
            factors,
        }
    }

    /// Adds one counted contribution to every pool it belongs to.
    pub fn add(&mut self, c: &Weighed) -> Result<(), DistError> {
        if c.occurred_at > self.cutoff {
            return Ok(());
        }
        let buckets = self.eq.source.buckets.iter().zip(self.pools.iter_mut());
        let buckets = buckets.zip(self.factors.iter_mut());
        for (i, ((bucket, gathered), factors)) in buckets.enumerate() {
            let (Some(pool), Some(gathered)) = (&bucket.pool, gathered) else {
                continue;
            };
            if !in_pool(pool, c) {
                continue;
            }
            let map = match gathered {
                Gathered::Claims(claims) => {
                    claims.push(ClaimIn {
                        id: c.id.clone(),
                        agent_id: c.agent_id.clone(),
                        occurred_at: c.occurred_at,
                        value: c.value,
                    });
                    continue;
                }
                Gathered::PerAgent(map) => map,
            };
            match &pool.policy {
                Policy::Immediate {
                    period_days,
                    periods,
                } => {
                    let days = i64::from(*period_days) * i64::from(*periods);
                    if c.occurred_at > self.cutoff - Duration::days(days) {
                        add_to(map, &c.agent_id, c.value, "a pool weight")?;
                    }
                }
                Policy::Recent { period_days, .. } => {
                    let keep = Decimal::ONE - self.eq.params[i].discount;
                    let age =
                        (self.cutoff - c.occurred_at).num_days().max(0) / i64::from(*period_days);
                    let factor = *factors
                        .entry(age)
                        .or_insert_with(|| keep.checked_powi(age).unwrap_or(Decimal::ZERO));
                    let w = checked(c.value.checked_mul(factor), "a recent weight")?;
                    add_to(map, &c.agent_id, round_weight(w), "a pool weight")?;
                }
                Policy::Equal => {
                    if !c.value.is_zero() && !map.contains_key(&c.agent_id) {
                        map.insert(c.agent_id.clone(), Decimal::ONE);
                    }
                }
                Policy::Balanced => add_to(map, &c.agent_id, c.value, "a value total")?,
                Policy::ProRata { .. } | Policy::Fifo { .. } => {
                    add_to(map, &c.agent_id, c.value, "a pool weight")?;
                }
            }
        }
        Ok(())
    }

    /// Splits `amount` (whole minor units of a currency with `scale` digits) over what was
    /// gathered, given what earlier distributions paid.
    pub fn distribute(
        mut self,
        amount: Decimal,
        scale: u32,
        history: &History,
        salt: &str,
    ) -> Result<Outcome, DistError> {
        if amount.is_sign_negative() || amount.fract() != Decimal::ZERO {
            return Err(DistError(
                "the amount must be a whole, non-negative number of minor units".into(),
            ));
        }
        let eq = self.eq;
        let ctx = Ctx {
            eq,
            history,
            salt,
            scale,
        };
        let leftover_to = leftover_recipient(eq);
        let mut out = Outcome::default();
        let mut budgets_total = Decimal::ZERO;
        for (i, bucket) in eq.source.buckets.iter().enumerate() {
            let base = match bucket.share {
                ShareType::Straight => amount,
                ShareType::Remaining => amount - budgets_total,
            };
            let budget = allocation::mul_div_floor(base, eq.percents[i], Decimal::ONE_HUNDRED)?;
            budgets_total += budget;
            let gathered = self.pools.get_mut(i).and_then(Option::take);
            let (lines, claims) = match (&bucket.to, &bucket.pool, gathered) {
                (Some(t), _, _) => {
                    let r = match t {
                        Target::Agent(a) => Recipient::Agent(a.to_string()),
                        Target::Account(n) => Recipient::Account(n.clone()),
                    };
                    let line = Line {
                        bucket: bucket.name.clone(),
                        recipient: r,
                        weight: Decimal::ONE,
                        exact_share: whole_text(budget),
                        amount: budget,
                        leftover: false,
                    };
                    (vec![line], Vec::new())
                }
                (None, Some(pool), Some(gathered)) => {
                    pool_lines(&ctx, i, &bucket.name, pool, budget, gathered)?
                }
                _ => (Vec::new(), Vec::new()),
            };
            let placed: Decimal = lines.iter().map(|l| l.amount).sum();
            if placed > budget {
                return Err(DistError(format!(
                    "bucket {} placed more than its budget",
                    bucket.name
                )));
            }
            out.lines.extend(
                lines
                    .into_iter()
                    .filter(|l| !l.amount.is_zero() || !l.weight.is_zero()),
            );
            out.claims.extend(claims);
            if placed < budget {
                let rest = budget - placed;
                out.lines.push(Line {
                    bucket: bucket.name.clone(),
                    recipient: leftover_to.clone(),
                    weight: Decimal::ZERO,
                    exact_share: whole_text(rest),
                    amount: rest,
                    leftover: true,
                });
            }
        }
        if budgets_total < amount {
            let rest = amount - budgets_total;
            out.lines.push(Line {
                bucket: "unallocated".into(),
                recipient: leftover_to,
                weight: Decimal::ZERO,
                exact_share: whole_text(rest),
                amount: rest,
                leftover: true,
            });
        }
        let total: Decimal = out.lines.iter().map(|l| l.amount).sum();
        if total != amount {
            return Err(DistError(format!("lines sum to {total}, not {amount}")));
        }
        Ok(out)
    }
}

/// A balanced pool's weights: each agent's value share of everything this pool has paid
/// plus `budget`, less what the agent was already paid by it (never below zero).
fn balanced_weights(
    ctx: &Ctx<'_>,
    name: &str,
    budget: Decimal,
    values: ByAgent,
) -> Result<BTreeMap<String, Decimal>, DistError> {
    let mut weights = BTreeMap::new();
    let total_value: Decimal = values
        .values()
        .try_fold(Decimal::ZERO, |a, v| a.checked_add(*v))
        .unwrap_or(Decimal::MAX);
    if total_value.is_zero() {
        return Ok(weights);
    }
    let paid = |a: &str| {
        ctx.history
            .paid
            .get(&(name.to_owned(), a.to_owned()))
            .copied()
            .unwrap_or_default()
    };
    let total_paid = values
        .keys()
        .try_fold(Decimal::ZERO, |s, a| s.checked_add(paid(a)));
    let pot = checked(
        total_paid.and_then(|p| p.checked_add(budget)),
        "balanced target",
    )?;
    for (agent, v) in values {
        let target = checked(
            pot.checked_mul(v).and_then(|x| x.checked_div(total_value)),
            "balanced target",
        )?;
        let weight = round_weight(target - paid(&agent));
        weights.insert(agent, weight);
    }
    Ok(weights)
}

/// Places `budget` in a pool; returns the lines and claim payments (what is not placed is
/// the caller's leftover).
fn pool_lines(
    ctx: &Ctx<'_>,
    index: usize,
    name: &str,
    pool: &Pool,
    budget: Decimal,
    gathered: Gathered,
) -> Result<(Vec<Line>, Vec<ClaimPayment>), DistError> {
    let mut weights: BTreeMap<String, Decimal> = match gathered {
        Gathered::Claims(claims) => return claim_lines(ctx, index, name, pool, budget, &claims),
        Gathered::PerAgent(values) if matches!(pool.policy, Policy::Balanced) => {
            balanced_weights(ctx, name, budget, values)?
        }
        Gathered::PerAgent(weights) => weights.into_iter().collect(),
    };
    weights.retain(|_, w| !w.is_zero());
    if weights.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    Ok((by_agent(name, budget, &weights, ctx.salt)?, Vec::new()))
}

/// Debt, once and fifo pools: claims per contribution with outstanding balances.
fn claim_lines(
    ctx: &Ctx<'_>,
    index: usize,
    name: &str,
    pool: &Pool,
    budget: Decimal,
    members: &[ClaimIn],
) -> Result<(Vec<Line>, Vec<ClaimPayment>), DistError> {
    let params = &ctx.eq.params[index];
    let paid = |id: &str| {
        ctx.history
            .claims
            .get(&(name.to_owned(), id.to_owned()))
            .copied()
    };
    let minor = Decimal::from(10u64.pow(ctx.scale.min(18)));
    // (contribution, agent, weight-or-outstanding, occurred_at)
    let mut claims: Vec<(&ClaimIn, Decimal)> = Vec::new();
    for c in members {
        let w = match &pool.policy {
            Policy::ProRata {
                claim: Claim::Once, ..
            } => {
                if paid(&c.id).is_some() {
                    continue;
                }
                c.value
            }
            _ => {
                let per_value = if matches!(pool.policy, Policy::Fifo { .. }) {
                    Decimal::ONE
                } else {
                    params.payback
                };
                let claim = checked(
                    c.value
                        .checked_mul(per_value)
                        .and_then(|x| x.checked_mul(params.unit_value))
                        .and_then(|x| x.checked_mul(minor)),
                    "a claim",
                )?
                .trunc();
                (claim - paid(&c.id).unwrap_or_default()).max(Decimal::ZERO)
            }
        };
        claims.push((c, w));
    }
    let mut payments: Vec<ClaimPayment> = Vec::new();
    let mut per_agent: BTreeMap<String, Decimal> = BTreeMap::new();
    if let Policy::Fifo { .. } = pool.policy {
        claims.sort_by(|a, b| {
            a.0.occurred_at
                .cmp(&b.0.occurred_at)
                .then_with(|| a.0.id.cmp(&b.0.id))
        });
        let mut left = budget;
        for (c, outstanding) in claims {
            let pay = outstanding.min(left);
            if pay.is_zero() {
                continue;
            }
            left -= pay;
            payments.push(ClaimPayment {
                bucket: name.into(),
                contribution_id: c.id.clone(),
                amount: pay,
            });
            *per_agent.entry(c.agent_id.clone()).or_insert(Decimal::ZERO) += pay;
        }
        let lines = per_agent
            .into_iter()
            .map(|(a, amount)| Line {
                bucket: name.into(),
                recipient: Recipient::Agent(a),
                weight: amount,
                exact_share: whole_text(amount),
                amount,
                leftover: false,
            })
            .collect();
        return Ok((lines, payments));
    }
    let mut by_agent_claims: BTreeMap<String, Vec<(String, Decimal)>> = BTreeMap::new();
    for (c, w) in &claims {
        by_agent_claims
            .entry(c.agent_id.clone())
            .or_default()
            .push((c.id.clone(), *w));
    }
    let mut weights: BTreeMap<String, Decimal> = BTreeMap::new();
    for (a, cs) in &by_agent_claims {
        let total = cs
            .iter()
            .try_fold(Decimal::ZERO, |s, (_, w)| s.checked_add(*w));
        weights.insert(a.clone(), checked(total, "an agent's claims")?);
    }
    let total_weight = weights
        .values()
        .try_fold(Decimal::ZERO, |s, w| s.checked_add(*w));
    let total_weight = checked(total_weight, "the claims")?;
    if total_weight.is_zero() {
        // Still record "once" claims as seen, so they are not paid later.
        return Ok((Vec::new(), Vec::new()));
    }
    let is_debt = matches!(
        pool.policy,
        Policy::ProRata {
            claim: Claim::Debt,
            ..
        }
    );
    let lines = if is_debt && total_weight <= budget {
        // Everything outstanding is repaid in full; the rest is leftover (never beyond).
        weights
            .iter()
            .filter(|(_, w)| !w.is_zero())
            .map(|(a, w)| Line {
                bucket: name.into(),
                recipient: Recipient::Agent(a.clone()),
                weight: *w,
                exact_share: whole_text(*w),
                amount: *w,
                leftover: false,
            })
            .collect()
    } else {
        weights.retain(|_, w| !w.is_zero());
        by_agent(name, budget, &weights, ctx.salt)?
    };
    for line in &lines {
        if let Recipient::Agent(a) = &line.recipient {
            let cs = by_agent_claims
                .get(a)
                .map(Vec::as_slice)
                .unwrap_or_default();
            payments.extend(split_claims(name, line.amount, cs, ctx.salt)?);
        }
    }
    Ok((lines, payments))
}

/// Where leftovers go.
pub fn leftover_recipient(eq: &Compiled) -> Recipient {
    match &eq.source.leftover {
        Leftover::Retain => Recipient::Account("retained".into()),
        Leftover::Account { account } => Recipient::Account(account.clone()),
    }
}

/// Splits `amount` (whole minor units of a currency with `scale` digits) under `eq`.
pub fn distribute(
    eq: &Compiled,
    amount: Decimal,
    scale: u32,
    contributions: &[Weighed],
    history: &History,
    cutoff: DateTime<Utc>,
    salt: &str,
) -> Result<Outcome, DistError> {
    let mut gathered = Gatherer::new(eq, cutoff);
    for c in contributions {
        gathered.add(c)?;
    }
    gathered.distribute(amount, scale, history, salt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::equation::ValueEquation;
    use crate::domain::presets;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    fn day(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + n * 86_400, 0).expect("time")
    }

    fn w(id: &str, agent: &str, value: &str, at: i64) -> Weighed {
        Weighed {
            id: id.into(),
            agent_id: agent.into(),
            kind: Kind::Work,
            tags: vec![],
            occurred_at: day(at),
            value: d(value),
        }
    }

    fn eq(json: serde_json::Value) -> Compiled {
        serde_json::from_value::<ValueEquation>(json)
            .expect("equation")
            .compile()
            .expect("compiles")
    }

    fn amounts(o: &Outcome) -> Vec<(String, String, Decimal)> {
        o.lines
            .iter()
            .map(|l| {
                let r = match &l.recipient {
                    Recipient::Agent(a) | Recipient::Account(a) => a.clone(),
                };
                (l.bucket.clone(), r, l.amount)
            })
            .collect()
    }

    #[test]
    fn sensorica_worked_example() {
        // 1,000.00 EUR = 100,000 cents: reserve 10% = 10,000; the rest by hours × skill rate.
        let e = (presets::find("sensorica").expect("preset").equation)()
            .compile()
            .expect("compiles");
        let facts =
            |id: &str, agent: &str, hours: &str, skill: &str| crate::domain::equation::Facts {
                id: id.into(),
                agent_id: agent.into(),
                kind: Kind::Work,
                quantity: d(hours),
                unit: "hours".into(),
                skill: Some(skill.into()),
                tags: vec![],
                occurred_at: day(1),
            };
        let cs: Vec<Weighed> = [
            facts("c1", "ada", "10", "design"),
            facts("c2", "bob", "20", "fabrication"),
            facts("c3", "cy", "6", "sweeping"),
        ]
        .iter()
        .map(|f| Weighed {
            id: f.id.clone(),
            agent_id: f.agent_id.clone(),
            kind: f.kind,
            tags: vec![],
            occurred_at: f.occurred_at,
            value: e.weigh(f, day(10)).expect("weighs"),
        })
        .collect();
        assert_eq!(
            cs.iter().map(|c| c.value).collect::<Vec<_>>(),
            vec![d("15"), d("24"), d("6")]
        );
        let o = distribute(
            &e,
            d("100000"),
            2,
            &cs,
            &History::default(),
            day(10),
            "dist",
        )
        .expect("ok");
        assert_eq!(
            amounts(&o),
            vec![
                ("reserve".into(), "reserve".into(), d("10000")),
                ("contributors".into(), "ada".into(), d("30000")),
                ("contributors".into(), "bob".into(), d("48000")),
                ("contributors".into(), "cy".into(), d("12000")),
            ]
        );
    }

    #[test]
    fn balanced_pays_the_underpaid_first() {
        let e = eq(
            serde_json::json!({ "buckets": [{ "name": "b", "share": "straight", "percent": "100", "pool": { "policy": { "type": "balanced" } } }] }),
        );
        let mut h = History::default();
        h.paid.insert(("b".into(), "ada".into()), d("100"));
        // Equal value; Ada already got 100: target (100 + 100) / 2 = 100 each, so Bob gets it all.
        let o = distribute(
            &e,
            d("100"),
            2,
            &[w("1", "ada", "1", 1), w("2", "bob", "1", 1)],
            &h,
            day(5),
            "s",
        )
        .expect("ok");
        assert_eq!(amounts(&o), vec![("b".into(), "bob".into(), d("100"))]);
        // Budget 300: pot 400, targets 200 each; needs 100 and 200 → 100 and 200.
        let o = distribute(
            &e,
            d("300"),
            2,
            &[w("1", "ada", "1", 1), w("2", "bob", "1", 1)],
            &h,
            day(5),
            "s",
        )
        .expect("ok");
        assert_eq!(
            amounts(&o),
            vec![
                ("b".into(), "ada".into(), d("100")),
                ("b".into(), "bob".into(), d("200"))
            ]
        );
        // Ada with three times Bob's value: pot 500, targets 375 and 125; needs 275, 125 of 400.
        let o = distribute(
            &e,
            d("400"),
            2,
            &[w("1", "ada", "3", 1), w("2", "bob", "1", 1)],
            &h,
            day(5),
            "s",
        )
        .expect("ok");
        assert_eq!(
            amounts(&o),
            vec![
                ("b".into(), "ada".into(), d("275")),
                ("b".into(), "bob".into(), d("125"))
            ]
        );
    }

    #[test]
    fn immediate_and_recent_windows() {
        let imm = eq(
            serde_json::json!({ "buckets": [{ "name": "i", "share": "straight", "percent": "100", "pool": { "policy": { "type": "immediate", "period_days": 7, "periods": 1 } } }] }),
        );
        let cs = [w("1", "ada", "5", 1), w("2", "bob", "5", 9)];
        let o = distribute(&imm, d("50"), 2, &cs, &History::default(), day(10), "s").expect("ok");
        assert_eq!(
            amounts(&o),
            vec![("i".into(), "bob".into(), d("50"))],
            "only the last 7 days count"
        );
        let rec = eq(
            serde_json::json!({ "buckets": [{ "name": "r", "share": "straight", "percent": "100", "pool": { "policy": { "type": "recent", "period_days": 7, "discount": "0.5" } } }] }),
        );
        // Ada's is 8 days old (one period: ×0.5), Bob's 1 day: weights 2 and 4 → 30 and 60.
        let cs = [w("1", "ada", "4", 2), w("2", "bob", "4", 9)];
        let o = distribute(&rec, d("90"), 2, &cs, &History::default(), day(10), "s").expect("ok");
        assert_eq!(
            amounts(&o),
            vec![
                ("r".into(), "ada".into(), d("30")),
                ("r".into(), "bob".into(), d("60"))
            ]
        );
    }

    #[test]
    fn debt_is_never_overpaid_and_leftover_is_its_own_line() {
        let e = eq(serde_json::json!({
            "buckets": [{ "name": "loans", "share": "straight", "percent": "100",
                          "pool": { "policy": { "type": "pro_rata", "claim": "debt", "payback_multiplier": "2" } } }],
            "leftover": { "type": "account", "account": "treasury" }
        }));
        // Claims: 30 × 2 = 60.00 (6000 cents) and 10 × 2 = 20.00 (2000). Budget 100.00.
        let cs = [w("c1", "ada", "30", 1), w("c2", "bob", "10", 1)];
        let o = distribute(&e, d("10000"), 2, &cs, &History::default(), day(5), "s").expect("ok");
        assert_eq!(
            amounts(&o),
            vec![
                ("loans".into(), "ada".into(), d("6000")),
                ("loans".into(), "bob".into(), d("2000")),
                ("loans".into(), "treasury".into(), d("2000"))
            ]
        );
        assert!(o.lines[2].leftover);
        // With both repaid, the next income is all leftover.
        let mut h = History::default();
        for c in &o.claims {
            h.claims
                .insert((c.bucket.clone(), c.contribution_id.clone()), c.amount);
        }
        let o2 = distribute(&e, d("5000"), 2, &cs, &h, day(6), "t").expect("ok");
        assert_eq!(
            amounts(&o2),
            vec![("loans".into(), "treasury".into(), d("5000"))]
        );
        // A smaller budget is split pro rata by outstanding: 6000:2000 of 4000 → 3000 and 1000.
        let o3 = distribute(&e, d("4000"), 2, &cs, &History::default(), day(5), "u").expect("ok");
        assert_eq!(
            amounts(&o3),
            vec![
                ("loans".into(), "ada".into(), d("3000")),
                ("loans".into(), "bob".into(), d("1000"))
            ]
        );
    }

    #[test]
    fn fifo_once_and_equal() {
        let fifo = eq(
            serde_json::json!({ "buckets": [{ "name": "f", "share": "straight", "percent": "100", "pool": { "policy": { "type": "fifo" } } }] }),
        );
        // Claims 5.00 (oldest, bob) and 5.00 (ada); 7.00 pays bob in full, then 2.00 to ada.
        let cs = [w("c1", "ada", "5", 3), w("c2", "bob", "5", 1)];
        let o = distribute(&fifo, d("700"), 2, &cs, &History::default(), day(5), "s").expect("ok");
        assert_eq!(
            amounts(&o),
            vec![
                ("f".into(), "ada".into(), d("200")),
                ("f".into(), "bob".into(), d("500"))
            ]
        );
        let once = eq(
            serde_json::json!({ "buckets": [{ "name": "o", "share": "straight", "percent": "100", "pool": { "policy": { "type": "pro_rata", "claim": "once" } } }] }),
        );
        let o = distribute(&once, d("100"), 2, &cs, &History::default(), day(5), "s").expect("ok");
        let mut h = History::default();
        for c in &o.claims {
            h.claims
                .insert((c.bucket.clone(), c.contribution_id.clone()), c.amount);
        }
        let o2 = distribute(&once, d("100"), 2, &cs, &h, day(6), "t").expect("ok");
        assert_eq!(
            amounts(&o2),
            vec![("o".into(), "retained".into(), d("100"))],
            "each claim is paid once"
        );
        let equal = eq(
            serde_json::json!({ "buckets": [{ "name": "e", "share": "straight", "percent": "50", "pool": { "policy": { "type": "equal" } } }] }),
        );
        let o = distribute(
            &equal,
            d("100"),
            2,
            &[w("1", "ada", "9", 1), w("2", "bob", "1", 1)],
            &History::default(),
            day(5),
            "s",
        )
        .expect("ok");
        assert_eq!(
            amounts(&o),
            vec![
                ("e".into(), "ada".into(), d("25")),
                ("e".into(), "bob".into(), d("25")),
                ("unallocated".into(), "retained".into(), d("50"))
            ]
        );
    }

    #[test]
    fn overcommitted_percentages_are_refused() {
        let bad = serde_json::from_value::<ValueEquation>(serde_json::json!({ "buckets": [
            { "name": "a", "share": "straight", "percent": "60", "to": { "account": "x" } },
            { "name": "b", "share": "straight", "percent": "50", "to": { "account": "y" } }
        ] }))
        .expect("parses")
        .compile();
        assert_eq!(
            bad.err().map(|e| e.field),
            Some("buckets[1].percent".to_owned())
        );
    }

    proptest! {
        #[test]
        fn lines_sum_exactly_and_order_does_not_matter(
            amount in 0u64..1_000_000_000_000u64,
            values in proptest::collection::vec((0usize..6, 0u32..100_000u32, 0i64..60), 0..30),
            policy in 0usize..4,
        ) {
            let policies = [
                serde_json::json!({ "type": "pro_rata", "claim": "equity" }),
                serde_json::json!({ "type": "balanced" }),
                serde_json::json!({ "type": "recent", "period_days": 7, "discount": "0.1" }),
                serde_json::json!({ "type": "pro_rata", "claim": "debt" }),
            ];
            let e = eq(serde_json::json!({ "buckets": [
                { "name": "r", "share": "straight", "percent": "12.5", "to": { "account": "reserve" } },
                { "name": "p", "share": "remaining", "percent": "90", "pool": { "policy": policies[policy] } }
            ] }));
            let cs: Vec<Weighed> = values.iter().enumerate()
                .map(|(i, (a, v, t))| w(&format!("c{i}"), &format!("agent{a}"), &Decimal::new(i64::from(*v), 2).to_string(), *t))
                .collect();
            let a = Decimal::from(amount);
            let o = distribute(&e, a, 2, &cs, &History::default(), day(60), "salt").expect("ok");
            prop_assert_eq!(o.lines.iter().map(|l| l.amount).sum::<Decimal>(), a);
            prop_assert!(o.lines.iter().all(|l| !l.amount.is_sign_negative()));
            let mut rev = cs.clone();
            rev.reverse();
            let o2 = distribute(&e, a, 2, &rev, &History::default(), day(60), "salt").expect("ok");
            prop_assert_eq!(amounts(&o), amounts(&o2));
        }
    }
}

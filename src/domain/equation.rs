//! The value equation: how contributions become weighted values (part 1) and how income is
//! split through buckets (part 2). Submitted as JSON, checked and compiled here; stored as
//! canonical JSON (sorted keys) whose SHA-256 is the version's content hash.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, MathematicalOps as _, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use super::contribution::{parse_decimal, Kind, Status};
use super::formula::{self, Expr};
use super::ids::AgentId;
use super::FieldError;

/// Most rate rules, buckets and list entries in one equation.
pub const MAX_RULES: usize = 200;
/// Fraction digits kept in a weighted value (rounded toward zero): keeps sums over many
/// contributions inside 28 significant digits.
pub const WEIGHT_DIGITS: u32 = 12;

/// A community's value equation, as submitted and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueEquation {
    /// Rates per unit of quantity, most specific first: (agent, skill, kind) → (skill, kind) →
    /// (kind) → `default_rate`. Each may have a validity period (by the contribution's date).
    #[serde(default)]
    pub rates: Vec<RateRule>,
    /// Rate when no rule matches (decimal string; default "1").
    #[serde(default = "one")]
    pub default_rate: String,
    /// Multiplier per kind (decimal strings; default 1), e.g. Slicing Pie: cash 4, others 2.
    #[serde(default)]
    pub multipliers: BTreeMap<Kind, String>,
    /// A formula per kind replacing quantity × rate × multiplier × decay (variables:
    /// quantity, rate, multiplier, value, decay, hours, age_days; min, max, if).
    #[serde(default)]
    pub formulas: BTreeMap<Kind, String>,
    /// Optional half-life in days, from the contribution's date to the cut-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay_half_life_days: Option<u32>,
    /// Which contributions count.
    #[serde(default)]
    pub counting: Counting,
    /// How many approvals validate a contribution and how many rejections reject it.
    #[serde(default)]
    pub validation: ValidationRules,
    /// Ordered buckets income passes through.
    pub buckets: Vec<Bucket>,
    /// Where what no bucket can place goes.
    #[serde(default)]
    pub leftover: Leftover,
    /// How this equation may be changed.
    #[serde(default)]
    pub governance: Governance,
    /// The network token's rules (minting, transfers, vesting, redemption, leavers); absent:
    /// no tokens are minted and none may be transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenRules>,
}

/// When tokens are minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MintOn {
    /// When a contribution is validated: `per_unit` tokens per unit of its weighted value.
    Validation,
    /// When a distribution is committed: `per_unit` tokens per unit of currency paid to a member.
    Distribution,
    /// Never.
    Never,
}

/// The network token's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRules {
    /// When tokens are minted.
    pub mint_on: MintOn,
    /// Tokens minted per unit (decimal string; default "1").
    #[serde(default = "one")]
    pub per_unit: String,
    /// May members transfer vested tokens to each other?
    #[serde(default)]
    pub transferable: bool,
    /// Optional vesting of minted tokens: nothing before `cliff_days`, linear to `duration_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vesting: Option<VestingRules>,
    /// Tokens burned per unit of currency when a distribution line to a holder is marked paid
    /// (capped at their vested balance); absent: no redemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeem_per_unit_paid: Option<String>,
    /// What happens to a leaver's tokens.
    #[serde(default)]
    pub leaver: LeaverRules,
}

/// Vesting of minted tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VestingRules {
    /// Days before anything vests (0 to duration).
    pub cliff_days: u32,
    /// Days until everything has vested (1-3650).
    pub duration_days: u32,
}

/// Slicing-Pie-style leaver rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaverRules {
    /// Unvested tokens are forfeited (burned) when a member leaves (default true).
    #[serde(default = "yes")]
    pub forfeit_unvested: bool,
    /// On a `for_cause` departure, tokens minted for non-cash contributions are forfeited too,
    /// vested or not (default true).
    #[serde(default = "yes")]
    pub for_cause_forfeits_non_cash: bool,
}

fn yes() -> bool {
    true
}

impl Default for LeaverRules {
    fn default() -> Self {
        Self {
            forfeit_unvested: true,
            for_cause_forfeits_non_cash: true,
        }
    }
}

fn one() -> String {
    "1".into()
}

/// A rate for contributions of a kind (optionally a skill, and an agent with that skill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    /// The kind it applies to.
    pub kind: Kind,
    /// Only this skill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// Only this agent (needs `skill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Value per unit (decimal string).
    pub rate: String,
    /// Applies to contributions on or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    /// Applies to contributions before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
}

/// Which contributions count toward value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Counting {
    /// Statuses that count (default: validated only).
    #[serde(default = "validated_only")]
    pub statuses: Vec<Status>,
    /// Only these kinds (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<Kind>>,
    /// Only contributions with one of these tags (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Only contributions that occurred on or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Only contributions that occurred before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

fn validated_only() -> Vec<Status> {
    vec![Status::Validated]
}

impl Default for Counting {
    fn default() -> Self {
        Self {
            statuses: validated_only(),
            kinds: None,
            tags: None,
            from: None,
            to: None,
        }
    }
}

/// Validation thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationRules {
    /// Approvals that validate a contribution (1-100).
    pub approvals_required: i32,
    /// Rejections that reject it (1-100).
    pub rejections_required: i32,
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self {
            approvals_required: 1,
            rejections_required: 1,
        }
    }
}

/// One bucket: a percentage of the income, to one recipient or a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Unique name (1-40 of a-z, 0-9, `_.:-`); lines and history are kept per bucket name.
    pub name: String,
    /// Percentage of the total (`straight`) or of what earlier buckets left (`remaining`).
    pub share: ShareType,
    /// Percentage, a decimal string from 0 to 100.
    pub percent: String,
    /// Whole bucket to one member or account (exactly one of `to` and `pool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Target>,
    /// A pool split among contributors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,
}

/// How a bucket's percentage is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareType {
    /// Of the whole income.
    Straight,
    /// Of what earlier buckets left.
    Remaining,
}

/// A single recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A member.
    Agent(AgentId),
    /// A named account (a reserve, a maintainers' fund): 1-40 of a-z, 0-9, `_.:-`.
    Account(String),
}

/// A pool: which contributions and how to split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Only these kinds (default all counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<Kind>>,
    /// Only contributions with one of these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Only contributions on or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Only contributions before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// How the pool is split.
    pub policy: Policy,
}

/// How a pool is split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Policy {
    /// By weighted value.
    ProRata {
        /// `equity` (forever), `debt` (until repaid) or `once`.
        claim: Claim,
        /// Debt only: claims are value × multiplier (default "1").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payback_multiplier: Option<String>,
        /// Debt only: currency units per unit of value (default "1").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit_value: Option<String>,
    },
    /// Value in the last `periods` periods of `period_days` days before the cut-off.
    Immediate {
        /// Days in a period (1-366).
        period_days: u32,
        /// How many periods count (1-520).
        periods: u32,
    },
    /// Value discounted by `discount` (0-1) for each whole period of age.
    Recent {
        /// Days in a period (1-366).
        period_days: u32,
        /// Discount per period, a decimal string in [0, 1).
        discount: String,
    },
    /// SourceCred's balanced: pay max(target − paid, 0) pro rata, target = (Σpaid + budget) × value share.
    Balanced,
    /// Equal parts to every contributor in the pool.
    Equal,
    /// Oldest claims first, each up to its outstanding value × `unit_value`.
    Fifo {
        /// Currency units per unit of value (default "1").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit_value: Option<String>,
    },
}

/// A pro-rata claim type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// Paid in every distribution, forever.
    Equity,
    /// Paid until value × payback multiplier is repaid, never beyond.
    Debt,
    /// Paid in one distribution only.
    Once,
}

/// Where what buckets cannot place goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Leftover {
    /// Stays with the network (line to account `retained`).
    #[default]
    Retain,
    /// To a named account.
    Account {
        /// Account name.
        account: String,
    },
}

/// Rules for changing the equation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Governance {
    /// Share of eligible members (members and stewards) who must vote, in percent.
    #[serde(default = "fifty")]
    pub quorum_percent: String,
    /// Share of yes among yes+no votes that must be exceeded, in percent (50: simple majority).
    #[serde(default = "fifty")]
    pub threshold_percent: String,
    /// Voting period in days (1-90).
    #[serde(default = "seven")]
    pub voting_days: u32,
    /// May a steward fast-track a proposal (adopt it without the vote)? Recorded when used.
    #[serde(default)]
    pub steward_fast_track: bool,
}

fn fifty() -> String {
    "50".into()
}
fn seven() -> u32 {
    7
}

impl Default for Governance {
    fn default() -> Self {
        Self {
            quorum_percent: fifty(),
            threshold_percent: fifty(),
            voting_days: 7,
            steward_fast_track: false,
        }
    }
}

/// A checked equation, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The source.
    pub source: ValueEquation,
    /// Canonical JSON.
    pub canonical: String,
    /// SHA-256 of the canonical JSON, hex.
    pub hash: String,
    pub(crate) rates: Vec<(RateRule, Decimal)>,
    pub(crate) default_rate: Decimal,
    pub(crate) multipliers: HashMap<Kind, Decimal>,
    pub(crate) formulas: HashMap<Kind, Expr>,
    /// Bucket percentages, parsed.
    pub percents: Vec<Decimal>,
    /// Per-bucket policy parameters, parsed.
    pub params: Vec<PolicyParams>,
    /// Governance numbers.
    pub quorum: Decimal,
    /// Threshold percent.
    pub threshold: Decimal,
}

/// Parsed numbers of a bucket's policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyParams {
    /// Debt payback multiplier.
    pub payback: Decimal,
    /// Currency units per value unit.
    pub unit_value: Decimal,
    /// Recent discount.
    pub discount: Decimal,
}

fn label(field: &str, raw: &str) -> Result<(), FieldError> {
    let ok = !raw.is_empty()
        && raw.len() <= 40
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 1-40 characters of a-z, 0-9, '_', '.', ':' and '-'",
        ))
    }
}

fn non_negative(field: &str, raw: &str) -> Result<Decimal, FieldError> {
    let d = parse_decimal(field, raw)?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(FieldError::new(field, "must not be negative"));
    }
    Ok(d)
}

fn percent(field: &str, raw: &str) -> Result<Decimal, FieldError> {
    let d = non_negative(field, raw)?;
    if d > Decimal::ONE_HUNDRED {
        return Err(FieldError::new(field, "must be at most 100"));
    }
    Ok(d)
}

impl ValueEquation {
    /// Canonical JSON: the serde form with object keys sorted (serde_json's default map).
    pub fn canonical(&self) -> String {
        serde_json::to_value(self)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    /// Checks everything and compiles. Errors name the field (`buckets[1].percent`).
    pub fn compile(self) -> Result<Compiled, FieldError> {
        let e = &self;
        if e.rates.len() > MAX_RULES || e.buckets.len() > 50 {
            return Err(FieldError::new(
                "rates",
                format!("at most {MAX_RULES} rates and 50 buckets"),
            ));
        }
        let mut rates = Vec::with_capacity(e.rates.len());
        for (i, r) in e.rates.iter().enumerate() {
            let f = format!("rates[{i}]");
            if r.agent_id.is_some() && r.skill.is_none() {
                return Err(FieldError::new(
                    format!("{f}.skill"),
                    "is required when agent_id is set",
                ));
            }
            if let Some(s) = &r.skill {
                label(&format!("{f}.skill"), s)?;
            }
            if let (Some(a), Some(b)) = (r.valid_from, r.valid_to) {
                if a >= b {
                    return Err(FieldError::new(
                        format!("{f}.valid_to"),
                        "must be after valid_from",
                    ));
                }
            }
            rates.push((r.clone(), non_negative(&format!("{f}.rate"), &r.rate)?));
        }
        let default_rate = non_negative("default_rate", &e.default_rate)?;
        let mut multipliers = HashMap::new();
        for (k, m) in &e.multipliers {
            multipliers.insert(*k, non_negative(&format!("multipliers.{}", k.as_str()), m)?);
        }
        let mut formulas = HashMap::new();
        for (k, src) in &e.formulas {
            let expr = formula::parse_standard(src).map_err(|fe| {
                FieldError::new(format!("formulas.{}", k.as_str()), fe.to_string())
            })?;
            formulas.insert(*k, expr);
        }
        if let Some(h) = e.decay_half_life_days {
            if !(1..=36_500).contains(&h) {
                return Err(FieldError::new(
                    "decay_half_life_days",
                    "must be 1 to 36500",
                ));
            }
        }
        if e.counting.statuses.is_empty() {
            return Err(FieldError::new(
                "counting.statuses",
                "must name at least one status",
            ));
        }
        if let (Some(a), Some(b)) = (e.counting.from, e.counting.to) {
            if a >= b {
                return Err(FieldError::new(
                    "counting.to",
                    "must be after counting.from",
                ));
            }
        }
        if e.counting.statuses.contains(&Status::Superseded) {
            return Err(FieldError::new(
                "counting.statuses",
                "superseded contributions never count",
            ));
        }
        for (field, t) in [
            ("approvals_required", e.validation.approvals_required),
            ("rejections_required", e.validation.rejections_required),
        ] {
            if !(1..=100).contains(&t) {
                return Err(FieldError::new(
                    format!("validation.{field}"),
                    "must be 1 to 100",
                ));
            }
        }
        if e.buckets.is_empty() {
            return Err(FieldError::new("buckets", "must have at least one bucket"));
        }
        let mut percents = Vec::new();
        let mut params = Vec::new();
        let mut straight_total = Decimal::ZERO;
        let mut names: Vec<&str> = Vec::new();
        for (i, b) in e.buckets.iter().enumerate() {
            let f = format!("buckets[{i}]");
            label(&format!("{f}.name"), &b.name)?;
            if names.contains(&b.name.as_str()) || b.name == "leftover" || b.name == "unallocated" {
                return Err(FieldError::new(
                    format!("{f}.name"),
                    "must be unique (and not 'leftover' or 'unallocated')",
                ));
            }
            names.push(&b.name);
            let p = percent(&format!("{f}.percent"), &b.percent)?;
            if b.share == ShareType::Straight {
                straight_total += p;
                if straight_total > Decimal::ONE_HUNDRED {
                    return Err(FieldError::new(
                        format!("{f}.percent"),
                        "straight percentages add up to more than 100",
                    ));
                }
            }
            percents.push(p);
            let mut pp = PolicyParams {
                payback: Decimal::ONE,
                unit_value: Decimal::ONE,
                discount: Decimal::ZERO,
            };
            match (&b.to, &b.pool) {
                (Some(Target::Account(a)), None) => label(&format!("{f}.to.account"), a)?,
                (Some(Target::Agent(_)), None) => {}
                (None, Some(pool)) => match &pool.policy {
                    Policy::ProRata {
                        payback_multiplier,
                        unit_value,
                        ..
                    } => {
                        if let Some(m) = payback_multiplier {
                            pp.payback =
                                non_negative(&format!("{f}.pool.policy.payback_multiplier"), m)?;
                        }
                        if let Some(u) = unit_value {
                            pp.unit_value =
                                non_negative(&format!("{f}.pool.policy.unit_value"), u)?;
                        }
                    }
                    Policy::Immediate {
                        period_days,
                        periods,
                    } => {
                        if !(1..=366).contains(period_days) || !(1..=520).contains(periods) {
                            return Err(FieldError::new(
                                format!("{f}.pool.policy"),
                                "period_days 1-366 and periods 1-520",
                            ));
                        }
                    }
                    Policy::Recent {
                        period_days,
                        discount,
                    } => {
                        if !(1..=366).contains(period_days) {
                            return Err(FieldError::new(
                                format!("{f}.pool.policy.period_days"),
                                "must be 1 to 366",
                            ));
                        }
                        pp.discount = non_negative(&format!("{f}.pool.policy.discount"), discount)?;
                        if pp.discount >= Decimal::ONE {
                            return Err(FieldError::new(
                                format!("{f}.pool.policy.discount"),
                                "must be below 1",
                            ));
                        }
                    }
                    Policy::Fifo { unit_value } => {
                        if let Some(u) = unit_value {
                            pp.unit_value =
                                non_negative(&format!("{f}.pool.policy.unit_value"), u)?;
                        }
                    }
                    Policy::Balanced | Policy::Equal => {}
                },
                _ => {
                    return Err(FieldError::new(
                        f.clone(),
                        "needs exactly one of 'to' and 'pool'",
                    ))
                }
            }
            params.push(pp);
        }
        if let Leftover::Account { account } = &e.leftover {
            label("leftover.account", account)?;
        }
        if let Some(t) = &e.token {
            non_negative("token.per_unit", &t.per_unit)?;
            if let Some(r) = &t.redeem_per_unit_paid {
                non_negative("token.redeem_per_unit_paid", r)?;
            }
            if let Some(v) = t.vesting {
                if !(1..=3650).contains(&v.duration_days) || v.cliff_days > v.duration_days {
                    return Err(FieldError::new(
                        "token.vesting",
                        "duration_days 1-3650 and cliff_days at most duration_days",
                    ));
                }
            }
        }
        let quorum = percent("governance.quorum_percent", &e.governance.quorum_percent)?;
        let threshold = percent(
            "governance.threshold_percent",
            &e.governance.threshold_percent,
        )?;
        if !(1..=90).contains(&e.governance.voting_days) {
            return Err(FieldError::new("governance.voting_days", "must be 1 to 90"));
        }
        let canonical = self.canonical();
        let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
        Ok(Compiled {
            source: self,
            canonical,
            hash,
            rates,
            default_rate,
            multipliers,
            formulas,
            percents,
            params,
            quorum,
            threshold,
        })
    }
}

/// What weighting needs to know of a contribution.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Id (for messages and claims).
    pub id: String,
    /// Whose.
    pub agent_id: String,
    /// Kind.
    pub kind: Kind,
    /// Quantity.
    pub quantity: Decimal,
    /// Unit.
    pub unit: String,
    /// Skill.
    pub skill: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// Why a contribution could not be weighed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeighError {
    /// The contribution.
    pub contribution_id: String,
    /// What went wrong.
    pub message: String,
}

impl Compiled {
    /// The rate for a contribution: most specific valid rule, else the default.
    pub fn rate_for(&self, c: &Facts) -> Decimal {
        // Parsed only if a rule names an agent.
        let agent = std::cell::OnceCell::new();
        let agent = || *agent.get_or_init(|| c.agent_id.parse::<AgentId>().ok());
        let valid = |r: &RateRule| {
            r.kind == c.kind
                && r.valid_from.is_none_or(|f| c.occurred_at >= f)
                && r.valid_to.is_none_or(|t| c.occurred_at < t)
        };
        let rank = |r: &RateRule| match (&r.agent_id, &r.skill) {
            (Some(a), Some(s)) if Some(s) == c.skill.as_ref() && Some(*a) == agent() => Some(3),
            (None, Some(s)) if Some(s) == c.skill.as_ref() => Some(2),
            (None, None) => Some(1),
            _ => None,
        };
        self.rates
            .iter()
            .filter(|(r, _)| valid(r))
            .filter_map(|(r, rate)| rank(r).map(|k| (k, *rate)))
            .max_by_key(|(k, _)| *k)
            .map_or(self.default_rate, |(_, rate)| rate)
    }

    /// Does the equation count a contribution of this kind, with these tags, from then?
    pub fn counts(&self, kind: Kind, tags: &[String], occurred_at: DateTime<Utc>) -> bool {
        let c = &self.source.counting;
        c.kinds.as_ref().is_none_or(|k| k.contains(&kind))
            && c.tags
                .as_ref()
                .is_none_or(|t| tags.iter().any(|x| t.contains(x)))
            && c.from.is_none_or(|f| occurred_at >= f)
            && c.to.is_none_or(|t| occurred_at < t)
    }

    /// Whether a contribution's weighted value can change with the cut-off date alone: decay,
    /// or a formula reading `age_days` or `decay`. When it cannot, values change only when a
    /// contribution enters or leaves the counted set.
    pub fn weighs_by_age(&self) -> bool {
        self.source.decay_half_life_days.is_some()
            || self
                .formulas
                .values()
                .any(|f| f.mentions("age_days") || f.mentions("decay"))
    }

    /// Whether weighing reads a contribution's unit or skill: a formula reading `hours` (the
    /// quantity when the unit is hours), or a rate for a skill. When it reads neither, a
    /// computation's pages leave both out ([`crate::db::contributions::PageFacts`]).
    pub fn reads_unit_or_skill(&self) -> bool {
        self.formulas.values().any(|f| f.mentions("hours"))
            || self.rates.iter().any(|(r, _)| r.skill.is_some())
    }

    /// Weighted value of `c` at `cutoff`: quantity × rate × multiplier × decay, or the kind's
    /// formula. Rounded toward zero to [`WEIGHT_DIGITS`]; never negative.
    pub fn weigh(&self, c: &Facts, cutoff: DateTime<Utc>) -> Result<Decimal, WeighError> {
        let fail = |m: String| WeighError {
            contribution_id: c.id.clone(),
            message: m,
        };
        let rate = self.rate_for(c);
        let multiplier = self
            .multipliers
            .get(&c.kind)
            .copied()
            .unwrap_or(Decimal::ONE);
        let value = c
            .quantity
            .checked_mul(rate)
            .and_then(|v| v.checked_mul(multiplier))
            .ok_or_else(|| fail("quantity × rate × multiplier overflows".into()))?;
        let age_days = (cutoff - c.occurred_at).num_days().max(0);
        let decay = match self.source.decay_half_life_days {
            None => Decimal::ONE,
            Some(h) => {
                let exponent = Decimal::from(age_days) / Decimal::from(h);
                Decimal::new(5, 1)
                    .checked_powd(exponent)
                    .ok_or_else(|| fail("decay overflows".into()))?
            }
        };
        let result = match self.formulas.get(&c.kind) {
            Some(expr) => {
                let hours = if c.unit == "hours" {
                    c.quantity
                } else {
                    Decimal::ZERO
                };
                let vars: HashMap<&str, Decimal> = [
                    ("quantity", c.quantity),
                    ("rate", rate),
                    ("multiplier", multiplier),
                    ("value", value),
                    ("decay", decay),
                    ("hours", hours),
                    ("age_days", Decimal::from(age_days)),
                ]
                .into_iter()
                .collect();
                formula::eval(expr, &vars)
                    .map_err(|e| fail(format!("formula for {}: {e}", c.kind.as_str())))?
            }
            None => value
                .checked_mul(decay)
                .ok_or_else(|| fail("value × decay overflows".into()))?,
        };
        Ok(result
            .max(Decimal::ZERO)
            .round_dp_with_strategy(WEIGHT_DIGITS, RoundingStrategy::ToZero)
            .normalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    fn at(day: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-01-{day:02}T00:00:00Z"))
            .expect("date")
            .with_timezone(&Utc)
    }

    const ADA: &str = "01a20202-3cc3-73a5-9c17-48848df095a0";

    fn facts(kind: Kind, quantity: &str, skill: Option<&str>, day: u32) -> Facts {
        Facts {
            id: "c".into(),
            agent_id: ADA.into(),
            kind,
            quantity: d(quantity),
            unit: "hours".into(),
            skill: skill.map(str::to_owned),
            tags: vec!["x".into()],
            occurred_at: at(day),
        }
    }

    fn compile(v: serde_json::Value) -> Compiled {
        serde_json::from_value::<ValueEquation>(v)
            .expect("parses")
            .compile()
            .expect("compiles")
    }

    #[test]
    fn rates_most_specific_first_with_validity() {
        let e = compile(serde_json::json!({
            "default_rate": "1",
            "rates": [
                { "kind": "work", "rate": "10" },
                { "kind": "work", "skill": "cnc", "rate": "20" },
                { "kind": "work", "skill": "cnc", "agent_id": ADA, "rate": "30", "valid_to": "2026-01-10T00:00:00Z" }
            ],
            "multipliers": { "work": "2" },
            "buckets": [{ "name": "p", "share": "straight", "percent": "100", "pool": { "policy": { "type": "equal" } } }]
        }));
        assert_eq!(
            e.rate_for(&facts(Kind::Work, "1", Some("cnc"), 5)),
            d("30"),
            "agent+skill+kind"
        );
        assert_eq!(
            e.rate_for(&facts(Kind::Work, "1", Some("cnc"), 15)),
            d("20"),
            "agent rule expired: skill+kind"
        );
        assert_eq!(
            e.rate_for(&facts(Kind::Work, "1", Some("weld"), 5)),
            d("10"),
            "kind"
        );
        assert_eq!(
            e.rate_for(&facts(Kind::Material, "1", None, 5)),
            d("1"),
            "default"
        );
        assert_eq!(
            e.weigh(&facts(Kind::Work, "2.5", Some("weld"), 5), at(20)),
            Ok(d("50")),
            "2.5 × 10 × 2"
        );
    }

    #[test]
    fn decay_halves_per_half_life_and_formulas_replace_the_product() {
        let e = compile(serde_json::json!({
            "decay_half_life_days": 10,
            "formulas": { "cash": "min(quantity, 100) * rate" },
            "buckets": [{ "name": "p", "share": "straight", "percent": "100", "pool": { "policy": { "type": "equal" } } }]
        }));
        assert_eq!(e.weigh(&facts(Kind::Work, "8", None, 1), at(1)), Ok(d("8")));
        assert_eq!(
            e.weigh(&facts(Kind::Work, "8", None, 1), at(11)),
            Ok(d("4"))
        );
        assert_eq!(
            e.weigh(&facts(Kind::Work, "8", None, 1), at(21)),
            Ok(d("2"))
        );
        assert_eq!(
            e.weigh(&facts(Kind::Cash, "250", None, 1), at(21)),
            Ok(d("100")),
            "formula, no decay"
        );
    }

    /// An equation of one equal pool, with `extra`'s fields.
    fn one_pool_with(extra: serde_json::Value) -> Compiled {
        let mut body = serde_json::json!({
            "buckets": [{ "name": "p", "share": "straight", "percent": "100", "pool": { "policy": { "type": "equal" } } }]
        });
        if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        compile(body)
    }

    #[test]
    fn weighing_by_age_is_decay_or_a_formula_reading_age() {
        let with = |extra| one_pool_with(extra).weighs_by_age();
        assert!(!with(serde_json::json!({})));
        assert!(!with(
            serde_json::json!({ "formulas": { "cash": "min(quantity, 100) * rate" } })
        ));
        assert!(with(serde_json::json!({ "decay_half_life_days": 10 })));
        assert!(with(
            serde_json::json!({ "formulas": { "work": "if(age_days > 30, value / 2, value)" } })
        ));
        assert!(with(
            serde_json::json!({ "formulas": { "work": "-(quantity * decay)" } })
        ));
    }

    #[test]
    fn reads_unit_or_skill_by_a_formula_reading_hours_or_a_rate_for_a_skill() {
        let with = |extra| one_pool_with(extra).reads_unit_or_skill();
        assert!(!with(serde_json::json!({})));
        assert!(!with(serde_json::json!({
            "rates": [{ "kind": "work", "rate": "10" }],
            "multipliers": { "cash": "4" },
            "formulas": { "cash": "min(quantity, 100) * rate" }
        })));
        assert!(with(
            serde_json::json!({ "rates": [{ "kind": "work", "skill": "cnc", "rate": "20" }] })
        ));
        assert!(with(
            serde_json::json!({ "formulas": { "equipment_use": "hours * 2 + quantity" } })
        ));
        assert!(with(
            serde_json::json!({ "formulas": { "work": "max(hours, 1)" } })
        ));
    }

    #[test]
    fn counting_window_kinds_and_tags() {
        let e = compile(serde_json::json!({
            "counting": { "statuses": ["validated", "pending"], "kinds": ["work"], "tags": ["x"], "from": "2026-01-05T00:00:00Z", "to": "2026-01-10T00:00:00Z" },
            "buckets": [{ "name": "p", "share": "straight", "percent": "100", "pool": { "policy": { "type": "equal" } } }]
        }));
        let tags = ["x".to_owned()];
        assert!(e.counts(Kind::Work, &tags, at(5)));
        assert!(!e.counts(Kind::Work, &tags, at(10)));
        assert!(!e.counts(Kind::Work, &tags, at(4)));
        assert!(!e.counts(Kind::Cash, &tags, at(6)));
        assert!(!e.counts(Kind::Work, &["y".to_owned()], at(6)));
    }

    #[test]
    fn canonical_form_and_hash_are_stable() {
        let a = compile(
            serde_json::json!({ "buckets": [{ "name": "p", "share": "straight", "percent": "100", "pool": { "policy": { "type": "equal" } } }], "default_rate": "1" }),
        );
        let b = compile(
            serde_json::json!({ "default_rate": "1", "buckets": [{ "pool": { "policy": { "type": "equal" } }, "percent": "100", "share": "straight", "name": "p" }] }),
        );
        assert_eq!(a.hash, b.hash, "key order does not matter");
        assert_eq!(a.hash.len(), 64);
    }
}

//! Built-in starting equations a network can adopt (through a proposal) and then change.

use std::collections::BTreeMap;

use super::contribution::Kind;
use super::equation::{
    Bucket, Claim, Counting, Governance, Leftover, Policy, Pool, RateRule, ShareType, Target,
    ValidationRules, ValueEquation,
};

/// A named preset with a description.
pub struct Preset {
    /// Name used in proposals.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The equation.
    pub equation: fn() -> ValueEquation,
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "slicing_pie",
        description: "Slicing Pie: time valued at (fair-market salary − cash paid) / 2000 per hour (the \
                      work rate; 50 here for 120,000 − 20,000, set per agent with agent+skill rates) \
                      with the non-cash multiplier 2, cash ×4, every other non-cash contribution ×2; \
                      the whole income pro rata to the pie (equity).",
        equation: slicing_pie,
    },
    Preset {
        name: "sensorica",
        description: "Sensorica-style: 10% to a reserve account, the rest pro rata by hours × skill rate \
                      (design 1.5, engineering 1.3, fabrication 1.2, other work 1 per hour).",
        equation: sensorica,
    },
    Preset {
        name: "sourcecred_balanced",
        description: "SourceCred-style: the whole income through a balanced pool — each contributor is paid \
                      toward their lifetime share of value, the most underpaid first.",
        equation: sourcecred_balanced,
    },
];

/// Finds a preset by name.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

fn base(buckets: Vec<Bucket>) -> ValueEquation {
    ValueEquation {
        rates: Vec::new(),
        default_rate: "1".into(),
        multipliers: BTreeMap::new(),
        formulas: BTreeMap::new(),
        decay_half_life_days: None,
        counting: Counting::default(),
        validation: ValidationRules::default(),
        buckets,
        leftover: Leftover::Retain,
        governance: Governance::default(),
        token: None,
    }
}

fn pool(name: &str, share: ShareType, percent: &str, policy: Policy) -> Bucket {
    Bucket {
        name: name.into(),
        share,
        percent: percent.into(),
        to: None,
        pool: Some(Pool {
            kinds: None,
            tags: None,
            from: None,
            to: None,
            policy,
        }),
    }
}

fn rate(kind: Kind, skill: Option<&str>, rate: &str) -> RateRule {
    RateRule {
        kind,
        skill: skill.map(str::to_owned),
        agent_id: None,
        rate: rate.into(),
        valid_from: None,
        valid_to: None,
    }
}

fn slicing_pie() -> ValueEquation {
    let mut e = base(vec![pool(
        "pie",
        ShareType::Straight,
        "100",
        Policy::ProRata {
            claim: Claim::Equity,
            payback_multiplier: None,
            unit_value: None,
        },
    )]);
    e.rates = vec![rate(Kind::Work, None, "50")];
    for k in [
        Kind::Work,
        Kind::Material,
        Kind::EquipmentUse,
        Kind::Space,
        Kind::Relationship,
        Kind::Citation,
        Kind::Other,
    ] {
        e.multipliers.insert(k, "2".into());
    }
    e.multipliers.insert(Kind::Cash, "4".into());
    e
}

fn sensorica() -> ValueEquation {
    let mut e = base(vec![
        Bucket {
            name: "reserve".into(),
            share: ShareType::Straight,
            percent: "10".into(),
            to: Some(Target::Account("reserve".into())),
            pool: None,
        },
        Bucket {
            name: "contributors".into(),
            share: ShareType::Remaining,
            percent: "100".into(),
            to: None,
            pool: Some(Pool {
                kinds: Some(vec![Kind::Work]),
                tags: None,
                from: None,
                to: None,
                policy: Policy::ProRata {
                    claim: Claim::Equity,
                    payback_multiplier: None,
                    unit_value: None,
                },
            }),
        },
    ]);
    e.rates = vec![
        rate(Kind::Work, None, "1"),
        rate(Kind::Work, Some("design"), "1.5"),
        rate(Kind::Work, Some("engineering"), "1.3"),
        rate(Kind::Work, Some("fabrication"), "1.2"),
    ];
    e
}

fn sourcecred_balanced() -> ValueEquation {
    base(vec![pool(
        "balanced",
        ShareType::Straight,
        "100",
        Policy::Balanced,
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_compiles() {
        for p in PRESETS {
            let c = (p.equation)().compile();
            assert!(c.is_ok(), "{}: {:?}", p.name, c.err());
        }
    }
}

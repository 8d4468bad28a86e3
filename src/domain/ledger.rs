//! The token ledger's rules: accounts, balanced transactions, vesting, and the invariants
//! the whole ledger must satisfy. Pure: the database layer feeds it entries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::network::text_enum;

/// Where minted tokens come from (its balance is minus the supply ever minted).
pub const ISSUANCE: &str = "system:issuance";
/// Where burned tokens go.
pub const REDEMPTION: &str = "system:redemption";

/// A member's account name.
pub fn agent_account(agent_id: &str) -> String {
    format!("agent:{agent_id}")
}

/// The agent of an account name, if it is a member's.
pub fn account_agent(account: &str) -> Option<&str> {
    account.strip_prefix("agent:")
}

/// Accounts that do not hold tokens in circulation.
pub fn is_sink(account: &str) -> bool {
    account == ISSUANCE || account == REDEMPTION
}

/// What a ledger transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// New tokens, from issuance to a member.
    Mint,
    /// From one member to another.
    Transfer,
    /// Out of circulation, to redemption (redeemed at a payout, or forfeited by a leaver).
    Burn,
    /// Undoes an earlier transaction (e.g. the mint of a corrected contribution).
    Reversal,
    /// Unvested tokens becoming spendable (kept for completeness: vesting here is a
    /// schedule on the mint, so releases are computed, not posted).
    VestingRelease,
}

text_enum!(TxKind {
    TxKind::Mint => "mint",
    TxKind::Transfer => "transfer",
    TxKind::Burn => "burn",
    TxKind::Reversal => "reversal",
    TxKind::VestingRelease => "vesting_release",
});

/// A vesting schedule on minted tokens: nothing before the cliff, then linear to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// When vesting starts (the mint).
    pub start: DateTime<Utc>,
    /// Nothing vests before this.
    pub cliff: DateTime<Utc>,
    /// Everything has vested from this.
    pub end: DateTime<Utc>,
}

impl Schedule {
    /// How much of `amount` (whole minor units) has vested at `t` (rounded down).
    pub fn vested(&self, amount: Decimal, t: DateTime<Utc>) -> Decimal {
        if t < self.cliff {
            return Decimal::ZERO;
        }
        if t >= self.end || self.end <= self.start {
            return amount;
        }
        let done = Decimal::from((t - self.start).num_seconds());
        let total = Decimal::from((self.end - self.start).num_seconds());
        amount
            .checked_mul(done)
            .and_then(|x| x.checked_div(total))
            .map_or(amount, |v| v.floor())
            .min(amount)
    }
}

/// One entry as the checks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Transaction id.
    pub tx: String,
    /// Account name.
    pub account: String,
    /// Signed amount in minor units (credit positive).
    pub amount: Decimal,
}

/// One transaction as the checks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tx {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: TxKind,
    /// What caused it (`contribution:<id>`, `line:<id>`, `transfer:<client id>`, …).
    pub cause: String,
    /// Does its cause exist?
    pub cause_exists: bool,
}

/// Checks the whole ledger: every transaction balances, cached balances equal their
/// entries, supply equals the sum of balances, no holder is below zero, every mint has a
/// cause that exists and no cause is minted twice. Returns every problem found.
pub fn check(txs: &[Tx], entries: &[Entry], cached: &BTreeMap<String, Decimal>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut per_tx: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut balances: BTreeMap<&str, Decimal> = BTreeMap::new();
    for e in entries {
        *per_tx.entry(e.tx.as_str()).or_default() += e.amount;
        *balances.entry(e.account.as_str()).or_default() += e.amount;
    }
    for t in txs {
        match per_tx.get(t.id.as_str()) {
            None => problems.push(format!("transaction {} has no entries", t.id)),
            Some(s) if !s.is_zero() => problems.push(format!(
                "transaction {} does not balance: entries sum to {s}",
                t.id
            )),
            _ => {}
        }
    }
    let mut accounts: Vec<&str> = balances.keys().copied().collect();
    accounts.extend(cached.keys().map(String::as_str));
    accounts.sort_unstable();
    accounts.dedup();
    for a in accounts {
        let from_entries = balances.get(a).copied().unwrap_or_default();
        let cache = cached.get(a).copied().unwrap_or_default();
        if from_entries != cache {
            problems.push(format!(
                "account {a}: cached balance {cache} but entries sum to {from_entries}"
            ));
        }
        if !is_sink(a) && from_entries.is_sign_negative() && !from_entries.is_zero() {
            problems.push(format!("account {a} is below zero: {from_entries}"));
        }
    }
    let minted = -balances.get(ISSUANCE).copied().unwrap_or_default();
    let burned = balances.get(REDEMPTION).copied().unwrap_or_default();
    let held: Decimal = balances
        .iter()
        .filter(|(a, _)| !is_sink(a))
        .map(|(_, v)| *v)
        .sum();
    if minted - burned != held {
        problems.push(format!(
            "supply {} (minted {minted} − burned {burned}) differs from the sum of balances {held}",
            minted - burned
        ));
    }
    let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
    for t in txs.iter().filter(|t| t.kind == TxKind::Mint) {
        *causes.entry(t.cause.as_str()).or_default() += 1;
        if !t.cause_exists {
            problems.push(format!(
                "mint {} points to a cause that does not exist: {}",
                t.id, t.cause
            ));
        }
    }
    for (cause, n) in causes {
        if n > 1 {
            problems.push(format!("{cause} was minted {n} times"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(n: i64) -> Decimal {
        Decimal::from(n)
    }

    fn t(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + day * 86_400, 0).expect("time")
    }

    #[test]
    fn vesting_cliff_then_linear() {
        let s = Schedule {
            start: t(0),
            cliff: t(30),
            end: t(100),
        };
        assert_eq!(s.vested(d(1000), t(29)), d(0));
        assert_eq!(s.vested(d(1000), t(30)), d(300));
        assert_eq!(s.vested(d(1000), t(50)), d(500));
        assert_eq!(s.vested(d(1000), t(100)), d(1000));
        assert_eq!(s.vested(d(7), t(50)), d(3), "rounded down");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Mint(usize, i64),
        Transfer(usize, usize, i64),
        Burn(usize, i64),
        Reverse(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..4, 1i64..1000).prop_map(|(a, n)| Op::Mint(a, n)),
            (0usize..4, 0usize..4, 1i64..1000).prop_map(|(a, b, n)| Op::Transfer(a, b, n)),
            (0usize..4, 1i64..1000).prop_map(|(a, n)| Op::Burn(a, n)),
            (0usize..50).prop_map(Op::Reverse),
        ]
    }

    proptest! {
        /// Random mints, transfers, burns and reversals, applied as the service applies them
        /// (refusing anything that would overdraw), always leave a ledger that checks clean,
        /// and its balances equal a simple model's.
        #[test]
        fn random_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 0..60)) {
            let mut model = [0i64; 4];
            let mut txs: Vec<Tx> = Vec::new();
            let mut entries: Vec<Entry> = Vec::new();
            let mut mints: Vec<(String, usize, i64, bool)> = Vec::new();
            let post = |kind: TxKind, cause: String, legs: Vec<(String, i64)>, txs: &mut Vec<Tx>, entries: &mut Vec<Entry>| {
                let id = format!("t{}", txs.len());
                txs.push(Tx { id: id.clone(), kind, cause, cause_exists: true });
                for (a, n) in legs {
                    entries.push(Entry { tx: id.clone(), account: a, amount: d(n) });
                }
                id
            };
            for (i, o) in ops.into_iter().enumerate() {
                match o {
                    Op::Mint(a, n) => {
                        let id = post(TxKind::Mint, format!("c{i}"), vec![(ISSUANCE.into(), -n), (agent_account(&a.to_string()), n)], &mut txs, &mut entries);
                        model[a] += n;
                        mints.push((id, a, n, false));
                    }
                    Op::Transfer(a, b, n) if model[a] >= n && a != b => {
                        post(TxKind::Transfer, format!("x{i}"), vec![(agent_account(&a.to_string()), -n), (agent_account(&b.to_string()), n)], &mut txs, &mut entries);
                        model[a] -= n;
                        model[b] += n;
                    }
                    Op::Burn(a, n) if model[a] >= n => {
                        post(TxKind::Burn, format!("b{i}"), vec![(agent_account(&a.to_string()), -n), (REDEMPTION.into(), n)], &mut txs, &mut entries);
                        model[a] -= n;
                    }
                    Op::Reverse(k) => {
                        if let Some(m) = mints.get_mut(k) {
                            if !m.3 && model[m.1] >= m.2 {
                                m.3 = true;
                                let (who, n) = (m.1, m.2);
                                post(TxKind::Reversal, format!("r{i}"), vec![(agent_account(&who.to_string()), -n), (ISSUANCE.into(), n)], &mut txs, &mut entries);
                                model[who] -= n;
                            }
                        }
                    }
                    _ => {}
                }
            }
            let mut cached: BTreeMap<String, Decimal> = BTreeMap::new();
            for e in &entries {
                *cached.entry(e.account.clone()).or_default() += e.amount;
            }
            prop_assert_eq!(check(&txs, &entries, &cached), Vec::<String>::new());
            for (a, v) in model.iter().enumerate() {
                prop_assert_eq!(cached.get(&agent_account(&a.to_string())).copied().unwrap_or_default(), d(*v));
            }
        }
    }

    #[test]
    fn check_names_each_broken_invariant() {
        let txs = vec![
            Tx {
                id: "t1".into(),
                kind: TxKind::Mint,
                cause: "contribution:c1".into(),
                cause_exists: true,
            },
            Tx {
                id: "t2".into(),
                kind: TxKind::Mint,
                cause: "contribution:c1".into(),
                cause_exists: false,
            },
        ];
        let entries = vec![
            Entry {
                tx: "t1".into(),
                account: ISSUANCE.into(),
                amount: d(-5),
            },
            Entry {
                tx: "t1".into(),
                account: "agent:a".into(),
                amount: d(5),
            },
            Entry {
                tx: "t2".into(),
                account: ISSUANCE.into(),
                amount: d(-5),
            },
            Entry {
                tx: "t2".into(),
                account: "agent:b".into(),
                amount: d(4),
            },
        ];
        let cached: BTreeMap<String, Decimal> =
            [("agent:a".to_owned(), d(6))].into_iter().collect();
        let p = check(&txs, &entries, &cached).join("\n");
        assert!(p.contains("t2 does not balance"), "{p}");
        assert!(p.contains("agent:a: cached balance 6"), "{p}");
        assert!(p.contains("supply"), "{p}");
        assert!(p.contains("does not exist"), "{p}");
        assert!(p.contains("minted 2 times"), "{p}");
    }
}

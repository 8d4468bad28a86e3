//! Reading a SourceCred ledger (`data/ledger.json`: one JSON ledger event per line) by
//! replaying its actions as SourceCred does: identities with their aliases, merges (the base
//! absorbs the target's aliases, payout address and paid Grain), renames, payout addresses,
//! and every Grain receipt of every distribution. Transfers move balances, not what was paid,
//! and are skipped. Pure: nothing here touches the database.

use std::collections::{BTreeMap, HashMap};

use num_bigint::BigUint;
use serde_json::Value;

use super::wallet::WalletAddress;

/// Grain has 18 decimals: amounts in the ledger are integers of 10^-18 Grain.
pub const GRAIN_DECIMALS: u32 = 18;
/// Most events read from one ledger.
pub const MAX_EVENTS: usize = 200_000;

/// A line the replay could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong.
    pub detail: String,
}

/// Grain paid to an identity by one allocation of one distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `<distribution id>/<allocation id>/<receiving identity id>`: unique in a ledger.
    pub reference: String,
    /// Amount in 10^-18 Grain.
    pub amount: BigUint,
    /// The distribution's cred timestamp (ms since the epoch).
    pub cred_timestamp_ms: i64,
}

/// An identity after every merge: one future member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The surviving identity id.
    pub id: String,
    /// Its name (after renames).
    pub name: String,
    /// `USER`, `BOT`, `ORGANIZATION` or `PROJECT`.
    pub subtype: String,
    /// Every identity id merged into it, its own first.
    pub identity_ids: Vec<String>,
    /// Aliases: (node address, description), the merged identities' included.
    pub aliases: Vec<(String, String)>,
    /// Its Ethereum payout address, if one was set and is a valid address.
    pub payout_address: Option<String>,
    /// Grain received, receipt by receipt.
    pub receipts: Vec<Receipt>,
}

impl Account {
    /// Total Grain received.
    pub fn paid(&self) -> BigUint {
        self.receipts.iter().map(|r| &r.amount).sum()
    }
}

/// The ledger, replayed.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Surviving accounts, in creation order.
    pub accounts: Vec<Account>,
    /// Events read.
    pub events: usize,
    /// Every line that could not be used.
    pub errors: Vec<LineError>,
}

struct State {
    accounts: Vec<Option<Account>>,
    /// Identity id (own or merged) → index in `accounts`.
    index: HashMap<String, usize>,
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("'{key}' is missing or not a string"))
}

impl State {
    fn account(&mut self, id: &str) -> Result<&mut Account, String> {
        let i = *self
            .index
            .get(id)
            .ok_or_else(|| format!("no identity with id {id}"))?;
        self.accounts
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or_else(|| format!("identity {id} was merged away"))
    }

    fn apply(&mut self, action: &Value) -> Result<(), String> {
        match text(action, "type")? {
            "CREATE_IDENTITY" => {
                let identity = action.get("identity").ok_or("'identity' is missing")?;
                let id = text(identity, "id")?.to_owned();
                if self.index.contains_key(&id) {
                    return Err(format!("identity {id} is created twice"));
                }
                let mut aliases = Vec::new();
                for a in identity
                    .get("aliases")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    aliases.push((
                        text(a, "address")?.to_owned(),
                        a.get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    ));
                }
                self.index.insert(id.clone(), self.accounts.len());
                self.accounts.push(Some(Account {
                    id: id.clone(),
                    name: text(identity, "name")?.to_owned(),
                    subtype: identity
                        .get("subtype")
                        .and_then(Value::as_str)
                        .unwrap_or("USER")
                        .to_owned(),
                    identity_ids: vec![id],
                    aliases,
                    payout_address: None,
                    receipts: Vec::new(),
                }));
            }
            "RENAME_IDENTITY" => {
                let name = text(action, "newName")?.to_owned();
                self.account(text(action, "identityId")?)?.name = name;
            }
            "CHANGE_IDENTITY_TYPE" => {
                let t = text(action, "newType")?.to_owned();
                self.account(text(action, "identityId")?)?.subtype = t;
            }
            "ADD_ALIAS" => {
                let alias = action.get("alias").ok_or("'alias' is missing")?;
                let entry = (
                    text(alias, "address")?.to_owned(),
                    alias
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                );
                self.account(text(action, "identityId")?)?
                    .aliases
                    .push(entry);
            }
            "MERGE_IDENTITIES" => {
                let (base, target) = (text(action, "base")?, text(action, "target")?);
                let bi = *self
                    .index
                    .get(base)
                    .ok_or(format!("no identity with id {base}"))?;
                let ti = *self
                    .index
                    .get(target)
                    .ok_or(format!("no identity with id {target}"))?;
                if bi == ti {
                    return Err(format!("identity {base} cannot be merged with itself"));
                }
                let t = self
                    .accounts
                    .get_mut(ti)
                    .and_then(Option::take)
                    .ok_or(format!("identity {target} was merged away"))?;
                for id in &t.identity_ids {
                    self.index.insert(id.clone(), bi);
                }
                let b = self.account(base)?;
                b.aliases.extend(t.aliases);
                b.identity_ids.extend(t.identity_ids);
                b.receipts.extend(t.receipts);
                if b.payout_address.is_none() {
                    b.payout_address = t.payout_address;
                }
            }
            "SET_PAYOUT_ADDRESS" => {
                let address = match action.get("payoutAddress") {
                    Some(Value::String(a)) => Some(
                        WalletAddress::parse("payoutAddress", a)
                            .map_err(|e| format!("payoutAddress {a}: {}", e.detail))?
                            .as_str()
                            .to_owned(),
                    ),
                    _ => None,
                };
                self.account(text(action, "id")?)?.payout_address = address;
            }
            "DISTRIBUTE_GRAIN" => {
                let d = action
                    .get("distribution")
                    .ok_or("'distribution' is missing")?;
                let did = text(d, "id")?;
                let at = d.get("credTimestamp").and_then(Value::as_i64).unwrap_or(0);
                let allocations = d
                    .get("allocations")
                    .and_then(Value::as_array)
                    .ok_or("'allocations' is missing")?;
                // Check every receipt before applying any: an event applies whole or not at all.
                let mut planned = Vec::new();
                for a in allocations {
                    let aid = text(a, "id")?;
                    for r in a
                        .get("receipts")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let who = text(r, "id")?;
                        let amount = text(r, "amount")?;
                        let amount = BigUint::parse_bytes(amount.as_bytes(), 10)
                            .filter(|_| amount.bytes().all(|b| b.is_ascii_digit()))
                            .ok_or(format!(
                                "receipt amount '{amount}' is not a whole number of attoGrain"
                            ))?;
                        let i = *self
                            .index
                            .get(who)
                            .ok_or(format!("receipt for unknown identity {who}"))?;
                        planned.push((
                            i,
                            Receipt {
                                reference: format!("{did}/{aid}/{who}"),
                                amount,
                                cred_timestamp_ms: at,
                            },
                        ));
                    }
                }
                for (i, receipt) in planned {
                    if let Some(Some(acc)) = self.accounts.get_mut(i) {
                        acc.receipts.push(receipt);
                    }
                }
            }
            // Balances move but nothing more is paid; activation and integration tracking
            // do not change who was paid what.
            "TRANSFER_GRAIN"
            | "TOGGLE_ACTIVATION"
            | "ENABLE_GRAIN_INTEGRATION"
            | "DISABLE_GRAIN_INTEGRATION"
            | "MARK_DISTRIBUTION_EXECUTED" => {}
            other => return Err(format!("unknown action type '{other}'")),
        }
        Ok(())
    }
}

/// Replays a ledger file. Every bad line is reported; the accounts reflect the good ones.
pub fn replay(text: &str) -> Replayed {
    let mut state = State {
        accounts: Vec::new(),
        index: HashMap::new(),
    };
    let mut out = Replayed::default();
    let mut last_ts = i64::MIN;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        out.events += 1;
        if out.events > MAX_EVENTS {
            out.errors.push(LineError {
                line: line_no,
                detail: format!("a ledger may have at most {MAX_EVENTS} events"),
            });
            break;
        }
        let result = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|event| {
                let ts = event
                    .get("ledgerTimestamp")
                    .and_then(Value::as_i64)
                    .ok_or("'ledgerTimestamp' is missing")?;
                if ts < last_ts {
                    return Err(format!(
                        "timestamp {ts} is earlier than the event before it"
                    ));
                }
                last_ts = ts;
                state.apply(event.get("action").ok_or("'action' is missing")?)
            });
        if let Err(detail) = result {
            out.errors.push(LineError {
                line: line_no,
                detail,
            });
        }
    }
    out.accounts = state.accounts.into_iter().flatten().collect();
    out
}

/// Paid totals per surviving identity id (for reports).
pub fn paid_totals(accounts: &[Account]) -> BTreeMap<String, BigUint> {
    accounts.iter().map(|a| (a.id.clone(), a.paid())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: i64, action: Value) -> String {
        serde_json::json!({ "action": action, "ledgerTimestamp": ts, "uuid": format!("u{ts}"), "version": "1" }).to_string()
    }

    fn identity(id: &str, name: &str) -> Value {
        serde_json::json!({ "type": "CREATE_IDENTITY", "identity": { "id": id, "name": name, "subtype": "USER", "address": format!("N\u{0}sourcecred\u{0}core\u{0}IDENTITY\u{0}{id}\u{0}"), "aliases": [] } })
    }

    fn grain(n: &str) -> BigUint {
        BigUint::parse_bytes(n.as_bytes(), 10).unwrap_or_default()
    }

    #[test]
    fn merges_carry_aliases_payouts_and_addresses() {
        let lines = [
            event(1, identity("A", "ada")),
            event(2, identity("B", "ada-discord")),
            event(
                3,
                serde_json::json!({ "type": "ADD_ALIAS", "identityId": "B", "alias": { "address": "N\u{0}sourcecred\u{0}discord\u{0}MEMBER\u{0}123\u{0}", "description": "discord/ada#1" } }),
            ),
            event(
                4,
                serde_json::json!({ "type": "TOGGLE_ACTIVATION", "identityId": "A" }),
            ),
            event(
                5,
                serde_json::json!({ "type": "DISTRIBUTE_GRAIN", "distribution": { "id": "d1", "credTimestamp": 1000, "allocations": [ { "id": "a1", "policy": { "policyType": "BALANCED" }, "receipts": [ { "id": "A", "amount": "1500000000000000000" }, { "id": "B", "amount": "500000000000000000" } ] } ] } }),
            ),
            event(
                6,
                serde_json::json!({ "type": "SET_PAYOUT_ADDRESS", "id": "B", "payoutAddress": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "currency": { "chainId": "1" } }),
            ),
            event(
                7,
                serde_json::json!({ "type": "MERGE_IDENTITIES", "base": "A", "target": "B" }),
            ),
            event(
                8,
                serde_json::json!({ "type": "RENAME_IDENTITY", "identityId": "B", "newName": "ada-lovelace" }),
            ),
            event(
                9,
                serde_json::json!({ "type": "TRANSFER_GRAIN", "from": "A", "to": "A", "amount": "1", "memo": null }),
            ),
        ];
        let r = replay(&lines.join("\n"));
        assert_eq!(r.errors, vec![]);
        assert_eq!(r.events, 9);
        assert_eq!(r.accounts.len(), 1);
        let a = &r.accounts[0];
        assert_eq!(a.name, "ada-lovelace", "a merged id still names the base");
        assert_eq!(a.identity_ids, vec!["A", "B"]);
        assert_eq!(a.paid(), grain("2000000000000000000"));
        assert_eq!(
            a.payout_address.as_deref(),
            Some("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        );
        assert_eq!(a.aliases.len(), 1);
        assert!(a.aliases.iter().any(|(_, d)| d == "discord/ada#1"));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let lines = [
            event(5, identity("A", "ada")),
            "{not json".to_owned(),
            event(4, identity("B", "bob")),
            event(
                6,
                serde_json::json!({ "type": "DISTRIBUTE_GRAIN", "distribution": { "id": "d", "credTimestamp": 1, "allocations": [ { "id": "a", "receipts": [ { "id": "A", "amount": "10" }, { "id": "Z", "amount": "1" } ] } ] } }),
            ),
            event(
                7,
                serde_json::json!({ "type": "DISTRIBUTE_GRAIN", "distribution": { "id": "e", "credTimestamp": 1, "allocations": [ { "id": "a", "receipts": [ { "id": "A", "amount": "-3" } ] } ] } }),
            ),
            event(8, serde_json::json!({ "type": "LAUNCH_ROCKET" })),
            String::new(),
            event(9, identity("A", "again")),
        ];
        let r = replay(&lines.join("\n"));
        let bad: Vec<usize> = r.errors.iter().map(|e| e.line).collect();
        assert_eq!(bad, vec![2, 3, 4, 5, 6, 8], "{:?}", r.errors);
        // The distribution with an unknown receiver applied nothing.
        assert_eq!(r.accounts[0].paid(), BigUint::default());
    }
}

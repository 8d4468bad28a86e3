//! Safe Transaction Builder batch files: ERC-20 `transfer` calls (or native transfers) and the
//! `meta.checksum` the Transaction Builder app checks on import.
//!
//! The checksum, as the app computes it: serialise the batch with `meta.name` set to null and
//! without `meta.checksum`, where an object becomes `{` + the JSON array of its sorted keys +
//! each value serialised and followed by `,` + `}`, an array becomes `[` + its serialised
//! elements joined by `,` + `]`, and anything else its JSON text; then keccak256 of that text.

use serde_json::{json, Map, Value};
use sha3::{Digest as _, Keccak256};

/// The Transaction Builder version the files are written for.
pub const TX_BUILDER_VERSION: &str = "1.18.0";

/// One payment: receiver (EIP-55) and amount in base units (decimal string).
pub struct Payment {
    /// Who is paid.
    pub receiver: String,
    /// How much, in the token's base units.
    pub amount: String,
}

/// What the batch is for.
pub struct BatchMeta<'a> {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Milliseconds since the epoch (the distribution's commit time, so exports repeat).
    pub created_at_ms: i64,
    /// Batch name.
    pub name: &'a str,
    /// Batch description.
    pub description: &'a str,
    /// The Safe that will execute it, if known.
    pub safe_address: Option<&'a str>,
    /// The ERC-20 contract; None pays the chain's native currency.
    pub token_address: Option<&'a str>,
}

fn serialize(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                serialize(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // JavaScript's default sort compares UTF-16 code units.
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            out.push_str(
                &Value::from(keys.iter().map(|k| k.as_str()).collect::<Vec<_>>()).to_string(),
            );
            for k in keys {
                if let Some(value) = map.get(k) {
                    serialize(value, out);
                }
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The Transaction Builder checksum of `batch` (its own `meta.checksum`, if any, is ignored).
pub fn checksum(batch: &Value) -> String {
    let mut copy = batch.clone();
    if let Some(meta) = copy.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("checksum");
        meta.insert("name".into(), Value::Null);
    }
    let mut text = String::new();
    serialize(&copy, &mut text);
    format!("0x{}", hex::encode(Keccak256::digest(text.as_bytes())))
}

/// A batch paying each of `payments`, with its checksum.
pub fn batch(meta: &BatchMeta<'_>, payments: &[Payment]) -> Value {
    let transactions: Vec<Value> = payments
        .iter()
        .map(|p| match meta.token_address {
            Some(token) => json!({
                "to": token,
                "value": "0",
                "data": null,
                "contractMethod": {
                    "inputs": [
                        { "internalType": "address", "name": "to", "type": "address" },
                        { "internalType": "uint256", "name": "value", "type": "uint256" }
                    ],
                    "name": "transfer",
                    "payable": false
                },
                "contractInputsValues": { "to": p.receiver, "value": p.amount }
            }),
            // A plain transfer of the native currency: no contract call.
            None => json!({ "to": p.receiver, "value": p.amount, "data": null }),
        })
        .collect();
    let mut m = Map::new();
    m.insert("name".into(), meta.name.into());
    m.insert("description".into(), meta.description.into());
    m.insert("txBuilderVersion".into(), TX_BUILDER_VERSION.into());
    m.insert(
        "createdFromSafeAddress".into(),
        meta.safe_address.unwrap_or_default().into(),
    );
    m.insert("createdFromOwnerAddress".into(), "".into());
    let mut out = json!({
        "version": "1.0",
        "chainId": meta.chain_id.to_string(),
        "createdAt": meta.created_at_ms,
        "meta": Value::Object(m),
        "transactions": transactions,
    });
    let sum = checksum(&out);
    if let Some(meta) = out.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("checksum".into(), sum.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_app_does() {
        let mut s = String::new();
        serialize(
            &json!({ "b": [1, "x", null], "a": { "z": true, "y": "q" } }),
            &mut s,
        );
        assert_eq!(s, r#"{["a","b"]{["y","z"]"q",true,},[1,"x",null],}"#);
    }

    #[test]
    fn the_name_and_old_checksum_do_not_count() {
        let meta = BatchMeta {
            chain_id: 100,
            created_at_ms: 1_700_000_000_000,
            name: "Payout",
            description: "d",
            safe_address: None,
            token_address: Some("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        };
        let pay = [Payment {
            receiver: "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359".into(),
            amount: "1500".into(),
        }];
        let a = batch(&meta, &pay);
        let b = batch(
            &BatchMeta {
                name: "Renamed",
                ..meta
            },
            &pay,
        );
        assert_eq!(a["meta"]["checksum"], b["meta"]["checksum"]);
        assert_eq!(
            checksum(&a),
            a["meta"]["checksum"].as_str().unwrap_or_default()
        );
        let mut changed = a.clone();
        changed["transactions"][0]["contractInputsValues"]["value"] = json!("1501");
        assert_ne!(checksum(&changed), checksum(&a));
    }
}

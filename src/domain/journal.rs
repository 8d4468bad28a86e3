//! The hash chain of the audit journal: canonical entry form, hashes, and verification.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One sealed entry as verification sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    /// Entry id.
    pub entry_id: String,
    /// Network.
    pub network_id: String,
    /// Gapless sequence, from 1.
    pub seq: i64,
    /// When the change happened (RFC 3339, microseconds).
    pub recorded_at: String,
    /// Who made it.
    pub actor: Option<String>,
    /// What kind of change.
    pub kind: String,
    /// The change, canonical JSON.
    pub body: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The canonical JSON an entry's hash covers: an object with its keys sorted and no
/// whitespace, whose `body` is the stored body text as it is.
///
/// Bodies are written by serde_json from its sorted maps, so they are already canonical:
/// parsing one and writing it again gives the same bytes (`canonical_body_is_its_own_reparse`),
/// which is how entries were hashed before. Splicing the text instead saves a parse and a
/// write of every body at sealing and at verification (a batch's entry holds up to 1,000
/// contributions). A body edited in the database, even only in its spacing, no longer hashes
/// the same.
pub fn canonical(e: &Sealed) -> String {
    let text = |s: &str| Value::from(s).to_string();
    let mut out = String::with_capacity(e.body.len().saturating_add(320));
    out.push_str("{\"actor\":");
    out.push_str(&e.actor.as_deref().map_or_else(|| "null".to_owned(), text));
    out.push_str(",\"body\":");
    out.push_str(&e.body);
    out.push_str(",\"entry_id\":");
    out.push_str(&text(&e.entry_id));
    out.push_str(",\"kind\":");
    out.push_str(&text(&e.kind));
    out.push_str(",\"network_id\":");
    out.push_str(&text(&e.network_id));
    out.push_str(",\"recorded_at\":");
    out.push_str(&text(&e.recorded_at));
    out.push_str(",\"seq\":");
    out.push_str(&e.seq.to_string());
    out.push('}');
    out
}

/// hash = SHA-256(prev_hash ‖ canonical body), hex.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Where a chain breaks: the sequence number, the entry there, and what is wrong.
pub type Break = (i64, String, String);

/// Walks a chain entry by entry, in stored order, so a long journal is checked a page at a
/// time.
#[derive(Debug, Clone)]
pub struct Walk {
    prev: String,
    seq: i64,
}

impl Default for Walk {
    fn default() -> Self {
        Self {
            prev: GENESIS.to_owned(),
            seq: 0,
        }
    }
}

impl Walk {
    /// Checks the next entry: its sequence number follows, it links to the previous hash,
    /// and its hash covers its content.
    pub fn step(&mut self, e: &Sealed) -> Result<(), Break> {
        let expected_seq = self.seq.saturating_add(1);
        if e.seq != expected_seq {
            return Err((
                expected_seq,
                e.entry_id.clone(),
                format!(
                    "sequence {} where {expected_seq} was expected (missing or reordered entry)",
                    e.seq
                ),
            ));
        }
        if e.prev_hash != self.prev {
            return Err((
                e.seq,
                e.entry_id.clone(),
                "prev_hash does not match the previous entry's hash".into(),
            ));
        }
        let h = chain_hash(&e.prev_hash, &canonical(e));
        if h != e.hash {
            return Err((
                e.seq,
                e.entry_id.clone(),
                "hash does not match the entry's content (edited)".into(),
            ));
        }
        self.prev = h;
        self.seq = e.seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Walks a whole chain; the first entry that breaks it.
    fn verify(entries: &[Sealed]) -> Result<(), Break> {
        let mut walk = Walk::default();
        entries.iter().try_for_each(|e| walk.step(e))
    }

    /// How entries were hashed before: the body parsed and written again inside the object.
    fn reparsed(e: &Sealed) -> String {
        let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::String(e.body.clone()));
        json!({
            "actor": e.actor,
            "body": body,
            "entry_id": e.entry_id,
            "kind": e.kind,
            "network_id": e.network_id,
            "recorded_at": e.recorded_at,
            "seq": e.seq,
        })
        .to_string()
    }

    #[test]
    fn canonical_body_is_its_own_reparse() {
        let bodies = [
            json!({}),
            json!([]),
            json!({ "z": 1, "a": [1, 2, { "y": null, "b": true }], "m": "x" }),
            json!({ "text": "é ü 漢字 🦀 \"quoted\" back\\slash \u{1} \u{1f} \n\t\r /" }),
            json!({ "floats": [0.1, 1e300, -0.0, 2.5e-8, 123_456.789], "ints": [i64::MIN, u64::MAX, 0] }),
            json!({ "items": [{ "id": "a", "quantity": "1.50", "tags": ["x", "y"] }], "n": 1000 }),
            json!("a bare string"),
            json!(42),
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            for actor in [None, Some("agent \"q\"".to_owned())] {
                let e = Sealed {
                    entry_id: format!("e{i}"),
                    network_id: "n\u{7}".into(),
                    seq: i64::try_from(i).unwrap_or(0).saturating_add(1),
                    recorded_at: "2026-11-23T14:00:00.000001Z".into(),
                    actor,
                    kind: "contribution.batch_recorded".into(),
                    body: body.to_string(),
                    prev_hash: GENESIS.into(),
                    hash: String::new(),
                };
                assert_eq!(canonical(&e), reparsed(&e), "{}", e.body);
            }
        }
    }

    fn chain(n: i64) -> Vec<Sealed> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = Sealed {
                    entry_id: format!("e{seq}"),
                    network_id: "n".into(),
                    seq,
                    recorded_at: "2026-01-01T00:00:00Z".into(),
                    actor: None,
                    kind: "k".into(),
                    body: format!("{{\"n\":{seq}}}"),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = chain_hash(&prev, &canonical(&e));
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn intact_edited_deleted_reordered() {
        assert_eq!(verify(&chain(5)), Ok(()));
        let mut edited = chain(5);
        edited[2].body = "{\"n\":99}".into();
        assert_eq!(verify(&edited).map_err(|e| e.0), Err(3));
        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify(&deleted).map_err(|e| e.0), Err(2));
        let mut reordered = chain(5);
        reordered.swap(3, 4);
        assert_eq!(verify(&reordered).map_err(|e| e.0), Err(4));
    }
}

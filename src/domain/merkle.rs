//! OpenZeppelin `StandardMerkleTree` (`@openzeppelin/merkle-tree`, dump format `standard-v1`)
//! over `[address, uint256]` leaves: leaf = keccak256(keccak256(abi.encode(address, amount))),
//! leaves sorted as 256-bit integers, ONE flat array of 2n−1 nodes with leaf i at
//! `tree[len−1−i]` and `tree[i] = keccak256(sort(tree[2i+1], tree[2i+2]))`.

use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use sha3::{Digest as _, Keccak256};
use utoipa::ToSchema;

fn keccak(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

fn hex32(b: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(b))
}

/// abi.encode(address, uint256): two 32-byte words.
fn encode(address: &str, amount: &BigUint) -> Option<Vec<u8>> {
    let addr = hex::decode(address.strip_prefix("0x")?).ok()?;
    if addr.len() != 20 {
        return None;
    }
    let amt = amount.to_bytes_be();
    if amt.len() > 32 {
        return None;
    }
    let mut out = vec![0u8; 64];
    out[12..32].copy_from_slice(&addr);
    out[64 - amt.len()..].copy_from_slice(&amt);
    Some(out)
}

fn leaf_hash(address: &str, amount: &BigUint) -> Option<[u8; 32]> {
    Some(keccak(&keccak(&encode(address, amount)?)))
}

fn node(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(x);
    buf[32..].copy_from_slice(y);
    keccak(&buf)
}

/// One value of the dump: `[address, amount]` and where its leaf sits in `tree`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DumpValue {
    /// `[address, amount as a decimal string]`.
    pub value: [String; 2],
    /// Index of its leaf in `tree`.
    pub tree_index: usize,
}

/// The `standard-v1` dump, loadable by `StandardMerkleTree.load`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dump {
    /// Always `standard-v1`.
    pub format: String,
    /// Always `["address", "uint256"]`.
    pub leaf_encoding: [String; 2],
    /// The flat tree, root first.
    pub tree: Vec<String>,
    /// The values in input order.
    pub values: Vec<DumpValue>,
}

impl Dump {
    /// The root.
    pub fn root(&self) -> Option<&str> {
        self.tree.first().map(String::as_str)
    }

    /// The proof of value `i` (sibling hashes from the leaf up).
    pub fn proof(&self, i: usize) -> Vec<String> {
        let Some(v) = self.values.get(i) else {
            return Vec::new();
        };
        let mut k = v.tree_index;
        let mut out = Vec::new();
        while k > 0 {
            let sibling = if k % 2 == 1 { k + 1 } else { k - 1 };
            if let Some(h) = self.tree.get(sibling) {
                out.push(h.clone());
            }
            k = (k - 1) / 2;
        }
        out
    }
}

/// Builds the tree of `(address, amount)` values, as the library does.
pub fn standard_tree(values: &[(String, BigUint)]) -> Option<Dump> {
    if values.is_empty() {
        return None;
    }
    let mut leaves: Vec<([u8; 32], usize)> = Vec::with_capacity(values.len());
    for (i, (a, amt)) in values.iter().enumerate() {
        leaves.push((leaf_hash(a, amt)?, i));
    }
    // Sorted as 256-bit integers: big-endian bytes compare the same way.
    leaves.sort();
    let n = leaves.len();
    let len = 2 * n - 1;
    let mut tree = vec![[0u8; 32]; len];
    let mut index_of = vec![0usize; n];
    for (pos, (h, original)) in leaves.iter().enumerate() {
        tree[len - 1 - pos] = *h;
        index_of[*original] = len - 1 - pos;
    }
    for i in (0..len - n).rev() {
        tree[i] = node(&tree[2 * i + 1], &tree[2 * i + 2]);
    }
    Some(Dump {
        format: "standard-v1".into(),
        leaf_encoding: ["address".into(), "uint256".into()],
        tree: tree.iter().map(hex32).collect(),
        values: values
            .iter()
            .enumerate()
            .map(|(i, (a, amt))| DumpValue {
                value: [a.clone(), amt.to_string()],
                tree_index: index_of[i],
            })
            .collect(),
    })
}

/// Checks a proof as `StandardMerkleTree.verify` does.
pub fn verify(root: &str, address: &str, amount: &BigUint, proof: &[String]) -> bool {
    let Some(mut h) = leaf_hash(address, amount) else {
        return false;
    };
    for p in proof {
        let Some(b) = p
            .strip_prefix("0x")
            .and_then(|x| hex::decode(x).ok())
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
        else {
            return false;
        };
        h = node(&h, &b);
    }
    hex32(&h) == root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/oz-standard-v1-3leaf.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("shared vector")).expect("json")
    }

    #[test]
    fn matches_the_librarys_own_dump() {
        let v = vector();
        let values: Vec<(String, BigUint)> = v["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|x| {
                (
                    x["value"][0].as_str().expect("a").to_owned(),
                    x["value"][1].as_str().expect("n").parse().expect("uint"),
                )
            })
            .collect();
        let dump = standard_tree(&values).expect("tree");
        let ours = serde_json::to_value(&dump).expect("json");
        assert_eq!(ours["tree"], v["tree"]);
        assert_eq!(ours["values"], v["values"]);
        assert_eq!(ours["format"], v["format"]);
        assert_eq!(ours["leafEncoding"], v["leafEncoding"]);
    }

    #[test]
    fn uniswap_claims_prove_their_leaves() {
        for n in [1usize, 2, 3, 5, 33] {
            let values: Vec<(String, BigUint)> = (0..n)
                .map(|i| {
                    let a = crate::domain::wallet::WalletAddress::parse(
                        "a",
                        &format!("0x{:040x}", i * 104_729 + 0xfeed),
                    )
                    .expect("address");
                    (
                        a.as_str().to_owned(),
                        BigUint::from(10u32) * (BigUint::from(i) + 1u8),
                    )
                })
                .collect();
            let c = uniswap_claims(&values).expect("claims");
            assert_eq!(c.claims.len(), n);
            assert_eq!(
                c.claims.values().map(|x| x.index).max(),
                Some(u64::try_from(n).unwrap_or(0) - 1)
            );
            if let Ok(dir) = std::env::var("HOLOPTIC_INTEROP_DIR") {
                std::fs::write(
                    format!("{dir}/uniswap-sizes-{n:02}.json"),
                    serde_json::to_string(&c).expect("json"),
                )
                .expect("write");
            }
        }
    }

    #[test]
    fn every_proof_verifies_for_many_sizes() {
        for n in [1usize, 2, 3, 5, 8, 33] {
            let values: Vec<(String, BigUint)> = (0..n)
                .map(|i| {
                    (
                        format!("0x{:040x}", i * 7919 + 1),
                        BigUint::from(
                            1_000_000_000_000_000_000u128 + u128::try_from(i).unwrap_or(0),
                        ),
                    )
                })
                .collect();
            let dump = standard_tree(&values).expect("tree");
            assert_eq!(dump.tree.len(), 2 * n - 1);
            let root = dump.root().expect("root").to_owned();
            for (i, (a, amt)) in values.iter().enumerate() {
                assert!(verify(&root, a, amt, &dump.proof(i)), "n={n} i={i}");
                assert!(!verify(&root, a, &(amt + 1u8), &dump.proof(i)));
            }
            // CI loads these with the real @openzeppelin/merkle-tree (.ci/interop).
            if let Ok(dir) = std::env::var("HOLOPTIC_INTEROP_DIR") {
                let proofs: std::collections::BTreeMap<&str, Vec<String>> = values
                    .iter()
                    .enumerate()
                    .map(|(i, (a, _))| (a.as_str(), dump.proof(i)))
                    .collect();
                let out = serde_json::json!({ "merkle": dump, "proofs": proofs });
                std::fs::write(format!("{dir}/merkle-sizes-{n:02}.json"), out.to_string())
                    .expect("write");
            }
        }
    }
}

/// One claim of a Uniswap merkle-distributor claims file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UniswapClaim {
    /// Position after sorting the checksummed addresses.
    pub index: u64,
    /// Amount as a hex string (`0x…`, even length).
    pub amount: String,
    /// Sibling hashes from the leaf up.
    pub proof: Vec<String>,
}

/// A Uniswap merkle-distributor claims file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UniswapClaims {
    /// The root to deploy the distributor with.
    pub merkle_root: String,
    /// Sum of all amounts, hex.
    pub token_total: String,
    /// Claim per checksummed address.
    pub claims: std::collections::BTreeMap<String, UniswapClaim>,
}

fn hex_amount(n: &BigUint) -> String {
    let h = n.to_str_radix(16);
    if h.len() % 2 == 1 {
        format!("0x0{h}")
    } else {
        format!("0x{h}")
    }
}

/// Builds the claims file as Uniswap's `parseBalanceMap` does: addresses (EIP-55) sorted as
/// strings; leaf = keccak256(abi.encodePacked(uint256 index, address account, uint256
/// amount)); leaves sorted as bytes; pairs hashed sorted; an odd last node is promoted.
pub fn uniswap_claims(values: &[(String, BigUint)]) -> Option<UniswapClaims> {
    let mut sorted: Vec<&(String, BigUint)> = values.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut leaves: Vec<[u8; 32]> = Vec::with_capacity(sorted.len());
    for (index, (address, amount)) in sorted.iter().enumerate() {
        let addr = hex::decode(address.strip_prefix("0x")?).ok()?;
        let amt = amount.to_bytes_be();
        if addr.len() != 20 || amt.len() > 32 {
            return None;
        }
        let mut packed = vec![0u8; 84];
        let idx = u64::try_from(index).ok()?.to_be_bytes();
        packed[24..32].copy_from_slice(&idx);
        packed[32..52].copy_from_slice(&addr);
        packed[84 - amt.len()..].copy_from_slice(&amt);
        leaves.push(keccak(&packed));
    }
    let mut elements = leaves.clone();
    elements.sort();
    elements.dedup();
    let mut layers: Vec<Vec<[u8; 32]>> = vec![elements.clone()];
    while layers.last().is_some_and(|l| l.len() > 1) {
        let prev = layers.last()?;
        let next: Vec<[u8; 32]> = prev
            .chunks(2)
            .map(|p| {
                if p.len() == 2 {
                    node(&p[0], &p[1])
                } else {
                    p[0]
                }
            })
            .collect();
        layers.push(next);
    }
    let root = layers.last()?.first().copied()?;
    let proof_of = |leaf: &[u8; 32]| -> Vec<String> {
        let mut idx = elements.iter().position(|e| e == leaf).unwrap_or(0);
        let mut out = Vec::new();
        for layer in &layers[..layers.len() - 1] {
            let pair = if idx % 2 == 0 { idx + 1 } else { idx - 1 };
            if let Some(h) = layer.get(pair) {
                out.push(hex32(h));
            }
            idx /= 2;
        }
        out
    };
    let total: BigUint = values.iter().map(|(_, a)| a).sum();
    let claims = sorted
        .iter()
        .zip(&leaves)
        .enumerate()
        .map(|(i, ((a, amt), leaf))| {
            (
                a.clone(),
                UniswapClaim {
                    index: u64::try_from(i).unwrap_or(u64::MAX),
                    amount: hex_amount(amt),
                    proof: proof_of(leaf),
                },
            )
        })
        .collect();
    Some(UniswapClaims {
        merkle_root: hex32(&root),
        token_total: hex_amount(&total),
        claims,
    })
}

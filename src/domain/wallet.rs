//! Wallet addresses: EIP-55 mixed-case checksums.

use sha3::{Digest as _, Keccak256};

use super::FieldError;

/// An Ethereum address in its EIP-55 checksummed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletAddress(String);

impl WalletAddress {
    /// Accepts an all-lowercase (or all-uppercase) address and normalises it, or a
    /// mixed-case one only when its EIP-55 checksum is right.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let hex_part = raw
            .strip_prefix("0x")
            .filter(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| FieldError::new(field, "must be 0x followed by 40 hex digits"))?;
        let checksummed = to_checksum(hex_part);
        let single_case =
            hex_part == hex_part.to_ascii_lowercase() || hex_part == hex_part.to_ascii_uppercase();
        if !single_case && checksummed != raw {
            return Err(FieldError::new(
                field,
                "has a wrong EIP-55 checksum (mixed case must match it)",
            ));
        }
        Ok(Self(checksummed))
    }

    /// The checksummed address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// EIP-55: upper-case each hex letter whose nibble in keccak256(lowercase hex) is ≥ 8.
fn to_checksum(hex_part: &str) -> String {
    let lower = hex_part.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let byte = hash[i / 2];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from EIP-55 itself.
    const VECTORS: &[&str] = &[
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_vectors() {
        for v in VECTORS {
            assert_eq!(WalletAddress::parse("w", v).map(|a| a.0).as_deref(), Ok(*v));
            let lower = v.to_ascii_lowercase();
            assert_eq!(
                WalletAddress::parse("w", &lower).map(|a| a.0).as_deref(),
                Ok(*v)
            );
        }
    }

    #[test]
    fn bad_checksum_and_shape() {
        assert!(WalletAddress::parse("w", "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
        assert!(WalletAddress::parse("w", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe").is_err());
        assert!(WalletAddress::parse("w", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00").is_err());
        assert!(WalletAddress::parse("w", "0xzzAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
    }
}

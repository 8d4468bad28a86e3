//! API keys and invite codes: random secrets shown once, stored as SHA-256 hashes.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Prefix of every API key, so leaked keys are easy to scan for.
pub const API_KEY_PREFIX: &str = "hol_";
/// Prefix of every invite code.
pub const INVITE_PREFIX: &str = "inv_";

fn secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new API key (256 random bits).
pub fn new_api_key() -> String {
    secret(API_KEY_PREFIX)
}

/// A new invite code (256 random bits).
pub fn new_invite_code() -> String {
    secret(INVITE_PREFIX)
}

/// The stored form of a key or code: lowercase hex SHA-256. Keys carry 256 bits of
/// randomness, so a fast hash is enough (no password stretching needed).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }
}

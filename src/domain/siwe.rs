//! Sign-In with Ethereum (EIP-4361): parse the message a wallet signed, and recover the
//! address that signed it from its EIP-191 `personal_sign` signature. Pure: the nonce,
//! domain, chain and clock checks that need state are the caller's.

use chrono::{DateTime, Utc};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest as _, Keccak256};

use super::wallet::WalletAddress;
use super::FieldError;

/// Longest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;

const HEADER_SUFFIX: &str = " wants you to sign in with your Ethereum account:";

/// The fields of an EIP-4361 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiweMessage {
    /// `https` or `http` when the message names one.
    pub scheme: Option<String>,
    /// The domain (authority) asking for the sign-in.
    pub domain: String,
    /// The account, EIP-55 checksummed.
    pub address: WalletAddress,
    /// The human-readable statement, if any.
    pub statement: Option<String>,
    /// The URI the sign-in is for.
    pub uri: String,
    /// Always `1`.
    pub version: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The server's nonce.
    pub nonce: String,
    /// When the wallet made the message.
    pub issued_at: DateTime<Utc>,
    /// After this the message is void.
    pub expiration_time: Option<DateTime<Utc>>,
    /// Before this the message is not yet valid.
    pub not_before: Option<DateTime<Utc>>,
    /// The client's request id.
    pub request_id: Option<String>,
    /// Resources the sign-in covers.
    pub resources: Vec<String>,
}

fn bad(problem: impl Into<String>) -> FieldError {
    FieldError::new("message", problem)
}

fn time(field: &str, raw: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad(format!("'{field}' is not an RFC 3339 date-time")))
}

/// Takes the next line if it starts with `tag`, returning the rest.
fn tagged<'a>(lines: &mut std::iter::Peekable<std::str::Lines<'a>>, tag: &str) -> Option<&'a str> {
    let rest = lines.peek().and_then(|l| l.strip_prefix(tag))?;
    lines.next();
    Some(rest)
}

impl SiweMessage {
    /// Parses a message in the EIP-4361 layout, fields in the order the EIP gives.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(bad(format!("must be at most {MAX_MESSAGE_BYTES} bytes")));
        }
        let mut lines = text.lines().peekable();
        let header = lines.next().unwrap_or_default();
        let origin = header
            .strip_suffix(HEADER_SUFFIX)
            .ok_or_else(|| bad("the first line must be '<domain> wants you to sign in with your Ethereum account:'"))?;
        let (scheme, domain) = match origin.split_once("://") {
            Some((s, d)) => (Some(s.to_owned()), d.to_owned()),
            None => (None, origin.to_owned()),
        };
        if domain.is_empty() || domain.contains(char::is_whitespace) {
            return Err(bad("the domain is empty or has spaces"));
        }
        let raw_address = lines.next().unwrap_or_default();
        let address = WalletAddress::parse("message", raw_address)
            .map_err(|_| bad("the second line must be the EIP-55 address"))?;
        if address.as_str() != raw_address {
            return Err(bad("the address must be EIP-55 checksummed"));
        }
        if lines.next() != Some("") {
            return Err(bad("the address must be followed by an empty line"));
        }
        // An optional one-line statement, with empty lines around it.
        let mut statement = None;
        while let Some(line) = lines.peek().copied() {
            if line.starts_with("URI: ") {
                break;
            }
            lines.next();
            if line.is_empty() {
                continue;
            }
            if statement.is_some() {
                return Err(bad("the statement must be a single line"));
            }
            statement = Some(line.to_owned());
        }
        let uri = tagged(&mut lines, "URI: ").ok_or_else(|| bad("'URI' is missing"))?;
        let version = tagged(&mut lines, "Version: ").ok_or_else(|| bad("'Version' is missing"))?;
        if version != "1" {
            return Err(bad("'Version' must be 1"));
        }
        let chain_id = tagged(&mut lines, "Chain ID: ")
            .ok_or_else(|| bad("'Chain ID' is missing"))?
            .parse::<u64>()
            .map_err(|_| bad("'Chain ID' must be a positive integer"))?;
        let nonce = tagged(&mut lines, "Nonce: ").ok_or_else(|| bad("'Nonce' is missing"))?;
        if nonce.len() < 8 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad("'Nonce' must be at least 8 letters or digits"));
        }
        let issued_at = time(
            "Issued At",
            tagged(&mut lines, "Issued At: ").ok_or_else(|| bad("'Issued At' is missing"))?,
        )?;
        let expiration_time = tagged(&mut lines, "Expiration Time: ")
            .map(|t| time("Expiration Time", t))
            .transpose()?;
        let not_before = tagged(&mut lines, "Not Before: ")
            .map(|t| time("Not Before", t))
            .transpose()?;
        let request_id = tagged(&mut lines, "Request ID: ").map(str::to_owned);
        let mut resources = Vec::new();
        if tagged(&mut lines, "Resources:").is_some() {
            while let Some(r) = tagged(&mut lines, "- ") {
                resources.push(r.to_owned());
            }
        }
        if let Some(extra) = lines.next() {
            return Err(bad(format!("unexpected line '{extra}'")));
        }
        Ok(Self {
            scheme,
            domain,
            address,
            statement,
            uri: uri.to_owned(),
            version: version.to_owned(),
            chain_id,
            nonce: nonce.to_owned(),
            issued_at,
            expiration_time,
            not_before,
            request_id,
            resources,
        })
    }
}

/// EIP-191 version 0x45 (`personal_sign`): keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ m).
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n");
    h.update(message.len().to_string().as_bytes());
    h.update(message);
    h.finalize().into()
}

/// The address whose key made `signature` (65 bytes hex, `r ‖ s ‖ v`, v 27/28 or 0/1) over
/// `message`. High-s (malleated) signatures are refused.
pub fn recover_signer(message: &str, signature: &str) -> Result<WalletAddress, FieldError> {
    let field = |p: &str| FieldError::new("signature", p);
    let bytes = signature
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() == 65)
        .ok_or_else(|| field("must be 0x followed by 65 bytes in hex"))?;
    let (rs, v) = bytes.split_at(64);
    let parity = match v.first().copied() {
        Some(27 | 0) => false,
        Some(28 | 1) => true,
        _ => return Err(field("has a recovery byte other than 27, 28, 0 or 1")),
    };
    let sig = Signature::from_slice(rs).map_err(|_| field("is not a valid ECDSA signature"))?;
    if sig.normalize_s().is_some() {
        return Err(field("has a high s value (not canonical)"));
    }
    let key = VerifyingKey::recover_from_prehash(
        &eip191_hash(message.as_bytes()),
        &sig,
        RecoveryId::new(parity, false),
    )
    .map_err(|_| field("does not recover to a public key"))?;
    let point = key.to_encoded_point(false);
    let digest = Keccak256::digest(point.as_bytes().get(1..).unwrap_or_default());
    let address = format!("0x{}", hex::encode(digest.get(12..).unwrap_or_default()));
    WalletAddress::parse("signature", &address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/siwe-eip4361.json"
        );
        let text = std::fs::read_to_string(path).expect("the SIWE vector is readable");
        serde_json::from_str(&text).expect("the SIWE vector is JSON")
    }

    fn field<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
        v[k].as_str().expect("vector field")
    }

    #[test]
    fn parses_the_siwe_package_message() {
        let v = vector();
        let m = SiweMessage::parse(field(&v, "message")).expect("parses");
        assert_eq!(m.domain, "example.com");
        assert_eq!(m.scheme, None);
        assert_eq!(m.address.as_str(), field(&v, "address"));
        assert_eq!(
            m.statement.as_deref(),
            Some("I accept the ExampleOrg Terms of Service: https://example.com/tos")
        );
        assert_eq!(m.uri, "https://example.com/login");
        assert_eq!(m.chain_id, 1);
        assert_eq!(m.nonce, "32891756");
        assert_eq!(m.issued_at.to_rfc3339(), "2021-09-30T16:25:24+00:00");
        assert_eq!(
            m.expiration_time.map(|t| t.to_rfc3339()).as_deref(),
            Some("2100-01-01T00:00:00+00:00")
        );
        assert_eq!(m.resources.len(), 1);
    }

    #[test]
    fn hashes_and_recovers_as_the_siwe_package() {
        let v = vector();
        let hash = eip191_hash(field(&v, "message").as_bytes());
        assert_eq!(format!("0x{}", hex::encode(hash)), field(&v, "eip191_hash"));
        let signer =
            recover_signer(field(&v, "message"), field(&v, "signature")).expect("recovers");
        assert_eq!(signer.as_str(), field(&v, "address"));
    }

    #[test]
    fn a_changed_message_recovers_another_address() {
        let v = vector();
        let tampered = field(&v, "message").replace("Nonce: 32891756", "Nonce: 32891757");
        let signer = recover_signer(&tampered, field(&v, "signature")).expect("recovers");
        assert_ne!(signer.as_str(), field(&v, "address"));
    }

    #[test]
    fn refuses_bad_signatures() {
        let v = vector();
        let m = field(&v, "message");
        let sig = field(&v, "signature");
        assert!(recover_signer(m, &sig[..sig.len() - 2]).is_err());
        assert!(recover_signer(m, &format!("{}1d", &sig[..sig.len() - 2])).is_err());
        assert!(recover_signer(m, "0x").is_err());
        // The same signature with s replaced by n - s (malleated) is refused.
        let n = num_bigint::BigUint::parse_bytes(
            b"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
            16,
        )
        .expect("n");
        let s = num_bigint::BigUint::parse_bytes(&sig.as_bytes()[66..130], 16).expect("s");
        let high = format!("{:064x}", n - s);
        let flipped = if sig.ends_with("1b") { "1c" } else { "1b" };
        let malleated = format!("{}{}{}", &sig[..66], high, flipped);
        assert!(recover_signer(m, &malleated).is_err());
    }

    #[test]
    fn refuses_malformed_messages() {
        let v = vector();
        let m = field(&v, "message");
        for (from, to) in [
            ("example.com wants", "example.com asks"),
            (
                "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            ),
            ("Version: 1", "Version: 2"),
            ("Chain ID: 1", "Chain ID: one"),
            ("Nonce: 32891756", "Nonce: 1234"),
            ("Issued At: 2021-09-30T16:25:24Z", "Issued At: yesterday"),
            ("URI: ", "Url: "),
        ] {
            assert!(SiweMessage::parse(&m.replace(from, to)).is_err(), "{to}");
        }
        assert!(SiweMessage::parse(&format!("{m}\nExtra: line")).is_err());
        assert!(SiweMessage::parse(&"x".repeat(MAX_MESSAGE_BYTES + 1)).is_err());
    }

    #[test]
    fn parses_without_statement_and_with_optional_fields() {
        let text = "https://app.example.org wants you to sign in with your Ethereum account:\n\
0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n\nURI: https://app.example.org\nVersion: 1\n\
Chain ID: 10\nNonce: abcdEFGH1234\nIssued At: 2026-11-22T10:00:00.000Z\n\
Expiration Time: 2026-11-22T10:10:00.000Z\nNot Before: 2026-11-22T09:59:00Z\nRequest ID: r-1";
        let m = SiweMessage::parse(text).expect("parses");
        assert_eq!(m.scheme.as_deref(), Some("https"));
        assert_eq!(m.domain, "app.example.org");
        assert_eq!(m.statement, None);
        assert_eq!(m.chain_id, 10);
        assert!(m.not_before.is_some());
        assert_eq!(m.request_id.as_deref(), Some("r-1"));
    }
}

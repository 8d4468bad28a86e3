//! Access tokens: HS256 JWTs with `exp`, `nbf`, `iat`, `iss`, `aud`, `sub`, `jti` and a `kid`
//! header. The algorithm is pinned, every claim is required and checked, and there is no
//! leeway: a token is valid from `nbf` to `exp`, to the second.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::Utc;
use hmac::Mac as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::domain::ids::AgentId;

/// Shortest accepted HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The agent id.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// Signing key, verification keys by `kid`, and the validation rules.
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    /// Key of the dashboard's CSRF tokens, derived from the signing secret.
    csrf_key: Vec<u8>,
}

impl TokenKeys {
    /// Builds the keys from configuration. Without a configured secret a random one is made
    /// (and a warning logged by the caller), so the service runs out of the box.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let current = match &config.jwt_secret {
            Some(s) => s.clone(),
            None => {
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }
        };
        let mut secrets = vec![(config.jwt_kid.clone(), current.clone())];
        if let Some(prev) = &config.jwt_previous_keys {
            for pair in prev.split(',').filter(|p| !p.trim().is_empty()) {
                let (kid, secret) = pair.split_once('=').ok_or(
                    "HOLOPTIC_JWT_PREVIOUS_KEYS must be kid=secret pairs separated by commas",
                )?;
                secrets.push((kid.trim().to_owned(), secret.trim().to_owned()));
            }
        }
        let mut decoding = HashMap::new();
        for (kid, secret) in &secrets {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "JWT secret for kid {kid} must be at least {MIN_SECRET_BYTES} bytes"
                ));
            }
            decoding.insert(kid.clone(), DecodingKey::from_secret(secret.as_bytes()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Ok(Self {
            kid: config.jwt_kid.clone(),
            encoding: EncodingKey::from_secret(current.as_bytes()),
            decoding,
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl_secs: i64::from(config.token_ttl_secs),
            csrf_key: {
                use sha2::Digest as _;
                sha2::Sha256::digest(format!("holoptic-csrf:{current}").as_bytes()).to_vec()
            },
        })
    }

    /// Issues a token for `agent`; returns it with its lifetime in seconds.
    pub fn issue(&self, agent: AgentId) -> Result<(String, i64), String> {
        self.issue_for(agent, self.ttl_secs)
    }

    /// The CSRF token that goes with a session token: HMAC-SHA256 of the session token, so
    /// only a page that could read our own responses knows it.
    pub fn csrf_token(&self, session: &str) -> String {
        self.csrf_mac(session)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `given` is the CSRF token of `session` (compared in constant time).
    pub fn csrf_matches(&self, session: &str, given: &str) -> bool {
        match (hex::decode(given), self.csrf_mac(session)) {
            (Ok(bytes), Some(mac)) => mac.verify_slice(&bytes).is_ok(),
            _ => false,
        }
    }

    fn csrf_mac(&self, session: &str) -> Option<hmac::Hmac<sha2::Sha256>> {
        // HMAC takes a key of any length; the error case does not happen.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.csrf_key).ok()?;
        mac.update(session.as_bytes());
        Some(mac)
    }

    /// Issues a token for `agent` that lives `ttl_secs` seconds.
    pub fn issue_for(&self, agent: AgentId, ttl_secs: i64) -> Result<(String, i64), String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: agent.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + ttl_secs,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map(|t| (t, ttl_secs))
            .map_err(|e| e.to_string())
    }

    /// Verifies a token and returns its agent. The error says why, for the 401's detail.
    pub fn verify(&self, token: &str) -> Result<AgentId, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "malformed token".to_owned())?;
        if header.alg != Algorithm::HS256 {
            return Err("token algorithm not accepted".into());
        }
        let kid = header.kid.ok_or("token has no kid")?;
        let key = self
            .decoding
            .get(&kid)
            .ok_or("token signed with an unknown key")?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => "token expired".to_owned(),
                K::ImmatureSignature => "token not yet valid".to_owned(),
                K::InvalidAudience => "token has the wrong audience".to_owned(),
                K::InvalidIssuer => "token has the wrong issuer".to_owned(),
                K::InvalidSignature => "token signature is invalid".to_owned(),
                K::MissingRequiredClaim(c) => format!("token lacks the {c} claim"),
                _ => "invalid token".to_owned(),
            }
        })?;
        data.claims
            .sub
            .parse()
            .map_err(|_| "token subject is not an agent id".to_owned())
    }
}

//! Authentication: API keys (stored only as hashes), short-lived JWTs, and the extractors
//! that give handlers the caller. Authorization (roles per network and object) is checked
//! by the handlers against the membership they load, never from token claims, so a role
//! change takes effect at once.

pub mod extract;
pub mod jwt;
pub mod keys;

pub use extract::{Authenticated, Caller};
pub use jwt::TokenKeys;

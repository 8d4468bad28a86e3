//! Network settings: slug, join policy, visibility, roles and currencies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;

/// Most currencies a network may declare.
pub const MAX_CURRENCIES: usize = 16;
/// Largest currency scale (fraction digits) the exact decimal columns hold.
pub const MAX_CURRENCY_SCALE: u32 = 18;
/// Largest approval or rejection threshold.
pub const MAX_THRESHOLD: i32 = 100;

/// A network's unique, URL-safe short name: 3–64 of `a-z`, `0-9` and `-`, not starting or
/// ending with `-`, and not shaped like a UUID (a path segment is read as an id first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if raw.len() < 3
            || raw.len() > 64
            || !ok_chars
            || raw.starts_with('-')
            || raw.ends_with('-')
        {
            return Err(FieldError::new(
                field,
                "must be 3-64 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            ));
        }
        if uuid::Uuid::parse_str(raw).is_ok() {
            return Err(FieldError::new(field, "must not be a UUID"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who may join a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JoinPolicy {
    /// Anyone may join (the OVN default: a low barrier to entry).
    Open,
    /// Only holders of a steward's invite may join.
    Invite,
}

/// Who may read a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone, without a token.
    Public,
    /// Members only.
    Members,
}

/// A member's role in one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Contributes and validates peers' contributions.
    Member,
    /// A member who also manages the network's settings, invites and roles.
    Steward,
    /// Reads everything, writes nothing.
    Auditor,
    /// Logs contributions on behalf of members (e.g. a repository integration); never validates.
    Bot,
}

impl Role {
    /// May this role record contributions?
    pub fn can_contribute(self) -> bool {
        matches!(self, Role::Member | Role::Steward | Role::Bot)
    }

    /// May this role record a contribution for another agent?
    pub fn can_record_for_others(self) -> bool {
        matches!(self, Role::Steward | Role::Bot)
    }

    /// May this role approve or reject contributions?
    pub fn can_validate(self) -> bool {
        matches!(self, Role::Member | Role::Steward)
    }
}

macro_rules! text_enum {
    ($ty:ty { $($variant:path => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The stored and serialised text.
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $text),+ }
            }
            /// Reads the stored text back.
            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($text => Some($variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(JoinPolicy { JoinPolicy::Open => "open", JoinPolicy::Invite => "invite" });
text_enum!(Visibility { Visibility::Public => "public", Visibility::Members => "members" });
text_enum!(Role {
    Role::Member => "member",
    Role::Steward => "steward",
    Role::Auditor => "auditor",
    Role::Bot => "bot",
});

/// A currency a network accounts in: an upper-case code and its number of fraction digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    /// 2–12 characters of `A-Z` and `0-9`, starting with a letter (ISO 4217 or a token symbol).
    pub code: String,
    /// Fraction digits (2 for EUR, 8 for BTC, up to 18).
    pub scale: u32,
}

impl Currency {
    /// Parses a currency code and scale.
    pub fn parse(field: &str, code: &str, scale: i64) -> Result<Self, FieldError> {
        let shaped = code.len() >= 2
            && code.len() <= 12
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && code.starts_with(|c: char| c.is_ascii_uppercase());
        if !shaped {
            return Err(FieldError::new(
                format!("{field}.code"),
                "must be 2-12 characters of A-Z and 0-9, starting with a letter",
            ));
        }
        let scale = u32::try_from(scale)
            .ok()
            .filter(|s| *s <= MAX_CURRENCY_SCALE)
            .ok_or_else(|| {
                FieldError::new(
                    format!("{field}.scale"),
                    format!("must be 0 to {MAX_CURRENCY_SCALE}"),
                )
            })?;
        Ok(Self {
            code: code.to_owned(),
            scale,
        })
    }
}

/// Parses a list of currencies: bounded, codes unique.
pub fn parse_currencies(field: &str, raw: &[(String, i64)]) -> Result<Vec<Currency>, FieldError> {
    if raw.len() > MAX_CURRENCIES {
        return Err(FieldError::new(
            field,
            format!("must have at most {MAX_CURRENCIES} entries"),
        ));
    }
    let mut out: Vec<Currency> = Vec::with_capacity(raw.len());
    for (i, (code, scale)) in raw.iter().enumerate() {
        let c = Currency::parse(&format!("{field}[{i}]"), code, *scale)?;
        if out.iter().any(|o| o.code == c.code) {
            return Err(FieldError::new(
                format!("{field}[{i}].code"),
                "is listed twice",
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// Parses an approval or rejection threshold.
pub fn parse_threshold(field: &str, raw: i64) -> Result<i32, FieldError> {
    i32::try_from(raw)
        .ok()
        .filter(|t| (1..=MAX_THRESHOLD).contains(t))
        .ok_or_else(|| FieldError::new(field, format!("must be 1 to {MAX_THRESHOLD}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(Slug::parse("slug", "fab-lab-2").is_ok());
        for bad in [
            "ab",
            "-ab",
            "ab-",
            "Fab",
            "fab lab",
            "0191f3a2-0000-7000-8000-000000000000",
        ] {
            assert!(Slug::parse("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies() {
        assert!(parse_currencies("c", &[("EUR".into(), 2), ("ETH".into(), 18)]).is_ok());
        let dup = parse_currencies("c", &[("EUR".into(), 2), ("EUR".into(), 2)]);
        assert_eq!(dup.map_err(|e| e.field), Err("c[1].code".to_owned()));
        assert!(parse_currencies("c", &[("eur".into(), 2)]).is_err());
        assert!(parse_currencies("c", &[("EUR".into(), 19)]).is_err());
        assert!(parse_currencies("c", &[("EUR".into(), -1)]).is_err());
    }
}

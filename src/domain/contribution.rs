//! Contributions: kinds, the units and quantities that fit each kind, and the parsed draft.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{AgentId, ContributionId};
use super::network::{text_enum, Currency};
use super::{bounded_text, FieldError};

/// Every quantity is below this (10 integer digits fit the exact columns on both backends).
pub const MAX_QUANTITY_EXCLUSIVE: Decimal = Decimal::from_parts(1_410_065_408, 2, 0, false, 0);
/// Most hours one `work` contribution may claim.
pub const MAX_WORK_HOURS: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);
/// Most fraction digits a quantity may have (currencies may allow fewer).
pub const MAX_FRACTION_DIGITS: u32 = 18;
/// Most tags on one contribution.
pub const MAX_TAGS: usize = 16;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// Longest evidence URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// How far in the future `occurred_at` may be, to allow for client clock skew.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// What kind of economic event a contribution is (Valueflows actions in brackets).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Hours of work (`work`); unit `hours`.
    Work,
    /// Money put in (`transfer`); unit is one of the network's currency codes.
    Cash,
    /// Material consumed (`consume`); unit `each`, `kg`, `g`, `t`, `l`, `ml`, `m`, `m2` or `m3`.
    Material,
    /// Use of equipment (`use`); unit `hours` or `days`.
    EquipmentUse,
    /// Use of space (`use`); unit `m2_days`, `hours` or `days`.
    Space,
    /// Citation of an earlier contribution (`cite`); unit `each`; `cites` is required.
    Citation,
    /// A relationship or sale brought in (`deliverService`); unit `each` or a currency code.
    Relationship,
    /// Anything else; any unit of 1-32 characters of `a-z`, `0-9` and `_`.
    Other,
}

text_enum!(Kind {
    Kind::Work => "work",
    Kind::Cash => "cash",
    Kind::Material => "material",
    Kind::EquipmentUse => "equipment_use",
    Kind::Space => "space",
    Kind::Citation => "citation",
    Kind::Relationship => "relationship",
    Kind::Other => "other",
});

/// Where a contribution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for enough peer approvals or rejections.
    Pending,
    /// Approved by enough peers: it counts.
    Validated,
    /// Rejected by enough peers: it does not count.
    Rejected,
    /// A later contribution corrects it: it no longer counts, but stays visible.
    Superseded,
}

text_enum!(Status {
    Status::Pending => "pending",
    Status::Validated => "validated",
    Status::Rejected => "rejected",
    Status::Superseded => "superseded",
});

const MATERIAL_UNITS: &[&str] = &["each", "kg", "g", "t", "l", "ml", "m", "m2", "m3"];
const EQUIPMENT_UNITS: &[&str] = &["hours", "days"];
const SPACE_UNITS: &[&str] = &["m2_days", "hours", "days"];

/// A contribution's fields as the client sent them, before parsing.
#[derive(Debug, Clone)]
pub struct RawContribution {
    /// On whose behalf; `None` means the caller.
    pub agent_id: Option<AgentId>,
    /// The kind.
    pub kind: Kind,
    /// Decimal string.
    pub quantity: String,
    /// Unit fitting the kind.
    pub unit: String,
    /// Optional skill.
    pub skill: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Free text.
    pub description: String,
    /// http(s) link to evidence.
    pub evidence_url: Option<String>,
    /// The earlier contribution a citation points at.
    pub cites: Option<ContributionId>,
    /// The earlier contribution this one corrects.
    pub corrects: Option<ContributionId>,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
}

/// A contribution that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq)]
pub struct ContributionDraft {
    /// On whose behalf; `None` means the caller.
    pub agent_id: Option<AgentId>,
    /// The kind.
    pub kind: Kind,
    /// Exact, positive quantity in `unit`.
    pub quantity: Decimal,
    /// Unit fitting the kind.
    pub unit: String,
    /// Optional skill.
    pub skill: Option<String>,
    /// Unique tags.
    pub tags: Vec<String>,
    /// Free text.
    pub description: String,
    /// http(s) link to evidence.
    pub evidence_url: Option<String>,
    /// The earlier contribution a citation points at.
    pub cites: Option<ContributionId>,
    /// The earlier contribution this one corrects.
    pub corrects: Option<ContributionId>,
    /// When the event happened (truncated to microseconds, as both backends store it).
    pub occurred_at: DateTime<Utc>,
}

/// Parses a decimal string strictly: optional `-`, digits, optional `.digits`. No exponent,
/// no `_`, no `+`, no spaces; at most 28 significant digits (never rounded).
pub fn parse_decimal(field: &str, raw: &str) -> Result<Decimal, FieldError> {
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let shaped = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (!body.contains('.') || (!frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit())));
    if !shaped {
        return Err(FieldError::new(
            field,
            "must be a decimal number written as a string, like \"2.5\"",
        ));
    }
    Decimal::from_str_exact(raw)
        .map(|d| d.normalize())
        .map_err(|_| FieldError::new(field, "has too many digits (at most 28)"))
}

/// Checks a tag or skill: 1-40 characters of `a-z`, `0-9`, `_`, `.`, `:`, `-`, starting with a
/// letter or digit.
fn parse_label(field: &str, raw: &str) -> Result<String, FieldError> {
    let ok = !raw.is_empty()
        && raw.len() <= 40
        && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "must be 1-40 characters of a-z, 0-9, '_', '.', ':' and '-', starting with a letter or digit",
        ))
    }
}

/// Whether checking a contribution of `kind` in `unit` needs the network's currencies. A cash
/// or relationship contribution may be in one, and its error names them; otherwise a unit
/// can only be a currency code if it has an upper-case letter, since every code starts with
/// one ([`Currency::parse`]). When this is false, [`parse`] gives the same answer with or
/// without the currencies, so a write can skip reading them.
pub fn needs_currencies(kind: Kind, unit: &str) -> bool {
    matches!(kind, Kind::Cash | Kind::Relationship) || unit.bytes().any(|b| b.is_ascii_uppercase())
}

fn check_unit(kind: Kind, unit: &str, currencies: &[Currency]) -> Result<Option<u32>, FieldError> {
    let currency = currencies.iter().find(|c| c.code == unit).map(|c| c.scale);
    let fits = match kind {
        Kind::Work => unit == "hours",
        Kind::Cash => currency.is_some(),
        Kind::Material => MATERIAL_UNITS.contains(&unit),
        Kind::EquipmentUse => EQUIPMENT_UNITS.contains(&unit),
        Kind::Space => SPACE_UNITS.contains(&unit),
        Kind::Citation => unit == "each",
        Kind::Relationship => unit == "each" || currency.is_some(),
        Kind::Other => {
            !unit.is_empty()
                && unit.len() <= 32
                && unit
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }
    };
    if fits {
        return Ok(currency);
    }
    let expected = match kind {
        Kind::Work => "\"hours\"".to_owned(),
        Kind::Cash => {
            let codes: Vec<&str> = currencies.iter().map(|c| c.code.as_str()).collect();
            if codes.is_empty() {
                "one of the network's currency codes (it has none)".to_owned()
            } else {
                format!("one of the network's currency codes: {}", codes.join(", "))
            }
        }
        Kind::Material => format!("one of {}", MATERIAL_UNITS.join(", ")),
        Kind::EquipmentUse => format!("one of {}", EQUIPMENT_UNITS.join(", ")),
        Kind::Space => format!("one of {}", SPACE_UNITS.join(", ")),
        Kind::Citation => "\"each\"".to_owned(),
        Kind::Relationship => "\"each\" or one of the network's currency codes".to_owned(),
        Kind::Other => "1-32 characters of a-z, 0-9 and '_'".to_owned(),
    };
    Err(FieldError::new(
        "unit",
        format!("does not fit kind {}: expected {expected}", kind.as_str()),
    ))
}

fn check_quantity(kind: Kind, quantity: Decimal, scale_limit: u32) -> Result<(), FieldError> {
    if quantity <= Decimal::ZERO {
        return Err(FieldError::new("quantity", "must be greater than zero"));
    }
    if quantity >= MAX_QUANTITY_EXCLUSIVE {
        return Err(FieldError::new("quantity", "must be less than 10000000000"));
    }
    if kind == Kind::Work && quantity > MAX_WORK_HOURS {
        return Err(FieldError::new(
            "quantity",
            "must be at most 10000 hours for one work contribution",
        ));
    }
    if quantity.scale() > scale_limit {
        return Err(FieldError::new(
            "quantity",
            format!("must have at most {scale_limit} fraction digits"),
        ));
    }
    Ok(())
}

/// Checks everything about one contribution that needs no database. Errors name fields
/// relative to the contribution (callers add a batch index).
pub fn parse(
    raw: RawContribution,
    currencies: &[Currency],
    now: DateTime<Utc>,
) -> Result<ContributionDraft, FieldError> {
    let quantity = parse_decimal("quantity", &raw.quantity)?;
    let currency_scale = check_unit(raw.kind, &raw.unit, currencies)?;
    check_quantity(
        raw.kind,
        quantity,
        currency_scale.unwrap_or(MAX_FRACTION_DIGITS),
    )?;
    let skill = raw
        .skill
        .as_deref()
        .map(|s| parse_label("skill", s))
        .transpose()?;
    if raw.tags.len() > MAX_TAGS {
        return Err(FieldError::new(
            "tags",
            format!("must have at most {MAX_TAGS} entries"),
        ));
    }
    let mut tags: Vec<String> = Vec::with_capacity(raw.tags.len());
    for (i, tag) in raw.tags.iter().enumerate() {
        let tag = parse_label(&format!("tags[{i}]"), tag)?;
        if tags.contains(&tag) {
            return Err(FieldError::new(format!("tags[{i}]"), "is listed twice"));
        }
        tags.push(tag);
    }
    bounded_text("description", &raw.description, 0, MAX_DESCRIPTION_CHARS)?;
    if let Some(u) = &raw.evidence_url {
        check_url("evidence_url", u)?;
    }
    match (raw.kind, raw.cites) {
        (Kind::Citation, None) => {
            return Err(FieldError::new(
                "cites",
                "is required for a citation: the contribution it cites",
            ))
        }
        (k, Some(_)) if k != Kind::Citation => {
            return Err(FieldError::new("cites", "is only allowed on a citation"))
        }
        _ => {}
    }
    if raw.occurred_at > now + Duration::seconds(CLOCK_SKEW_SECONDS) {
        return Err(FieldError::new("occurred_at", "must not be in the future"));
    }
    let earliest = Utc
        .with_ymd_and_hms(1900, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH);
    if raw.occurred_at < earliest {
        return Err(FieldError::new(
            "occurred_at",
            "must not be before 1900-01-01",
        ));
    }
    Ok(ContributionDraft {
        agent_id: raw.agent_id,
        kind: raw.kind,
        quantity,
        unit: raw.unit,
        skill,
        tags,
        description: raw.description,
        evidence_url: raw.evidence_url,
        cites: raw.cites,
        corrects: raw.corrects,
        occurred_at: truncate_to_micros(raw.occurred_at),
    })
}

/// Checks an http(s) URL of bounded length.
pub fn check_url(field: &str, raw: &str) -> Result<(), FieldError> {
    if raw.len() > MAX_URL_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_URL_LEN} bytes"),
        ));
    }
    // The URL parser would quietly drop or escape control characters that are then stored
    // as given (and PostgreSQL text cannot hold NUL).
    if raw.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    match url::Url::parse(raw) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Ok(()),
        _ => Err(FieldError::new(
            field,
            "must be an absolute http or https URL",
        )),
    }
}

/// Drops sub-microsecond precision: PostgreSQL keeps microseconds, SQLite would keep more,
/// and both must return the same value.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    fn raw(kind: Kind, quantity: &str, unit: &str) -> RawContribution {
        RawContribution {
            agent_id: None,
            kind,
            quantity: quantity.into(),
            unit: unit.into(),
            skill: None,
            tags: vec![],
            description: String::new(),
            evidence_url: None,
            cites: None,
            corrects: None,
            occurred_at: Utc::now(),
        }
    }

    fn decimal(raw: &str) -> Option<Decimal> {
        Decimal::from_str(raw).ok()
    }

    fn eur() -> Vec<Currency> {
        vec![Currency {
            code: "EUR".into(),
            scale: 2,
        }]
    }

    fn field_of(r: Result<ContributionDraft, FieldError>) -> String {
        r.err().map(|e| e.field).unwrap_or_default()
    }

    /// Where [`needs_currencies`] says a contribution does not need the currencies, parsing it
    /// without them gives the same answer as with them, for every kind, in valid and invalid
    /// units alike (among them a currency code and a lower-case lookalike).
    #[test]
    fn currencies_are_needed_only_where_a_unit_can_be_one() {
        let now = Utc::now();
        let kinds = [
            Kind::Work,
            Kind::Cash,
            Kind::Material,
            Kind::EquipmentUse,
            Kind::Space,
            Kind::Citation,
            Kind::Relationship,
            Kind::Other,
        ];
        let units = [
            "hours", "days", "each", "kg", "m2_days", "eur", "EUR", "Eur", "x", "", "a b",
        ];
        let mut skipped = 0;
        for kind in kinds {
            for unit in units {
                for quantity in ["1", "2.345", "0"] {
                    if needs_currencies(kind, unit) {
                        continue;
                    }
                    skipped += 1;
                    let contribution = raw(kind, quantity, unit);
                    let with = parse(contribution.clone(), &eur(), now);
                    let without = parse(contribution, &[], now);
                    assert_eq!(
                        format!("{with:?}"),
                        format!("{without:?}"),
                        "{kind:?} {quantity} {unit:?}"
                    );
                }
            }
        }
        assert!(skipped > 100, "{skipped}");
        assert!(needs_currencies(Kind::Cash, "eur"));
        assert!(needs_currencies(Kind::Relationship, "each"));
        assert!(needs_currencies(Kind::Work, "EUR"));
        assert!(!needs_currencies(Kind::Work, "hours"));
    }

    #[test]
    fn decimals_are_strict() {
        for bad in [
            "", "1e5", "1_000", "+1", " 1", "1.", ".5", "0x10", "NaN", "1.2.3", "--1",
        ] {
            assert!(parse_decimal("q", bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_decimal("q", "2.50").ok(), decimal("2.5"));
        assert!(parse_decimal("q", "99999999999999999999999999999").is_err());
        assert!(parse_decimal("q", "1.23456789012345678901234567890").is_err());
    }

    #[test]
    fn quantity_bounds_and_units() {
        let now = Utc::now();
        assert!(parse(raw(Kind::Work, "2.5", "hours"), &eur(), now).is_ok());
        assert_eq!(
            field_of(parse(raw(Kind::Work, "0", "hours"), &eur(), now)),
            "quantity"
        );
        assert_eq!(
            field_of(parse(raw(Kind::Work, "-1", "hours"), &eur(), now)),
            "quantity"
        );
        assert_eq!(
            field_of(parse(raw(Kind::Work, "10001", "hours"), &eur(), now)),
            "quantity"
        );
        assert_eq!(
            field_of(parse(raw(Kind::Other, "10000000000", "x"), &eur(), now)),
            "quantity"
        );
        assert_eq!(
            field_of(parse(raw(Kind::Work, "2", "kg"), &eur(), now)),
            "unit"
        );
        assert_eq!(
            field_of(parse(raw(Kind::Cash, "10.001", "EUR"), &eur(), now)),
            "quantity"
        );
        assert!(parse(raw(Kind::Cash, "10.01", "EUR"), &eur(), now).is_ok());
        assert_eq!(
            field_of(parse(raw(Kind::Cash, "10", "USD"), &eur(), now)),
            "unit"
        );
        assert_eq!(
            field_of(parse(raw(Kind::Citation, "1", "each"), &eur(), now)),
            "cites"
        );
    }

    #[test]
    fn future_dates_and_tags() {
        let now = Utc::now();
        let mut r = raw(Kind::Work, "1", "hours");
        r.occurred_at = now + Duration::days(1);
        assert_eq!(field_of(parse(r, &eur(), now)), "occurred_at");
        let mut r = raw(Kind::Work, "1", "hours");
        r.tags = vec!["a".into(), "a".into()];
        assert_eq!(field_of(parse(r, &eur(), now)), "tags[1]");
        let mut r = raw(Kind::Work, "1", "hours");
        r.evidence_url = Some("javascript:alert(1)".into());
        assert_eq!(field_of(parse(r, &eur(), now)), "evidence_url");
        let mut r = raw(Kind::Work, "1", "hours");
        r.evidence_url = Some("https://example.org/a\u{0}b".into());
        assert_eq!(field_of(parse(r, &eur(), now)), "evidence_url");
    }

    #[test]
    fn max_quantity_constant_is_ten_billion() {
        assert_eq!(MAX_QUANTITY_EXCLUSIVE, Decimal::from(10_000_000_000_i64));
    }
}

//! Custom SQL types shared by both backends.
//!
//! `Dec` is an exact decimal: PostgreSQL `NUMERIC`, SQLite canonical decimal `TEXT`. SQLite
//! must never see a decimal as a number: its NUMERIC affinity silently turns it into a float.

use std::str::FromStr as _;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{HasSqlType, Numeric, Text, Timestamp};
use diesel::sqlite::Sqlite;
use rust_decimal::Decimal;

use super::conn::MultiBackend;

/// Exact decimal column: `NUMERIC` on PostgreSQL, canonical text on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1700, array_oid = 1231))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Dec;

/// A `Decimal` as stored in a [`Dec`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Dec)]
pub struct DbDecimal(pub Decimal);

impl ToSql<Dec, Pg> for DbDecimal {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Decimal as ToSql<Numeric, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Dec, Pg> for DbDecimal {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        // PostgreSQL pads to the column scale: normalise so both backends read the same value.
        match pg_numeric(bytes.as_bytes()) {
            Some(d) => Ok(DbDecimal(d)),
            None => {
                <Decimal as FromSql<Numeric, Pg>>::from_sql(bytes).map(|d| DbDecimal(d.normalize()))
            }
        }
    }
}

/// A `NUMERIC` in PostgreSQL's binary form, read straight into a normalised `Decimal` when it
/// is one exactly (at most 28 decimals, a magnitude under 2^96); None for anything else (NaN,
/// infinities, too many digits, malformed), which rust_decimal's conversion then reads or
/// refuses. rust_decimal's conversion collects the digit groups into a vector first and
/// [`Decimal::normalize`] then strips the column's 18 decimals one division at a time: 12% of
/// the server's CPU in a PostgreSQL preview, a row at a time (bench/analysis.md).
///
/// The form: the number of base-10,000 digit groups, the weight of the first (its power of
/// 10,000), the sign (0 positive, 0x4000 negative), the display scale (ignored: the value is
/// normalised anyway), then the groups, each a big-endian 16-bit word.
fn pg_numeric(bytes: &[u8]) -> Option<Decimal> {
    let word = |i: usize| -> Option<[u8; 2]> {
        let at = i.checked_mul(2)?;
        Some([*bytes.get(at)?, *bytes.get(at.checked_add(1)?)?])
    };
    let groups = usize::try_from(i16::from_be_bytes(word(0)?)).ok()?;
    let weight = i32::from(i16::from_be_bytes(word(1)?));
    let negative = match u16::from_be_bytes(word(2)?) {
        0 => false,
        0x4000 => true,
        _ => return None,
    };
    // Eight groups are 32 digits, more than a Decimal holds; their value still fits a u128.
    if groups > 8 || bytes.len() != groups.checked_add(4)?.checked_mul(2)? {
        return None;
    }
    let mut mantissa: u128 = 0;
    for i in 0..groups {
        let group = u16::from_be_bytes(word(i.checked_add(4)?)?);
        if group > 9_999 {
            return None;
        }
        mantissa = mantissa
            .checked_mul(10_000)?
            .checked_add(u128::from(group))?;
    }
    if mantissa == 0 {
        return Some(Decimal::ZERO);
    }
    // The last group's power of 10,000: the value is mantissa × 10,000^last.
    let last = weight.checked_sub(i32::try_from(groups).ok()?.checked_sub(1)?)?;
    let mut scale = 0u32;
    if last >= 0 {
        mantissa = mantissa.checked_mul(10_000u128.checked_pow(u32::try_from(last).ok()?)?)?;
    } else {
        scale = u32::try_from(last.checked_neg()?.checked_mul(4)?).ok()?;
    }
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    let signed = i128::try_from(mantissa).ok()?;
    let signed = if negative {
        signed.checked_neg()?
    } else {
        signed
    };
    // Refuses a scale over 28 and a magnitude of 2^96 or more.
    Decimal::try_from_i128_with_scale(signed, scale).ok()
}

impl ToSql<Dec, Sqlite> for DbDecimal {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.normalize().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Dec, Sqlite> for DbDecimal {
    fn from_sql(mut bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(DbDecimal(Decimal::from_str(bytes.read_text())?.normalize()))
    }
}

impl HasSqlType<Dec> for MultiBackend {
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        MultiBackend::lookup_sql_type::<Dec>(lookup)
    }
}

impl FromSql<Dec, MultiBackend> for DbDecimal {
    fn from_sql(bytes: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        bytes.from_sql::<DbDecimal, Dec>()
    }
}

impl ToSql<Dec, MultiBackend> for DbDecimal {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Dec, self));
        Ok(IsNull::No)
    }
}

/// SQL for summing a [`Dec`] column exactly in the database, and for telling whether the sum
/// came out exact: PostgreSQL sums `NUMERIC` exactly; SQLite sums decimal text as 64-bit
/// integers while every value is whole and fits, and otherwise as a float (or fails on
/// overflow), which [`exact_sum`] refuses so the caller sums the rows itself.
pub fn sum_sql(conn: &super::AnyConnection, column: &str) -> (String, String) {
    match conn {
        super::AnyConnection::Sqlite(_) => (
            format!("CAST(sum({column}) AS TEXT)"),
            format!("coalesce(typeof(sum({column})), 'null')"),
        ),
        super::AnyConnection::Postgres(_) => (
            format!("CAST(sum({column}) AS TEXT)"),
            "'integer'".to_owned(),
        ),
    }
}

/// The sum that [`sum_sql`]'s pair of columns gave, if it is exact (an empty sum is zero).
pub fn exact_sum(sum: Option<&str>, kind: &str) -> Option<Decimal> {
    match (sum, kind) {
        (None, _) => Some(Decimal::ZERO),
        (Some(text), "integer") => Decimal::from_str(text).ok().map(|d| d.normalize()),
        _ => None,
    }
}

/// A `TIMESTAMP` read for a hot loop. SQLite stores timestamps as text, and diesel's reader
/// tries chrono format strings one after another; the layout diesel writes
/// (`YYYY-MM-DD HH:MM:SS[.fraction]`) is parsed here by hand, anything else by chrono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct FastTimestamp(pub NaiveDateTime);

/// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, with an optional `.fraction` of up to
/// nine digits.
pub fn parse_sql_timestamp(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    let layout = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':';
    if !layout {
        return None;
    }
    let num = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |v, c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if !digits.is_empty() && digits.len() <= 9 => {
            let scale = 10u32.pow(9 - u32::try_from(digits.len()).ok()?);
            num(digits)? * scale
        }
        _ => return None,
    };
    let year = i32::try_from(num(&b[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, num(&b[5..7])?, num(&b[8..10])?)?.and_hms_nano_opt(
        num(&b[11..13])?,
        num(&b[14..16])?,
        num(&b[17..19])?,
        nanos,
    )
}

impl FromSql<Timestamp, Sqlite> for FastTimestamp {
    fn from_sql(mut bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = bytes.read_text();
        if let Some(t) = parse_sql_timestamp(text) {
            return Ok(FastTimestamp(t));
        }
        ["%F %T%.f", "%F %T%.f%:z", "%FT%T%.f", "%FT%T%.fZ", "%F %R"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(FastTimestamp)
            .ok_or_else(|| format!("invalid timestamp {text}").into())
    }
}

impl FromSql<Timestamp, Pg> for FastTimestamp {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(bytes).map(FastTimestamp)
    }
}

impl FromSql<Timestamp, MultiBackend> for FastTimestamp {
    fn from_sql(bytes: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        bytes.from_sql::<FastTimestamp, Timestamp>()
    }
}

/// A stored text code of a known set, read without allocating.
pub trait TextCode: Sized {
    /// The code a stored text names, if any.
    fn from_text(text: &str) -> Option<Self>;
}

impl TextCode for crate::domain::contribution::Kind {
    fn from_text(text: &str) -> Option<Self> {
        Self::from_db(text)
    }
}

impl TextCode for crate::domain::contribution::Status {
    fn from_text(text: &str) -> Option<Self> {
        Self::from_db(text)
    }
}

/// A `TEXT` column read as one of a known set of codes (None for any other text), for
/// hot loops where a `String` per row would cost an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct Code<T>(pub Option<T>);

impl<T: TextCode> FromSql<Text, Sqlite> for Code<T> {
    fn from_sql(mut bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Code(T::from_text(bytes.read_text())))
    }
}

impl<T: TextCode> FromSql<Text, Pg> for Code<T> {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Code(T::from_text(std::str::from_utf8(bytes.as_bytes())?)))
    }
}

impl<T: TextCode + 'static> FromSql<Text, MultiBackend> for Code<T> {
    fn from_sql(bytes: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        bytes.from_sql::<Code<T>, Text>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's binary `NUMERIC`: groups, weight, sign, display scale, then the groups.
    fn numeric_bytes(groups: &[i16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let count = i16::try_from(groups.len()).expect("few groups");
        let mut out = Vec::new();
        for word in [
            count.to_be_bytes(),
            weight.to_be_bytes(),
            sign.to_be_bytes(),
            dscale.to_be_bytes(),
        ] {
            out.extend_from_slice(&word);
        }
        for g in groups {
            out.extend_from_slice(&g.to_be_bytes());
        }
        out
    }

    /// rust_decimal's own conversion, normalised: what `DbDecimal` read before.
    fn reference(groups: &[i16], weight: i16, sign: u16, dscale: u16) -> Option<Decimal> {
        use diesel::pg::data_types::PgNumeric;
        let digits = groups.to_vec();
        let numeric = match sign {
            0 => PgNumeric::Positive {
                weight,
                scale: dscale,
                digits,
            },
            0x4000 => PgNumeric::Negative {
                weight,
                scale: dscale,
                digits,
            },
            _ => PgNumeric::NaN,
        };
        Decimal::try_from(&numeric).ok().map(|d| d.normalize())
    }

    /// Where the fast read gives a value, it is rust_decimal's, digit for digit and scale for
    /// scale (so it prints the same); where it gives none, the caller falls back to that.
    fn agrees(groups: &[i16], weight: i16, sign: u16, dscale: u16) -> bool {
        let fast = pg_numeric(&numeric_bytes(groups, weight, sign, dscale));
        let slow = reference(groups, weight, sign, dscale);
        match (fast, slow) {
            (Some(f), Some(s)) => {
                assert_eq!((f, f.scale(), f.to_string()), (s, s.scale(), s.to_string()));
                true
            }
            (Some(f), None) => panic!("{groups:?} w{weight}: read {f}, which rust_decimal refuses"),
            (None, _) => false,
        }
    }

    #[test]
    fn pg_numerics_read_as_rust_decimal_reads_them() {
        // 2.5 as NUMERIC(28,18); 0; -1; 10^-18; 12,345,678.9; 1; 10^24; the largest Decimal.
        assert!(agrees(&[2, 5000], 0, 0, 18));
        assert!(agrees(&[], 0, 0, 18));
        assert!(agrees(&[1], 0, 0x4000, 0));
        assert!(agrees(&[100], -5, 0, 18));
        assert!(agrees(&[1234, 5678, 9000], 1, 0, 2));
        assert!(agrees(&[1], 6, 0, 0));
        assert!(agrees(
            &[7, 9228, 1625, 1426, 4337, 5935, 4395, 335],
            7,
            0,
            0
        ));
        assert!(agrees(
            &[7, 9228, 1625, 1426, 4337, 5935, 4395, 335],
            7,
            0x4000,
            0
        ));
        // Groups PostgreSQL would have stripped (leading and trailing zeros) read the same.
        assert!(agrees(&[0, 2, 5000, 0, 0], 1, 0, 18));
        // 28 decimals exactly.
        assert!(agrees(&[0, 0, 0, 0, 0, 0, 1000], -1, 0, 28));
        // Left to rust_decimal: 2^96 (too large), 29 decimals, NaN, infinity, a bad group,
        // nine groups.
        assert!(!agrees(
            &[7, 9228, 1625, 1426, 4337, 5935, 4395, 336],
            7,
            0,
            0
        ));
        assert!(!agrees(&[0, 0, 0, 0, 0, 0, 0, 1000], -1, 0, 29));
        assert!(!agrees(&[], 0, 0xC000, 0));
        assert!(!agrees(&[], 0, 0xD000, 0));
        assert!(!agrees(&[10_000], 0, 0, 0));
        assert!(!agrees(&[-1], 0, 0, 0));
        assert!(!agrees(&[1, 0, 0, 0, 0, 0, 0, 0, 0], 0, 0, 0));
        // Malformed: fewer bytes than the groups it says.
        let mut short = numeric_bytes(&[2, 5000], 0, 0, 18);
        short.pop();
        assert_eq!(pg_numeric(&short), None);
        assert_eq!(pg_numeric(&[]), None);
    }

    #[test]
    fn pg_numerics_read_as_rust_decimal_reads_them_at_random() {
        // Every Decimal that PostgreSQL can send in canonical form (rust_decimal writes the
        // same form): many mantissas and scales, both signs.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut read = 0;
        for _ in 0..20_000 {
            let digits = next() % 29;
            let mantissa = (0..digits).fold(0i128, |m, _| m * 10 + i128::from(next() % 10));
            let scale = u32::try_from(next() % 29).expect("small");
            let mut d = Decimal::from_i128_with_scale(mantissa, scale);
            if next() % 3 == 0 {
                d.set_sign_negative(true);
            }
            let numeric = diesel::pg::data_types::PgNumeric::from(&d);
            let (groups, weight, sign, dscale) = match numeric {
                diesel::pg::data_types::PgNumeric::Positive {
                    weight,
                    scale,
                    digits,
                } => (digits, weight, 0, scale),
                diesel::pg::data_types::PgNumeric::Negative {
                    weight,
                    scale,
                    digits,
                } => (digits, weight, 0x4000, scale),
                diesel::pg::data_types::PgNumeric::NaN => unreachable!("a Decimal is a number"),
            };
            if agrees(&groups, weight, sign, dscale) {
                read += 1;
                assert_eq!(
                    pg_numeric(&numeric_bytes(&groups, weight, sign, dscale)),
                    Some(d.normalize())
                );
            }
        }
        // Every one of them takes the fast read.
        assert_eq!(read, 20_000);
    }

    #[test]
    fn sql_timestamps_parse_by_hand_as_chrono_does() {
        for text in [
            "2025-06-01 00:00:00",
            "2025-06-01T12:34:56",
            "2024-02-29 23:59:59.5",
            "2026-11-22 10:00:00.123456",
            "2026-11-22 10:00:00.123456789",
        ] {
            let chrono = NaiveDateTime::parse_from_str(text, "%F %T%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%FT%T%.f"))
                .expect("chrono parses");
            assert_eq!(parse_sql_timestamp(text), Some(chrono), "{text}");
        }
        for bad in [
            "",
            "2025-06-01",
            "2025-02-30 00:00:00",
            "2025-06-01 24:00:00",
            "2025-06-01 00:00:00.",
            "2025-06-01 00:00:00.1234567890",
            "2025-06-01 00:00:00+01:00",
            "2025-0a-01 00:00:00",
            "+2025-06-01 00:00:0",
        ] {
            assert_eq!(parse_sql_timestamp(bad), None, "{bad}");
        }
    }
}

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
        <Decimal as FromSql<Numeric, Pg>>::from_sql(bytes).map(|d| DbDecimal(d.normalize()))
    }
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

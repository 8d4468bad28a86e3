//! Custom SQL types shared by both backends.
//!
//! `Dec` is an exact decimal: PostgreSQL `NUMERIC`, SQLite canonical decimal `TEXT`. SQLite
//! must never see a decimal as a number: its NUMERIC affinity silently turns it into a float.

use std::str::FromStr as _;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{HasSqlType, Numeric};
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
    fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(DbDecimal(Decimal::from_str(&text)?.normalize()))
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

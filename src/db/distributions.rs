//! Queries on income events, distributions, their lines, claims and payments, and the
//! history later distributions depend on.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;

use super::rows::{ClaimRow, DistributionRow, IncomeRow, LineRow, PaidTotalRow, PaymentRow};
use super::schema::{
    distribution_claims, distribution_lines, distributions, income_events, line_payments,
    paid_totals, paid_totals_state,
};
use super::types::DbDecimal;
use super::AnyConnection;
use crate::domain::distribution::History;

/// Stores an income event.
pub fn insert_income(conn: &mut AnyConnection, row: &IncomeRow) -> QueryResult<()> {
    diesel::insert_into(income_events::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// An income event of a network.
pub fn find_income(
    conn: &mut AnyConnection,
    network_id: &str,
    id: &str,
) -> QueryResult<Option<IncomeRow>> {
    income_events::table
        .filter(income_events::network_id.eq(network_id))
        .filter(income_events::id.eq(id))
        .select(IncomeRow::as_select())
        .get_result(conn)
        .optional()
}

/// A page of income events, newest first.
pub fn list_income(
    conn: &mut AnyConnection,
    network_id: &str,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<IncomeRow>> {
    let mut q = income_events::table
        .filter(income_events::network_id.eq(network_id.to_owned()))
        .select(IncomeRow::as_select())
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(income_events::id.lt(b.to_owned()));
    }
    q.order(income_events::id.desc()).limit(limit).load(conn)
}

/// Stores a distribution with its lines and claim payments (multi-row INSERTs on the
/// concrete connection, as the multi-backend one cannot batch).
pub fn insert(
    conn: &mut AnyConnection,
    row: &DistributionRow,
    lines: &[LineRow],
    claims: &[ClaimRow],
) -> QueryResult<()> {
    diesel::insert_into(distributions::table)
        .values(row)
        .execute(conn)?;
    for chunk in lines.chunks(500) {
        match conn {
            AnyConnection::Postgres(c) => diesel::insert_into(distribution_lines::table)
                .values(chunk)
                .execute(c)?,
            AnyConnection::Sqlite(c) => diesel::insert_into(distribution_lines::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    for chunk in claims.chunks(500) {
        match conn {
            AnyConnection::Postgres(c) => diesel::insert_into(distribution_claims::table)
                .values(chunk)
                .execute(c)?,
            AnyConnection::Sqlite(c) => diesel::insert_into(distribution_claims::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    Ok(())
}

/// A distribution of a network.
pub fn find(
    conn: &mut AnyConnection,
    network_id: &str,
    id: &str,
) -> QueryResult<Option<DistributionRow>> {
    distributions::table
        .filter(distributions::network_id.eq(network_id))
        .filter(distributions::id.eq(id))
        .select(DistributionRow::as_select())
        .get_result(conn)
        .optional()
}

/// The distribution of an income event, if committed.
pub fn for_income(
    conn: &mut AnyConnection,
    income_id: &str,
) -> QueryResult<Option<DistributionRow>> {
    distributions::table
        .filter(distributions::income_event_id.eq(income_id))
        .select(DistributionRow::as_select())
        .first(conn)
        .optional()
}

/// A page of distributions, newest first.
pub fn list(
    conn: &mut AnyConnection,
    network_id: &str,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<DistributionRow>> {
    let mut q = distributions::table
        .filter(distributions::network_id.eq(network_id.to_owned()))
        .select(DistributionRow::as_select())
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(distributions::id.lt(b.to_owned()));
    }
    q.order(distributions::id.desc()).limit(limit).load(conn)
}

/// A distribution's lines with their payments, in line order.
pub fn lines(
    conn: &mut AnyConnection,
    distribution_id: &str,
) -> QueryResult<Vec<(LineRow, Option<PaymentRow>)>> {
    distribution_lines::table
        .left_join(line_payments::table)
        .filter(distribution_lines::distribution_id.eq(distribution_id))
        .order(distribution_lines::line_no)
        .select((LineRow::as_select(), Option::<PaymentRow>::as_select()))
        .load(conn)
}

/// Marks a line paid.
pub fn insert_payment(conn: &mut AnyConnection, row: &PaymentRow) -> QueryResult<()> {
    diesel::insert_into(line_payments::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// What distributions committed before `(at, id)` paid: per (bucket, agent) and per
/// (bucket, claim). Sums are taken in Rust: SQL arithmetic on SQLite text is floating point.
pub fn history(
    conn: &mut AnyConnection,
    network_id: &str,
    before: Option<(NaiveDateTime, &str)>,
) -> QueryResult<History> {
    let earlier = |q: distributions::BoxedQuery<'static, super::conn::MultiBackend>| match before {
        None => q,
        Some((at, id)) => q.filter(
            distributions::committed_at
                .lt(at)
                .or(distributions::committed_at
                    .eq(at)
                    .and(distributions::id.lt(id.to_owned()))),
        ),
    };
    let ids: Vec<String> = earlier(
        distributions::table
            .filter(distributions::network_id.eq(network_id.to_owned()))
            .into_boxed(),
    )
    .select(distributions::id)
    .load(conn)?;
    let mut h = History::default();
    // Payments imported from before Holoptic count as paid by the bucket they name.
    for (bucket, agent, amount) in
        super::history::prior_paid(conn, network_id, before.map(|b| b.0))?
    {
        *h.paid.entry((bucket, agent)).or_insert(Decimal::ZERO) += amount.0;
    }
    if ids.is_empty() {
        return Ok(h);
    }
    // Every distribution so far: the sums kept by the commits, when they cover them all.
    let kept = match before {
        None => kept_paid(conn, network_id, ids.len())?,
        Some(_) => None,
    };
    let paid = match kept {
        Some(kept) => kept,
        None => lines_paid(conn, &ids)?,
    };
    for (bucket, agent, amount) in paid {
        *h.paid.entry((bucket, agent)).or_insert(Decimal::ZERO) += amount;
    }
    let claims: Vec<ClaimRow> = distribution_claims::table
        .filter(distribution_claims::distribution_id.eq_any(&ids))
        .select(ClaimRow::as_select())
        .load(conn)?;
    for c in claims {
        *h.claims
            .entry((c.bucket, c.contribution_id))
            .or_insert(Decimal::ZERO) += c.amount_minor.0;
    }
    Ok(h)
}

/// What the distributions `ids` paid each agent per bucket: summed by the database where it
/// can sum exactly, else line by line.
fn lines_paid(
    conn: &mut AnyConnection,
    ids: &[String],
) -> QueryResult<Vec<(String, String, Decimal)>> {
    if let Some(sums) = paid_sums(conn, ids)? {
        return Ok(sums);
    }
    let lines: Vec<(String, Option<String>, DbDecimal)> = distribution_lines::table
        .filter(distribution_lines::distribution_id.eq_any(ids))
        .filter(distribution_lines::agent_id.is_not_null())
        .select((
            distribution_lines::bucket,
            distribution_lines::agent_id,
            distribution_lines::amount_minor,
        ))
        .load(conn)?;
    let mut sums: HashMap<(String, String), Decimal> = HashMap::new();
    for (bucket, agent, amount) in lines {
        if let Some(a) = agent {
            *sums.entry((bucket, a)).or_insert(Decimal::ZERO) += amount.0;
        }
    }
    Ok(sums.into_iter().map(|((b, a), v)| (b, a, v)).collect())
}

/// How many of the network's distributions its kept sums (`paid_totals`) cover.
fn kept_covers(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Option<i64>> {
    paid_totals_state::table
        .find(network_id)
        .select(paid_totals_state::distributions)
        .get_result(conn)
        .optional()
}

/// The kept sums per (bucket, agent), if they cover exactly the network's `count`
/// distributions. Outside a transaction (a preview) a commit may land between the reads: the
/// count is read before and after the sums, and the sums are used only if it held.
fn kept_paid(
    conn: &mut AnyConnection,
    network_id: &str,
    count: usize,
) -> QueryResult<Option<Vec<(String, String, Decimal)>>> {
    let count = i64::try_from(count).ok();
    if kept_covers(conn, network_id)? != count {
        return Ok(None);
    }
    let rows = kept_rows(conn, network_id)?;
    Ok((kept_covers(conn, network_id)? == count).then_some(rows))
}

/// The network's kept sums, whatever they cover.
fn kept_rows(
    conn: &mut AnyConnection,
    network_id: &str,
) -> QueryResult<Vec<(String, String, Decimal)>> {
    let rows: Vec<(String, String, DbDecimal)> = paid_totals::table
        .filter(paid_totals::network_id.eq(network_id))
        .select((
            paid_totals::bucket,
            paid_totals::agent_id,
            paid_totals::amount_minor,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(b, a, v)| (b, a, v.0.normalize()))
        .collect())
}

/// Adds a distribution just stored by [`insert`] to the network's kept sums, in the commit's
/// transaction (which holds the network's lock, so commits add in turn). Sums every line
/// afresh when the kept sums are behind: distributions committed before they were kept.
pub fn keep_paid(conn: &mut AnyConnection, network_id: &str, lines: &[LineRow]) -> QueryResult<()> {
    let ids: Vec<String> = distributions::table
        .filter(distributions::network_id.eq(network_id))
        .select(distributions::id)
        .load(conn)?;
    let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let covered = kept_covers(conn, network_id)?.unwrap_or(0);
    let changed: Option<Vec<(String, String, Decimal)>> = if covered == count - 1 {
        let mut current: HashMap<(String, String), Decimal> = kept_rows(conn, network_id)?
            .into_iter()
            .map(|(b, a, v)| ((b, a), v))
            .collect();
        let mut changed: HashMap<(String, String), Decimal> = HashMap::new();
        let mut overflow = false;
        for l in lines {
            let Some(agent) = &l.agent_id else { continue };
            let key = (l.bucket.clone(), agent.clone());
            let sum = changed
                .entry(key)
                .or_insert_with_key(|k| current.remove(k).unwrap_or(Decimal::ZERO));
            match sum.checked_add(l.amount_minor.0) {
                Some(v) => *sum = v,
                None => overflow = true,
            }
        }
        // Past Decimal's range the kept sums stop, and reads sum the lines as before.
        (!overflow).then(|| changed.into_iter().map(|((b, a), v)| (b, a, v)).collect())
    } else {
        diesel::delete(paid_totals::table.filter(paid_totals::network_id.eq(network_id)))
            .execute(conn)?;
        Some(lines_paid(conn, &ids)?)
    };
    let Some(changed) = changed else {
        diesel::delete(paid_totals_state::table.find(network_id)).execute(conn)?;
        return Ok(());
    };
    let rows: Vec<PaidTotalRow> = changed
        .into_iter()
        .map(|(bucket, agent_id, v)| PaidTotalRow {
            network_id: network_id.to_owned(),
            bucket,
            agent_id,
            amount_minor: DbDecimal(v),
        })
        .collect();
    for chunk in rows.chunks(500) {
        use diesel::upsert::excluded;
        let set = paid_totals::amount_minor.eq(excluded(paid_totals::amount_minor));
        let keys = (
            paid_totals::network_id,
            paid_totals::bucket,
            paid_totals::agent_id,
        );
        match conn {
            AnyConnection::Postgres(c) => diesel::insert_into(paid_totals::table)
                .values(chunk)
                .on_conflict(keys)
                .do_update()
                .set(set)
                .execute(c)?,
            // SQLite cannot take an upsert in a multi-row insert; each row is whole, so
            // replacing it is the same.
            AnyConnection::Sqlite(c) => diesel::replace_into(paid_totals::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    diesel::delete(paid_totals_state::table.find(network_id)).execute(conn)?;
    diesel::insert_into(paid_totals_state::table)
        .values((
            paid_totals_state::network_id.eq(network_id),
            paid_totals_state::distributions.eq(count),
        ))
        .execute(conn)?;
    Ok(())
}

/// What the distributions `ids` paid each agent per bucket, summed by the database: exact on
/// PostgreSQL (`NUMERIC`); on SQLite, whose amounts are decimal text, exact while every
/// amount and sum fits a 64-bit integer. None when SQLite could not sum exactly (an amount
/// past 64 bits, or an overflowing sum): the caller then sums the lines itself.
fn paid_sums(
    conn: &mut AnyConnection,
    ids: &[String],
) -> QueryResult<Option<Vec<(String, String, Decimal)>>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Nullable, Text};
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    let (sum, kind) = super::types::sum_sql(conn, "amount_minor");
    let sums = distribution_lines::table
        .filter(distribution_lines::distribution_id.eq_any(ids))
        .filter(distribution_lines::agent_id.is_not_null())
        .group_by((distribution_lines::bucket, distribution_lines::agent_id))
        .select((
            distribution_lines::bucket,
            distribution_lines::agent_id,
            sql::<Nullable<Text>>(&sum),
            sql::<Text>(&kind),
        ))
        .load::<(String, Option<String>, Option<String>, String)>(conn);
    let sums = match sums {
        Ok(s) => s,
        // SQLite's integer sum overflowed.
        Err(_) if sqlite => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(sums.len());
    for (bucket, agent, sum, kind) in sums {
        let (Some(agent), Some(amount)) = (agent, super::types::exact_sum(sum.as_deref(), &kind))
        else {
            return Ok(None);
        };
        out.push((bucket, agent, amount));
    }
    Ok(Some(out))
}

/// Everything paid to each agent by committed distributions: agent → currency → minor units.
pub fn paid_by_agent(
    conn: &mut AnyConnection,
    network_id: &str,
) -> QueryResult<HashMap<String, HashMap<String, Decimal>>> {
    let rows: Vec<(Option<String>, String, DbDecimal)> = distribution_lines::table
        .inner_join(distributions::table)
        .filter(distributions::network_id.eq(network_id))
        .filter(distribution_lines::agent_id.is_not_null())
        .select((
            distribution_lines::agent_id,
            distributions::currency,
            distribution_lines::amount_minor,
        ))
        .load(conn)?;
    let mut out: HashMap<String, HashMap<String, Decimal>> = HashMap::new();
    for (agent, currency, amount) in rows {
        if let Some(a) = agent {
            *out.entry(a)
                .or_default()
                .entry(currency)
                .or_insert(Decimal::ZERO) += amount.0;
        }
    }
    Ok(out)
}

/// Ids of every distribution line of a network.
pub fn line_ids(conn: &mut AnyConnection, network_id: &str) -> QueryResult<Vec<String>> {
    distribution_lines::table
        .inner_join(distributions::table)
        .filter(distributions::network_id.eq(network_id))
        .select(distribution_lines::id)
        .load(conn)
}

//! Accounting glue between storage and the pure domain: the equation in force, weighted
//! contributions, history, computing a distribution, and settling proposals. Runs inside
//! a handler's database closure; knows nothing of HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use sha2::{Digest as _, Sha256};

use crate::db::contributions::Counted;
use crate::db::rows::{EquationVersionRow, ProposalOutcomeRow, ProposalRow};
use crate::db::{self, write_tx, AnyConnection};
use crate::domain::distribution::{self, ByAgent, History, Outcome, Weighed};
use crate::domain::equation::{Compiled, Facts, ValueEquation};
use crate::domain::governance::{decide, ProposalStatus, Tally};
use crate::error::ApiError;

/// A stored version, compiled.
pub struct InForce {
    /// The stored row.
    pub row: EquationVersionRow,
    /// The compiled equation.
    pub eq: Arc<Compiled>,
}

/// Compiles a stored equation body (it compiled when it was proposed).
pub fn compile_body(body: &str) -> Result<Compiled, ApiError> {
    let eq: ValueEquation = serde_json::from_str(body)
        .map_err(|e| ApiError::Internal(format!("stored equation unreadable: {e}")))?;
    eq.compile().map_err(|e| {
        ApiError::Internal(format!(
            "stored equation no longer compiles: {} {}",
            e.field, e.detail
        ))
    })
}

/// The version in force at `at`, if the network has adopted one.
pub fn in_force(
    conn: &mut AnyConnection,
    network_id: &str,
    at: NaiveDateTime,
) -> Result<Option<InForce>, ApiError> {
    match db::equations::in_force(conn, network_id, at)? {
        None => Ok(None),
        Some(row) => {
            let eq = compiled(&row)?;
            Ok(Some(InForce { row, eq }))
        }
    }
}

/// A stored version's compiled equation, kept by the process once compiled: a version is
/// never changed (the database refuses updates of `equation_versions`), and an approval, a
/// contribution's weighing or a shares read looks the one in force up each time. Kept by
/// network and version, and used only for the same body, so a kept equation never stands in
/// for another database's version of the same number.
fn compiled(row: &EquationVersionRow) -> Result<Arc<Compiled>, ApiError> {
    let key = (row.network_id.clone(), row.version);
    if let Some(kept) = COMPILED.lock().get(&key).filter(|k| k.body == row.body) {
        return Ok(Arc::clone(&kept.eq));
    }
    let eq = Arc::new(compile_body(&row.body)?);
    let mut kept = COMPILED.lock();
    if kept.len() >= MOST_COMPILED_KEPT {
        kept.clear();
    }
    kept.insert(
        key,
        Kept {
            body: row.body.clone(),
            eq: Arc::clone(&eq),
        },
    );
    Ok(eq)
}

/// A compiled version and the body it was compiled from.
struct Kept {
    body: String,
    eq: Arc<Compiled>,
}

/// Compiled versions kept at most (by network and version); past it, all are dropped and
/// compiled again as they are used.
const MOST_COMPILED_KEPT: usize = 1024;

static COMPILED: LazyLock<parking_lot::Mutex<HashMap<(String, i32), Kept>>> =
    LazyLock::new(Default::default);

/// (approvals, rejections) needed under `force`, the equation in force: its own, else the
/// network's own setting.
pub fn thresholds(force: Option<&InForce>, network: &db::rows::NetworkRow) -> (i32, i32) {
    match force {
        Some(f) => (
            f.eq.source.validation.approvals_required,
            f.eq.source.validation.rejections_required,
        ),
        None => (network.approvals_required, network.rejections_required),
    }
}

/// Contributions read a page at a time while computing: memory stays bounded by this, not
/// by the network's history.
const PAGE: i64 = 10_000;

/// Pages shared between two threads are a quarter as long, and at most [`PAGES_AHEAD`] are
/// read and not yet folded: together they hold one page's rows.
const SHARED_PAGE: i64 = PAGE / 4;

/// See [`SHARED_PAGE`].
const PAGES_AHEAD: usize = 4;

/// Calls `f` with each counted contribution and its weighted value at `cutoff`, as things
/// stood at `as_of`, in id order, reading the contributions a page at a time. With a `spare`
/// connection (outside a transaction only: it reads on its own), a second thread reads and
/// weighs pages too, each thread taking the next page when it is free; `f` still sees them in
/// order, on this thread. Without one, the pages are read one after another
/// ([`db::contributions::each_page`]: on PostgreSQL the next page's query is sent before a
/// page is weighed, so PostgreSQL produces it meanwhile), with PostgreSQL's planner pinned to
/// the indexes' order ([`db::contributions::in_id_order`]).
pub fn each_weighed(
    conn: &mut AnyConnection,
    spare: Option<&mut AnyConnection>,
    network_id: &str,
    eq: &Compiled,
    cutoff: NaiveDateTime,
    as_of: NaiveDateTime,
    mut f: impl FnMut(Weighed) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let read = Reader {
        network_id,
        eq,
        cutoff,
        as_of,
        facts: if eq.reads_unit_or_skill() {
            db::contributions::PageFacts::All
        } else {
            db::contributions::PageFacts::NoUnitOrSkill
        },
    };
    if let Some(spare) = spare {
        return read.shared(conn, spare, &mut f);
    }
    db::contributions::in_id_order(conn, |conn| {
        db::contributions::each_page(
            conn,
            &read.bounds("", None),
            &eq.source.counting.statuses,
            |page| weigh_page(eq, read.cutoff_utc(), page, &mut f),
        )
    })
}

/// Pages read on a spare connection since the process started (for `/metrics`).
static PAGES_ON_SPARE: AtomicU64 = AtomicU64::new(0);

/// How many contribution pages computations have read on a spare connection.
pub fn pages_read_on_spare() -> u64 {
    PAGES_ON_SPARE.load(Ordering::Relaxed)
}

/// What [`each_weighed`] reads.
struct Reader<'a> {
    network_id: &'a str,
    eq: &'a Compiled,
    cutoff: NaiveDateTime,
    as_of: NaiveDateTime,
    /// The facts its pages carry, from the equation.
    facts: db::contributions::PageFacts,
}

impl Reader<'_> {
    fn cutoff_utc(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from_naive_utc_and_offset(self.cutoff, Utc)
    }

    /// The counted contributions after `after`, up to `upto` (at most a page).
    fn page(
        &self,
        conn: &mut AnyConnection,
        after: &str,
        upto: Option<&str>,
    ) -> Result<Vec<Counted>, ApiError> {
        Ok(db::contributions::snapshot_page(
            conn,
            &self.bounds(after, upto),
            &self.eq.source.counting.statuses,
        )?)
    }

    /// The page after `after`, up to `upto` if given (at most a page).
    fn bounds<'b>(
        &'b self,
        after: &'b str,
        upto: Option<&'b str>,
    ) -> db::contributions::PageBounds<'b> {
        db::contributions::PageBounds {
            network_id: self.network_id,
            cutoff: self.cutoff,
            as_of: self.as_of,
            after,
            upto,
            limit: PAGE,
            facts: self.facts,
        }
    }

    /// The page after `after` up to `upto`, weighed.
    fn weighed(
        &self,
        conn: &mut AnyConnection,
        after: &str,
        upto: Option<&str>,
    ) -> Result<Vec<Weighed>, ApiError> {
        let page = self.page(conn, after, upto)?;
        let mut out = Vec::with_capacity(page.len());
        weigh_page(self.eq, self.cutoff_utc(), page, &mut |w| {
            out.push(w);
            Ok(())
        })?;
        Ok(out)
    }

    /// Pages shared with a second thread reading on `spare`: each page is `SHARED_PAGE` ids
    /// of the network (counted or not), its bounds from the contributions' id index, claimed
    /// by whichever thread is free; `f` sees them in order on this thread
    /// ([`crate::ordered_pages`]).
    fn shared(
        &self,
        conn: &mut AnyConnection,
        spare: &mut AnyConnection,
        f: &mut impl FnMut(Weighed) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let on_spare = crate::ordered_pages::in_order(
            conn,
            spare,
            PAGES_AHEAD,
            &|conn, after| {
                Ok(db::contributions::page_end(
                    conn,
                    self.network_id,
                    after,
                    SHARED_PAGE,
                )?)
            },
            &|conn, after, upto| self.weighed(conn, after, upto),
            |page| page.into_iter().try_for_each(&mut *f),
        )?;
        PAGES_ON_SPARE.fetch_add(
            u64::try_from(on_spare).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

/// Weighs one page and hands each counted contribution to `f`.
fn weigh_page(
    eq: &Compiled,
    cutoff: DateTime<Utc>,
    page: Vec<Counted>,
    f: &mut impl FnMut(Weighed) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    for c in page {
        let kind = c.kind;
        let occurred_at = DateTime::<Utc>::from_naive_utc_and_offset(c.occurred_at, Utc);
        if !eq.source.counting.statuses.contains(&c.status)
            || !eq.counts(kind, &c.tags, occurred_at)
        {
            continue;
        }
        let facts = Facts {
            id: c.id,
            agent_id: c.agent_id,
            kind,
            quantity: c.quantity,
            unit: c.unit,
            skill: c.skill,
            tags: c.tags,
            occurred_at,
        };
        let value = eq.weigh(&facts, cutoff).map_err(|e| {
            ApiError::field(
                "formulas",
                format!("contribution {}: {}", e.contribution_id, e.message),
            )
        })?;
        f(Weighed {
            id: facts.id,
            agent_id: facts.agent_id,
            kind,
            tags: facts.tags,
            occurred_at,
            value,
        })?;
    }
    Ok(())
}

/// Each member's total weighted value at `cutoff`, as things stood at `as_of` (members
/// with no counted contribution are absent).
pub fn values_by_agent(
    conn: &mut AnyConnection,
    network_id: &str,
    eq: &Compiled,
    cutoff: NaiveDateTime,
    as_of: NaiveDateTime,
) -> Result<ByAgent, ApiError> {
    let mut values = ByAgent::default();
    each_weighed(conn, None, network_id, eq, cutoff, as_of, |w| {
        distribution::add_to(&mut values, &w.agent_id, w.value, "values")
            .map_err(|e| ApiError::Conflict(e.0))
    })?;
    Ok(values)
}

/// A computed (not necessarily stored) distribution.
pub struct Computed {
    /// Lines and claim payments.
    pub outcome: Outcome,
    /// SHA-256 over every input: weighted contributions, history, amount, scale, cut-off.
    pub digest: String,
}

/// Inputs of one computation.
pub struct Job<'a> {
    /// Network.
    pub network_id: &'a str,
    /// The equation.
    pub eq: &'a Compiled,
    /// Whole minor units.
    pub amount_minor: Decimal,
    /// Currency scale.
    pub scale: u32,
    /// Contributions up to this time count.
    pub cutoff: NaiveDateTime,
    /// State as of this time (now, or a distribution's commit time when verifying).
    pub as_of: NaiveDateTime,
    /// Only distributions committed before this (commit time, id) count as history.
    pub before: Option<(NaiveDateTime, &'a str)>,
    /// Tie-break salt: the income event id, so a preview equals its commit.
    pub salt: &'a str,
}

/// Computes a distribution from the database's state, folding the contributions into the
/// equation's pools as they are read.
/// With a `spare` connection, outside a transaction, the contributions are read on two
/// threads (see [`each_weighed`]).
pub fn compute(
    conn: &mut AnyConnection,
    spare: Option<&mut AnyConnection>,
    job: &Job<'_>,
) -> Result<Computed, ApiError> {
    let cutoff = DateTime::<Utc>::from_naive_utc_and_offset(job.cutoff, Utc);
    let cannot = |e: distribution::DistError| {
        ApiError::Conflict(format!("the distribution cannot be computed: {}", e.0))
    };
    let mut gathered = distribution::Gatherer::new(job.eq, cutoff);
    let mut digest = Digest::new(job);
    each_weighed(
        conn,
        spare,
        job.network_id,
        job.eq,
        job.cutoff,
        job.as_of,
        |w| {
            digest.contribution(&w.id, &w.agent_id, w.value);
            gathered.add(&w).map_err(cannot)
        },
    )?;
    let history = db::distributions::history(conn, job.network_id, job.before)?;
    let outcome = gathered
        .distribute(job.amount_minor, job.scale, &history, job.salt)
        .map_err(cannot)?;
    let digest = match digest.finish(&history) {
        Some(d) => d,
        // The database ordered ids otherwise than byte by byte (a collation): hash them in
        // byte order from a second, lighter read.
        None => {
            let mut all: Vec<(String, String, Decimal)> = Vec::new();
            each_weighed(
                conn,
                None,
                job.network_id,
                job.eq,
                job.cutoff,
                job.as_of,
                |w| {
                    all.push((w.id, w.agent_id, w.value));
                    Ok(())
                },
            )?;
            all.sort_by(|a, b| a.0.cmp(&b.0));
            let mut sorted = Digest::new(job);
            for (id, agent, value) in &all {
                sorted.contribution(id, agent, *value);
            }
            sorted
                .finish(&history)
                .ok_or_else(|| ApiError::Internal("contribution ids repeat".into()))?
        }
    };
    Ok(Computed { digest, outcome })
}

/// SHA-256 over every input of a computation: the equation, amount, scale and cut-off, each
/// counted contribution in id order (byte order) with its agent and value, then the history.
struct Digest {
    hash: Sha256,
    line: String,
    /// The last id hashed (empty before the first: ids are never empty).
    last: String,
    in_order: bool,
}

impl Digest {
    fn new(job: &Job<'_>) -> Self {
        let mut hash = Sha256::new();
        hash.update(format!(
            "equation|{}\namount|{}|{}\ncutoff|{}\n",
            job.eq.hash, job.amount_minor, job.scale, job.cutoff
        ));
        Digest {
            hash,
            line: String::new(),
            last: String::new(),
            in_order: true,
        }
    }

    /// The next contribution; ids must come in increasing byte order.
    fn contribution(&mut self, id: &str, agent: &str, value: Decimal) {
        if !self.in_order {
            return;
        }
        if !self.last.is_empty() && self.last.as_str() >= id {
            self.in_order = false;
            return;
        }
        self.last.clear();
        self.last.push_str(id);
        self.hash_line("c|", id, agent, value);
    }

    /// The digest, or None when the contributions did not come in byte order.
    fn finish(mut self, history: &History) -> Option<String> {
        if !self.in_order {
            return None;
        }
        let mut paid: Vec<_> = history.paid.iter().collect();
        paid.sort();
        for ((b, a), v) in paid {
            self.hash_line("paid|", b, a, *v);
        }
        let mut claims: Vec<_> = history.claims.iter().collect();
        claims.sort();
        for ((b, c), v) in claims {
            self.hash_line("claim|", b, c, *v);
        }
        Some(hex::encode(self.hash.finalize()))
    }

    /// Hashes the line `{tag}{first}|{second}|{value}\n`, as `format!` would write it: a
    /// contribution's (`c|`, its id, its agent) and the history's (`paid|` or `claim|`, the
    /// bucket, the agent or contribution; a `balanced` pool has one per member it paid).
    fn hash_line(&mut self, tag: &str, first: &str, second: &str, value: Decimal) {
        self.line.clear();
        self.line.push_str(tag);
        self.line.push_str(first);
        self.line.push('|');
        self.line.push_str(second);
        self.line.push('|');
        push_decimal(&mut self.line, value);
        self.line.push('\n');
        self.hash.update(self.line.as_bytes());
    }
}

/// Appends `d` as its `Display` writes it (every decimal of its scale, a `-` when negative),
/// without the formatting machinery: `writeln!` of a digest line was 6% of a 52-week
/// preview's instructions (callgrind), a line per contribution.
fn push_decimal(out: &mut String, d: Decimal) {
    const DIGITS: &[u8; 10] = b"0123456789";
    // At most 29 digits (2^96 - 1), most significant last.
    let mut digits = [0u8; 40];
    let mut len = 0;
    let mut push = |digit: u128| {
        if let Some(slot) = digits.get_mut(len) {
            *slot = DIGITS[usize::try_from(digit).unwrap_or(0)];
            len += 1;
        }
    };
    let mut m = d.mantissa().unsigned_abs();
    if let Ok(mut small) = u64::try_from(m) {
        // Most mantissas fit 64 bits, whose division is far cheaper than 128 bits'.
        loop {
            push(u128::from(small % 10));
            small /= 10;
            if small == 0 {
                break;
            }
        }
    } else {
        while m > 0 {
            push(m % 10);
            m /= 10;
        }
    }
    let scale = usize::try_from(d.scale()).unwrap_or(0);
    if d.is_sign_negative() {
        out.push('-');
    }
    let digit = |i: usize| char::from(digits.get(i).copied().unwrap_or(b'0'));
    if len <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - len));
        out.extend((0..len).rev().map(digit));
    } else {
        out.extend((scale..len).rev().map(digit));
        if scale > 0 {
            out.push('.');
            out.extend((0..scale).rev().map(digit));
        }
    }
}

/// Decides every proposal whose outcome is now certain or whose period has ended, and
/// adopts the passed ones as new versions. Writes only when something is due.
pub fn settle(
    conn: &mut AnyConnection,
    network_id: &str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    if due(conn, network_id, now)?.is_empty() {
        return Ok(());
    }
    write_tx(conn, |conn| {
        db::equations::lock_network(conn, network_id)?;
        let mut decided = due(conn, network_id, now)?;
        decided.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.id.cmp(&b.0.id)));
        for (p, tally, decided_at, status) in decided {
            let version = if status == ProposalStatus::Passed {
                Some(adopt(conn, &p, decided_at)?)
            } else {
                None
            };
            record_outcome(conn, &p, status, decided_at, tally, None, version)?;
        }
        Ok(())
    })
}

type Due = (ProposalRow, Tally, NaiveDateTime, ProposalStatus);

fn due(
    conn: &mut AnyConnection,
    network_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<Due>, ApiError> {
    let mut out = Vec::new();
    for p in db::equations::undecided(conn, network_id)? {
        let (yes, no, abstain) = db::equations::tally(conn, &p.id)?;
        let tally = Tally {
            yes,
            no,
            abstain,
            eligible: i64::from(p.eligible_voters),
        };
        let over = now >= p.voting_ends_at;
        let quorum = Decimal::from_str_exact(&p.quorum_percent).unwrap_or(Decimal::ONE_HUNDRED);
        let threshold =
            Decimal::from_str_exact(&p.threshold_percent).unwrap_or(Decimal::ONE_HUNDRED);
        let status = decide(tally, quorum, threshold, over);
        if status != ProposalStatus::Open {
            out.push((
                p.clone(),
                tally,
                if over { p.voting_ends_at } else { now },
                status,
            ));
        }
    }
    Ok(out)
}

/// Adopts a proposal's equation as the next version; returns the version number.
pub fn adopt(
    conn: &mut AnyConnection,
    p: &ProposalRow,
    decided_at: NaiveDateTime,
) -> Result<i32, ApiError> {
    let version = db::equations::next_version(conn, &p.network_id)?;
    let effective_from = p.effective_from.map_or(decided_at, |e| e.max(decided_at));
    db::equations::insert_version(
        conn,
        &EquationVersionRow {
            network_id: p.network_id.clone(),
            version,
            body: p.body.clone(),
            content_hash: p.content_hash.clone(),
            effective_from,
            adopted_at: decided_at,
            proposal_id: p.id.clone(),
        },
    )?;
    let body = serde_json::json!({
        "version": version, "content_hash": p.content_hash, "proposal_id": p.id,
        "effective_from": DateTime::<Utc>::from_naive_utc_and_offset(effective_from, Utc),
    });
    crate::journal::record(conn, &p.network_id, None, "equation.adopted", body)?;
    Ok(version)
}

/// Stores a proposal's outcome.
pub fn record_outcome(
    conn: &mut AnyConnection,
    p: &ProposalRow,
    status: ProposalStatus,
    decided_at: NaiveDateTime,
    t: Tally,
    fast_tracked_by: Option<String>,
    version: Option<i32>,
) -> Result<(), ApiError> {
    let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    db::equations::insert_outcome(
        conn,
        &ProposalOutcomeRow {
            proposal_id: p.id.clone(),
            status: status.as_str().into(),
            decided_at,
            yes_votes: n(t.yes),
            no_votes: n(t.no),
            abstain_votes: n(t.abstain),
            fast_tracked_by: fast_tracked_by.clone(),
            version,
        },
    )?;
    let body = serde_json::json!({
        "proposal_id": p.id, "status": status.as_str(), "yes": t.yes, "no": t.no, "abstain": t.abstain,
        "fast_tracked_by": fast_tracked_by, "version": version,
    });
    crate::journal::record(conn, &p.network_id, None, "proposal.decided", body)?;
    Ok(())
}

/// Whole minor units of a human amount with at most `scale` fraction digits.
pub fn to_minor(amount: Decimal, scale: u32) -> Option<Decimal> {
    let factor = Decimal::from(10u64.checked_pow(scale)?);
    amount.checked_mul(factor).map(|m| m.trunc())
}

/// Human amount text with exactly `scale` fraction digits.
pub fn to_human(minor: Decimal, scale: u32) -> String {
    let whole = minor.trunc();
    // A whole Decimal's mantissa is its value times 10^scale of its representation.
    let units = whole.mantissa() / 10i128.pow(whole.scale());
    Decimal::try_from_i128_with_scale(units, scale)
        .map_or_else(|_| minor.to_string(), |d| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest hashes exactly these lines, whatever writes them: a distribution's stored
    /// digest must still verify after the code that writes it changes.
    #[test]
    fn the_digest_hashes_its_lines_as_written() {
        let eq: ValueEquation = serde_json::from_value(serde_json::json!({
            "buckets": [{ "name": "p", "share": "straight", "percent": "100", "pool": { "policy": { "type": "equal" } } }]
        }))
        .expect("parses");
        let eq = eq.compile().expect("compiles");
        let cutoff = chrono::NaiveDate::from_ymd_opt(2026, 1, 15)
            .and_then(|d| d.and_hms_opt(10, 30, 0))
            .expect("time");
        let job = Job {
            network_id: "n",
            eq: &eq,
            amount_minor: Decimal::new(12345, 0),
            scale: 2,
            cutoff,
            as_of: cutoff,
            before: None,
            salt: "s",
        };
        let mut digest = Digest::new(&job);
        for (id, agent, value) in [
            ("c1", "a1", Decimal::new(25, 1)),
            ("c2", "a2", Decimal::new(1, 18)),
            ("c3", "a1", Decimal::new(100, 0)),
            ("c4", "a3", Decimal::new(-15, 2)),
        ] {
            digest.contribution(id, agent, value);
        }
        let mut history = History::default();
        history
            .paid
            .insert(("p".into(), "a2".into()), Decimal::new(1250, 2));
        history
            .paid
            .insert(("p".into(), "a1".into()), Decimal::new(7, 0));
        history
            .claims
            .insert(("p".into(), "c3".into()), Decimal::new(-3, 1));
        let text = format!(
            "equation|{}\namount|12345|2\ncutoff|2026-01-15 10:30:00\n\
             c|c1|a1|2.5\nc|c2|a2|0.000000000000000001\nc|c3|a1|100\nc|c4|a3|-0.15\n\
             paid|p|a1|7\npaid|p|a2|12.50\nclaim|p|c3|-0.3\n",
            eq.hash
        );
        assert_eq!(
            digest.finish(&history),
            Some(hex::encode(Sha256::digest(text.as_bytes())))
        );
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let written = |d: Decimal| {
            let mut out = String::from("x");
            push_decimal(&mut out, d);
            out
        };
        let mut cases: Vec<Decimal> = [
            "0",
            "1",
            "-1",
            "2.5",
            "0.5",
            "-0.5",
            "0.000000000000000001",
            "10",
            "100.00",
            "0.00",
            "12345678.9",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "0.0000000000000000000000000001",
            "7.9228162514264337593543950335",
            "18446744073709551615",
            "18446744073709551616",
        ]
        .iter()
        .map(|t| t.parse().expect("decimal"))
        .collect();
        let mut negative_zero = Decimal::ZERO;
        negative_zero.set_sign_negative(true);
        cases.push(negative_zero);
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let digits = next() % 29;
            let mantissa = (0..digits).fold(0i128, |m, _| m * 10 + i128::from(next() % 10));
            let sign = if next() % 2 == 0 { 1 } else { -1 };
            let scale = u32::try_from(next() % 29).expect("small");
            cases.push(Decimal::from_i128_with_scale(sign * mantissa, scale));
        }
        for d in cases {
            assert_eq!(written(d), format!("x{d}"), "{d:?}");
        }
    }

    #[test]
    fn minor_and_human() {
        let d = |s: &str| Decimal::from_str_exact(s).expect("decimal");
        assert_eq!(to_minor(d("12.34"), 2), Some(d("1234")));
        assert_eq!(to_human(d("1234"), 2), "12.34");
        assert_eq!(to_human(d("5"), 18), "0.000000000000000005");
        assert_eq!(to_human(d("1000"), 0), "1000");
    }

    fn version(network_id: &str, bucket: &str) -> EquationVersionRow {
        let eq: ValueEquation = serde_json::from_value(serde_json::json!({
            "buckets": [{"name": bucket, "share": "straight", "percent": "100",
                         "pool": {"policy": {"type": "pro_rata", "claim": "equity"}}}],
        }))
        .expect("equation");
        let at = chrono::DateTime::UNIX_EPOCH.naive_utc();
        EquationVersionRow {
            network_id: network_id.into(),
            version: 1,
            body: serde_json::to_string(&eq).expect("body"),
            content_hash: String::new(),
            effective_from: at,
            adopted_at: at,
            proposal_id: String::new(),
        }
    }

    #[test]
    fn a_version_is_compiled_once_and_only_for_its_own_body() {
        let network = uuid::Uuid::now_v7().to_string();
        let first = compiled(&version(&network, "all")).expect("compiles");
        let again = compiled(&version(&network, "all")).expect("compiles");
        assert!(Arc::ptr_eq(&first, &again), "the kept one is used");
        // The same network and number with another body (another database's version 1):
        // compiled from its own body, not taken for the kept one.
        let other = compiled(&version(&network, "everyone")).expect("compiles");
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.source.buckets[0].name, "everyone");
        assert_eq!(first.source.buckets[0].name, "all");
    }
}

"""Renders bench/run.py's figures as BENCHMARKS.md: every figure beside the baseline measured
in the same run, the ratio, and the target. The hand-written analysis (why a target is
missed, and what would meet it) is kept in bench/analysis.md and appended."""

from pathlib import Path


def ms(seconds):
    # oha reports no percentile when no request finished within the run.
    return "none finished" if seconds is None else f"{seconds * 1000:.1f} ms"


def num(x):
    return f"{x:,.0f}"


def many(n, word):
    return f"{n} {word}" if int(n) == 1 else f"{n} {word}s"


def verdict(ok):
    return "met" if ok else "**missed**"


def post_rows_lines(name, h, b):
    """The single POSTs against the same rows written by the database's own client, without
    the service: how much of each gap is the rows a POST writes, and how much the service."""
    rows = b.get("post_rows")
    if not rows:
        return []
    out = []
    if name == "PostgreSQL":
        for c, s in h["single"].items():
            post = rows["post"].get(c)
            if post is None:
                continue
            parts = ""
            if c == min(rows["post"], key=int):
                parts = (f"; the contribution alone {num(rows['contribution'][c])}, with its journal entry "
                         f"{num(rows['contribution_journal'][c])}")
            out.append(
                f"| single `POST /contributions`, {many(c, 'connection')}, against the rows a POST writes, written without the service | "
                f"{num(s['rps'])} req/s | pgbench writing those rows, one statement a POST, {many(c, 'client')}: {num(post)} tps, "
                f"{post / b['single_insert'][c]:.2f}× the single-row INSERT{parts} | {s['rps'] / post:.2f}× | | |")
    else:
        c = min(h["single"], key=int)
        s = h["single"][c]
        post = rows["post"]
        out.append(
            f"| single `POST /contributions`, {many(c, 'connection')}, against the rows a POST writes, written without the service | "
            f"{num(s['rps'])} req/s | sqlite3 writing those rows, a transaction a POST, 1 connection: {num(post)}/s, "
            f"{post / b['single_insert']:.2f}× the single-row INSERT; the contribution alone "
            f"{num(rows['contribution'])}, with its journal entry {num(rows['contribution_journal'])} | "
            f"{s['rps'] / post:.2f}× | | |")
    return out


def backend_section(name, r, sizes):
    h = r["http"]
    b = r["baseline"]
    out = [f"## {name}", ""]
    out += ["| figure | Holoptic | baseline (same run) | ratio | target | |", "|---|---|---|---|---|---|"]
    for c, s in h["single"].items():
        if name == "PostgreSQL":
            base = b["single_insert"][c]
            ratio = s["rps"] / base
            out.append(
                f"| single `POST /contributions`, {many(c, 'connection')}: req/s (p50 / p99) | "
                f"{num(s['rps'])} ({ms(s['p50'])} / {ms(s['p99'])}) | pgbench single-row INSERT, {many(c, 'client')}: {num(base)} tps | "
                f"{ratio:.2f}× | ≥ 0.7× | {verdict(ratio >= 0.7)} |")
        else:
            base = b["single_insert"]
            out.append(
                f"| single `POST /contributions`, {many(c, 'connection')}: req/s (p50 / p99) | "
                f"{num(s['rps'])} ({ms(s['p50'])} / {ms(s['p99'])}) | sqlite3 single-row autocommit INSERT: {num(base)} rows/s | "
                f"{s['rps'] / base:.2f}× | ≥ 8,000 req/s | {verdict(s['rps'] >= 8000)} |")
    out += post_rows_lines(name, h, b)
    bt = h["batch"]
    base = b["copy"] if name == "PostgreSQL" else b["batch_insert"]
    label = "COPY of the same rows" if name == "PostgreSQL" else "sqlite3 executemany, 1,000 rows a transaction"
    out.append(
        f"| batch `POST /contributions/batch` (1,000 a request, 2 connections): contributions/s | "
        f"{num(bt['contributions_per_s'])} | {label}: {num(base)} rows/s | "
        f"{bt['contributions_per_s'] / base:.2f}× | ≥ 50,000/s | {verdict(bt['contributions_per_s'] >= 50000)} |")
    v = h["validation"]
    out.append(
        f"| approvals with token minting, 4 connections: approvals/s (p50 / p99) | "
        f"{num(v['rps'])} ({ms(v['p50'])} / {ms(v['p99'])}) | — | | | |")
    for what, rd in h["reads"].items():
        out.append(
            f"| `GET {what}` at {sizes['read_rate']:,} req/s: p50 / p99 (achieved req/s) | "
            f"{ms(rd['p50'])} / {ms(rd['p99'])} ({num(rd['rps'])}) | — | | p99 ≤ 10 ms | {verdict(rd['p99'] is not None and rd['p99'] <= 0.010 and rd['non_2xx'] == 0)} |")
    if "shares_first_read_s" in h:
        out.append(
            f"| first `GET shares` after the writes (weighs every contribution; kept until the journal moves) | "
            f"{h['shares_first_read_s']:.2f} s | — | | | |")
    out.append(
        f"| server RSS idle / peak during the HTTP runs | {h['idle_rss_kib'] / 1024:.0f} MiB / {h['peak_rss_kib'] / 1024:.0f} MiB | — | | idle ≤ 50 MB | {verdict(h['idle_rss_kib'] * 1024 <= 50e6)} |")
    for n, d in r["distribution"].items():
        n = int(n)
        peak = max(d["preview_peak_kib"], d["commit_peak_kib"]) * 1024
        if name == "PostgreSQL":
            ratio = d["preview_s"] / d["group_by_s"]
            target = "≤ 2× GROUP BY, RSS < 300 MB" if n >= 1_000_000 else ""
            ok = verdict(ratio <= 2 and peak < 300e6) if target else ""
        else:
            ratio = d["preview_s"] / d["group_by_s"]
            target = "≤ 1.5 s, RSS < 300 MB" if n >= 1_000_000 else ""
            ok = verdict(d["preview_s"] <= 1.5 and peak < 300e6) if target else ""
        out.append(
            f"| distribution preview, {n:,} contributions / {sizes['members']:,} members: time (commit; peak RSS) | "
            f"{d['preview_s']:.2f} s (commit {d['commit_s']:.2f} s; peak {peak / 2**20:.0f} MiB) | "
            f"plain SQL `GROUP BY agent` sum: {d['group_by_s']:.3f} s | {ratio:.1f}× | {target} | {ok} |")
    for policy, d in r.get("policies", {}).items():
        hist = (f"; after {d['history_commits']} weekly commits, {d['history_commit_s']:.2f} s each"
                if d["history_commits"] else "")
        peak = d["peak_rss_kib"] * 1024
        parsed = (f"; {ms(d['preview_parsed_median_s'])} with the client's JSON parse"
                  if "preview_parsed_median_s" in d else "")
        out.append(
            f"| `{policy}` preview, {sizes['members']:,} members, {sizes['weekly_contributions']:,} contributions over 52 weeks{hist}: median of 5, to the answer's last byte (peak RSS) | "
            f"{ms(d['preview_median_s'])} ({parsed.lstrip('; ')}{'; ' if parsed else ''}peak {peak / 2**20:.0f} MiB) | — | | ≤ 150 ms, RSS ≤ 100 MB | "
            f"{verdict(d['preview_median_s'] <= 0.150 and peak <= 100e6)} |")
    notes = []
    for c, s in h["single"].items():
        if s["non_2xx"] or s["socket_errors"]:
            notes.append(f"single POST at {c}: {s['non_2xx']} non-2xx, socket errors {s['socket_errors'] or 'none'}")
    for what, rd in h["reads"].items():
        if rd["non_2xx"]:
            notes.append(f"{what}: {rd['non_2xx']} non-2xx answers")
    if v["non_2xx"]:
        notes.append(f"approvals: {v['non_2xx']} non-2xx answers")
    out += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    out.append(f"Ledger check after the HTTP runs: `{h['ledger_check']}`.")
    out.append("")
    return out


def render(results):
    m = results["machine"]
    sizes = results["sizes"]
    out = [
        "# Benchmarks",
        "",
        "Generated by `python3 bench/run.py` (this file's tables; the analysis at the end is "
        "`bench/analysis.md`). Every Holoptic figure is measured over HTTP against the release "
        "build with bearer auth, input validation, an `Idempotency-Key` on every write and the "
        "journal on, and beside it, in the same run on the same machine, the database's own "
        "limit it is compared with.",
        "",
        f"Run: {results['date']}{' (--quick: small sizes, not for comparison)' if results['quick'] else ''}.",
        "",
        "| machine | |",
        "|---|---|",
    ]
    out += [f"| {k} | {v} |" for k, v in m.items()]
    out += ["", f"Sizes: `{sizes}`.", ""]
    out += [
        "Load generators: `wrk` (writes, a Lua script giving every request its own idempotency key "
        "and a member's token), `oha -q` (reads at a fixed rate). The distribution history is "
        "inserted with SQL set operations (members and validated contributions) and analyzed; "
        "on PostgreSQL it is also vacuumed and checkpointed, as autovacuum and the checkpointer "
        "would have done to a history built over months, so that the preview and its `GROUP BY` "
        "both read it as it would then stand, not while PostgreSQL writes the load out. Then the "
        "server is restarted so its peak RSS (`VmHWM`) is the preview's and commit's own.",
        "",
        "The abuse limits stay on at their defaults throughout (rate limits of 20,000 requests/s "
        "per address and 5,000/s per agent, body and batch caps, client timeouts): any request "
        "they or anything else refused is listed under its table as a non-2xx answer.",
        "",
        "The rows a single POST writes (its contribution; its journal entry, with the sealing-queue "
        "row a trigger adds; its idempotency key with the answer kept for a retry) are also "
        "written without the service, by the database's own client (sqlite3, pgbench), into a "
        "copy of the service's database after the HTTP runs: same schema, indexes and triggers, "
        "ids in time order as the service's UUIDv7 ids are, random keys. That splits each "
        "single-POST figure into what the rows cost the database and what the service adds "
        "(HTTP, auth, validation, the membership check, the answer).",
        "",
    ]
    if "sqlite" in results:
        out += backend_section("SQLite", results["sqlite"], sizes)
    if "postgres" in results:
        out += backend_section("PostgreSQL", results["postgres"], sizes)
    analysis = Path(__file__).resolve().parent / "analysis.md"
    if analysis.exists():
        out += [analysis.read_text()]
    return "\n".join(out) + "\n"

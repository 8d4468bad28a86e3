#!/usr/bin/env python3
"""Holoptic's benchmark: the release server over HTTP on SQLite and PostgreSQL, each figure
measured in the same run as the database's own limit it is compared with, written to
BENCHMARKS.md.

    python3 bench/run.py            # the full run (about 15 minutes on 2 cores)
    python3 bench/run.py --quick    # smaller sizes and shorter loads, to check the harness

Needs: a Rust toolchain, PostgreSQL on 127.0.0.1:5432 (user postgres, trust), wrk (Debian's
package), oha (`cargo install oha --locked`), pgbench and psql. Every request goes through the
production path: bearer auth, input validation, an Idempotency-Key, the journal.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "holoptic"
PORT = 18230
BASE = f"http://127.0.0.1:{PORT}"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
JWT_SECRET = "bench-secret-that-is-long-enough-0123456789"
MEMBERS = 16


# ---------------------------------------------------------------- helpers


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def request(method, path, token=None, body=None, raw=None, timeout=600):
    """One request; a 503 (the pool still busy with requests queued by the previous load) is
    retried for up to a minute with the same idempotency key. Returns the status, the answer's
    bytes, and the seconds from the first attempt to the answer's last byte."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    key = str(uuid.uuid4())
    start = time.perf_counter()
    for _ in range(60):
        req = urllib.request.Request(BASE + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        req.add_header("idempotency-key", key)
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                answer = r.read()
                return r.status, answer, time.perf_counter() - start
        except urllib.error.HTTPError as e:
            if e.code == 503:
                time.sleep(1)
                continue
            raise SystemExit(f"{method} {path}: {e.code} {e.read()[:500]!r}") from e
    raise SystemExit(f"{method} {path}: still 503 after a minute")


def http(method, path, token=None, body=None, raw=None, timeout=600):
    status, answer, _ = request(method, path, token, body, raw, timeout)
    return status, json.loads(answer or b"null")


def timed(method, path, token, body):
    """The seconds to the answer's last byte (as wrk and oha time a request), the answer, and
    the seconds this client then took to parse its JSON (not the service's work: 8-27 ms for a
    52-week preview's 1.5-2.5 MB, bench/analysis.md)."""
    _, answer, took = request(method, path, token, body)
    start = time.perf_counter()
    out = json.loads(answer or b"null")
    return took, out, time.perf_counter() - start


def rss_kib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for {pid}")


def mib(kib):
    return f"{kib / 1024:.0f} MiB"


def pg_url(db):
    return f"postgres://postgres@127.0.0.1:5432/{db}"


def psql(url, sql):
    return sh(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", url, "-c", sql])


def psql_ms(url, sql):
    """Server-side time of one statement, in seconds (EXPLAIN ANALYZE's execution time)."""
    out = psql(url, "EXPLAIN (ANALYZE, TIMING OFF) " + sql)
    return float(re.search(r"Execution Time: ([\d.]+) ms", out).group(1)) / 1000


class Server:
    def __init__(self, database_url):
        self.database_url = database_url
        self.proc = None

    def env(self):
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            HOLOPTIC_JWT_SECRET=JWT_SECRET,
            HOLOPTIC_TOKEN_TTL_SECS="86400",
            HOLOPTIC_DB_POOL_SIZE="16",
            RUST_LOG="warn",
        )
        return env

    def start(self):
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--bind", f"127.0.0.1:{PORT}"],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tempfile.gettempdir()) / "holoptic-bench-server.log", "a"),
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(BASE + "/readyz", timeout=1)
                return self
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the server did not become ready")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Reads still queued from the load generator keep a graceful stop waiting.
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    @property
    def pid(self):
        return self.proc.pid


# ---------------------------------------------------------------- load generators


def parse_duration(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(path, tokens, body, connections, seconds, ids=None):
    threads = min(connections, 2)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(json.dumps(body))
        body_file = f.name
    env = dict(os.environ)
    env.update(
        BENCH_PATH=path,
        BENCH_TOKENS=",".join(tokens),
        BENCH_BODY_FILE=body_file,
        BENCH_IDS=ids or "",
        BENCH_THREADS=str(threads),
        BENCH_RUN=uuid.uuid4().hex,
    )
    out = sh(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "30s",
         "-s", str(ROOT / "bench" / "wrk.lua"), BASE],
        env=env,
    )
    os.unlink(body_file)
    lat = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, re.M))
    if "50" not in lat or "99" not in lat:
        raise SystemExit(f"wrk {path}: no latencies in its output:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": parse_duration(lat["50"]),
        "p99": parse_duration(lat["99"]),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def oha(path, token, rate, seconds):
    out = sh(
        ["oha", "-z", f"{seconds}s", "-q", str(rate), "-c", "16", "--no-tui", "--output-format",
         "json", "-H", f"Authorization: Bearer {token}", BASE + path]
    )
    r = json.loads(out)
    codes = r.get("statusCodeDistribution", {})
    return {
        "rps": r["summary"]["requestsPerSec"],
        "p50": r["latencyPercentiles"]["p50"],
        "p99": r["latencyPercentiles"]["p99"],
        "non_2xx": sum(n for code, n in codes.items() if not code.startswith("2")),
    }


# ---------------------------------------------------------------- the service under load


def work_item(i=1):
    return {
        "kind": "work",
        "quantity": str(1 + i % 8),
        "unit": "hours",
        "occurred_at": "2026-01-15T10:00:00Z",
        "description": "benchmark",
    }


def setup_network(server, slug):
    """A fresh network with MEMBERS members, a token minted at validation, adopted by vote."""
    boot = json.loads(
        sh([str(BIN), "bootstrap", "--name", "Bench", "--slug", slug, "--steward", "Steward",
            "--currency", "EUR:2"], env=server.env())
    )
    server.start()
    _, t = http("POST", "/v1/auth/token", body={"api_key": boot["api_key"]})
    steward = {"token": t["access_token"], "id": None}
    members = []
    for i in range(MEMBERS):
        _, a = http("POST", "/v1/agents", body={"display_name": f"Member {i}"})
        _, t = http("POST", "/v1/auth/token", body={"api_key": a["api_key"]})
        http("POST", f"/v1/networks/{slug}/members", t["access_token"], {})
        members.append({"token": t["access_token"], "id": a["agent"]["id"]})
    http("POST", f"/v1/networks/{slug}/token", steward["token"],
         {"symbol": "BEN", "name": "Bench token", "decimals": 2})
    eq = {
        "buckets": [{"name": "all", "share": "straight", "percent": "100",
                     "pool": {"policy": {"type": "pro_rata", "claim": "equity"}}}],
        "token": {"mint_on": "validation", "per_unit": "10", "transferable": True},
    }
    _, p = http("POST", f"/v1/networks/{slug}/proposals", steward["token"],
                {"title": "Bench rules", "equation": eq})
    for voter in [steward] + members:
        _, v = http("POST", f"/v1/networks/{slug}/proposals/{p['id']}/votes", voter["token"],
                    {"vote": "yes"})
        if v.get("status") == "passed":
            break
    return steward, members


def http_benchmarks(server, sizes):
    slug = "bench"
    steward, members = setup_network(server, slug)
    time.sleep(2)
    r = {"idle_rss_kib": rss_kib(server.pid)}
    tokens = [m["token"] for m in members]
    path = f"/v1/networks/{slug}/contributions"
    r["single"] = {}
    for c in sizes["concurrency"]:
        r["single"][c] = wrk(path, tokens, work_item(), c, sizes["seconds"])
    batch = {"items": [work_item(i) for i in range(1000)]}
    b = wrk(path + "/batch", tokens, batch, 2, sizes["seconds"])
    b["contributions_per_s"] = b["rps"] * 1000
    r["batch"] = b

    # Validation: member 0's contributions, approved by member 1 (each mints tokens).
    ids = []
    for _ in range(sizes["to_validate"] // 1000):
        _, out = http("POST", path + "/batch", members[0]["token"], batch)
        ids += [c["id"] for c in out["items"]]
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("\n".join(ids))
        ids_file = f.name
    v = wrk(path + "/{id}/validations", [members[1]["token"]], {"decision": "approve"}, 4,
            sizes["validation_seconds"], ids=ids_file)
    os.unlink(ids_file)
    r["validation"] = v

    # Reads at a fixed rate: balances first, then shares. The first shares read after the
    # writes weighs every contribution (the table the server then keeps for the network until
    # the journal moves); it is timed on its own, then the rate run reads the kept table.
    r["reads"] = {}
    r["reads"]["balance"] = oha(f"/v1/networks/{slug}/balances/{members[0]['id']}", tokens[2],
                                sizes["read_rate"], sizes["seconds"])
    t0 = time.monotonic()
    http("GET", f"/v1/networks/{slug}/shares?limit=50", tokens[2])
    r["shares_first_read_s"] = time.monotonic() - t0
    r["reads"]["shares"] = oha(f"/v1/networks/{slug}/shares?limit=50", tokens[2],
                               sizes["read_rate"], sizes["seconds"])
    r["peak_rss_kib"] = rss_kib(server.pid, "VmHWM")
    _, check = http("GET", f"/v1/networks/{slug}/ledger/check", tokens[2])
    r["ledger_check"] = "ok" if check["ok"] else check["problems"]
    server.stop()
    return r


# ---------------------------------------------------------------- distributions at scale


def seed_statements(backend, network_id, n_members, first, last, agents=True, weekly=False):
    """Members and validated contributions [first, last), inserted with the database's own set
    operations: the API's write path is measured above; this only builds the history that the
    distribution benchmark reads."""

    def ident(prefix, expr):
        if backend == "sqlite":
            return f"printf('{prefix}-0000-7000-8000-%012d', {expr})"
        return f"'{prefix}-0000-7000-8000-' || lpad(({expr})::text, 12, '0')"

    def ts(text):
        return f"'{text}'" if backend == "sqlite" else f"TIMESTAMP '{text}'"

    def rows(lo, hi):
        if backend == "sqlite":
            return (f"WITH RECURSIVE s(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM s "
                    f"WHERE i + 1 < {hi}) ", "FROM s")
        return "", f"FROM generate_series({lo}, {hi - 1}) AS s(i)"

    agent = ident("b0000000", f"i % {n_members}")
    out = []
    if first == 0:
        w, src = rows(0, n_members)
        if agents:
            out.append(f"{w}INSERT INTO agents (id, display_name, wallet_address, created_at) "
                       f"SELECT {ident('b0000000', 'i')}, 'Bench ' || i, NULL, {ts('2025-01-01 00:00:00')} {src} "
                       "WHERE true ON CONFLICT DO NOTHING")  # WHERE: SQLite would read ON as a join
        out.append(f"{w}INSERT INTO memberships (network_id, agent_id, role, joined_at) "
                   f"SELECT '{network_id}', {ident('b0000000', 'i')}, 'member', {ts('2025-01-01 00:00:00')} {src}")
    w, src = rows(first, last)
    prefix = "c" + network_id[-7:]  # contribution ids unique across networks
    when = ts("2025-06-01 00:00:00")
    if weekly:  # spread over the 52 weeks before now
        base = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(weeks=52)).strftime("%Y-%m-%d %H:%M:%S")
        when = (f"datetime('{base}', '+' || ((i % 52) * 7) || ' days')"
                if backend == "sqlite" else f"TIMESTAMP '{base}' + (i % 52) * INTERVAL '7 days'")
    quantity = "CAST(1 + i % 8 AS TEXT)" if backend == "sqlite" else "1 + i % 8"
    out.append(
        f"{w}INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, quantity, unit, "
        "skill, description, evidence_url, cites, corrects, occurred_at, recorded_at) "
        f"SELECT {ident(prefix, 'i')}, '{network_id}', {agent}, {agent}, 'work', {quantity}, "
        f"'hours', NULL, 'seeded', NULL, NULL, NULL, {when}, {when} {src}")
    out.append(f"{w}INSERT INTO contribution_outcomes (contribution_id, status, decided_at, network_id) "
               f"SELECT {ident(prefix, 'i')}, 'validated', {when}, '{network_id}' {src}")
    return out


def seed_sqlite(path, network_id, n_members, last, first, **kw):
    db = sqlite3.connect(path)
    db.execute("PRAGMA busy_timeout=10000")
    with db:
        for stmt in seed_statements("sqlite", network_id, n_members, first, last, **kw):
            db.execute(stmt)
    db.execute("ANALYZE")
    db.close()


def seed_postgres(url, network_id, n_members, last, first, **kw):
    stmts = seed_statements("postgres", network_id, n_members, first, last, **kw)
    psql(url, "BEGIN; " + "; ".join(stmts) + "; COMMIT;")
    # As autovacuum and the checkpointer would have left a history built over months (this
    # machine's PostgreSQL runs with autovacuum off): without it the first preview after the
    # load paid for setting every row's hint bits and competed with the checkpoint writing
    # the load out, and the GROUP BY measured after it did not (bench/analysis.md).
    psql(url, "VACUUM ANALYZE")
    psql(url, "CHECKPOINT")


def distribution_benchmarks(server, seed, group_by, sizes):
    slug = "big"
    _, t = http("POST", "/v1/auth/token", body={"api_key": server.steward_key})
    token = t["access_token"]
    _, net = http("POST", "/v1/networks", token,
                  {"name": "Big", "slug": slug, "currencies": [{"code": "EUR", "scale": 2}]})
    eq = {"buckets": [{"name": "all", "share": "straight", "percent": "100",
                       "pool": {"policy": {"type": "pro_rata", "claim": "equity"}}}]}
    _, p = http("POST", f"/v1/networks/{slug}/proposals", token, {"title": "Pro rata", "equation": eq})
    http("POST", f"/v1/networks/{slug}/proposals/{p['id']}/votes", token, {"vote": "yes"})
    results = {}
    done = 0
    for n in sizes["distribution"]:
        server.stop()
        start = time.perf_counter()
        seed(net["id"], sizes["members"], n, done)
        seed_s = time.perf_counter() - start
        done = n
        server.start()
        base_rss = rss_kib(server.pid, "VmHWM")
        _, inc = http("POST", f"/v1/networks/{slug}/income", token,
                      {"amount": "100000.00", "currency": "EUR", "source": "bench",
                       "received_at": "2026-01-01T00:00:00Z"})
        preview_s, out, _ = timed("POST", f"/v1/networks/{slug}/income/{inc['id']}/preview", token, {})
        preview_rss = rss_kib(server.pid, "VmHWM")
        commit_s, _, _ = timed("POST", f"/v1/networks/{slug}/income/{inc['id']}/distribution", token, {})
        commit_rss = rss_kib(server.pid, "VmHWM")
        lines = out["lines"]
        total = sum(int(line["amount_minor"]) for line in lines)
        if total != int(out["amount_minor"]):
            raise SystemExit(f"preview of {n}: lines sum to {total}, not {out['amount_minor']}")
        results[n] = {
            "seed_s": seed_s,
            "preview_s": preview_s,
            "commit_s": commit_s,
            "rss_before_kib": base_rss,
            "preview_peak_kib": preview_rss,
            "commit_peak_kib": commit_rss,
            "lines": len(lines),
            "lines_total_minor": total,
            "amount_minor": int(out["amount_minor"]),
            "group_by_s": group_by(net["id"]),
        }
    server.stop()
    return results


def policy_benchmarks(server, seed, sizes):
    """balanced, immediate and recent previews among `members` members whose contributions
    span 52 weekly periods; balanced also has 52 committed weekly distributions of history."""
    _, t = http("POST", "/v1/auth/token", body={"api_key": server.steward_key})
    token = t["access_token"]
    policies = {
        "balanced": {"type": "balanced"},
        "immediate": {"type": "immediate", "period_days": 7, "periods": 4},
        "recent": {"type": "recent", "period_days": 7, "discount": "0.5"},
    }
    out = {}
    for name, policy in policies.items():
        slug = f"weekly-{name}"
        _, net = http("POST", "/v1/networks", token,
                      {"name": f"Weekly {name}", "slug": slug, "currencies": [{"code": "EUR", "scale": 2}]})
        eq = {"buckets": [{"name": name, "share": "straight", "percent": "100", "pool": {"policy": policy}}]}
        _, p = http("POST", f"/v1/networks/{slug}/proposals", token, {"title": name, "equation": eq})
        http("POST", f"/v1/networks/{slug}/proposals/{p['id']}/votes", token, {"vote": "yes"})
        server.stop()
        # The agents may exist already (the distribution part seeds them): run alone, this
        # part seeds them itself.
        seed(net["id"], sizes["members"], sizes["weekly_contributions"], 0, weekly=True)
        server.start()
        commits = 0
        if name == "balanced":
            start = time.perf_counter()
            # The equation is in force from its adoption (now), so the 52 earlier weekly
            # distributions are committed now, each over the contributions so far.
            received = (datetime.datetime.now(datetime.timezone.utc)
                        - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for week in range(52):
                _, inc = http("POST", f"/v1/networks/{slug}/income", token,
                              {"amount": "1000.00", "currency": "EUR", "source": f"week {week}",
                               "received_at": received})
                http("POST", f"/v1/networks/{slug}/income/{inc['id']}/distribution", token, {})
                commits += 1
            history_s = time.perf_counter() - start
        server.restart()
        _, inc = http("POST", f"/v1/networks/{slug}/income", token,
                      {"amount": "1000.00", "currency": "EUR", "source": "bench",
                       "received_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
        times, parsed = [], []
        for _ in range(5):
            took, res, parse_s = timed("POST", f"/v1/networks/{slug}/income/{inc['id']}/preview", token, {})
            times.append(took)
            parsed.append(took + parse_s)
        times.sort()
        parsed.sort()
        out[name] = {
            "preview_median_s": times[len(times) // 2],
            "preview_min_s": times[0],
            # What earlier runs reported: the time to the last byte and this client's parse.
            "preview_parsed_median_s": parsed[len(parsed) // 2],
            "peak_rss_kib": rss_kib(server.pid, "VmHWM"),
            "lines": len(res["lines"]),
            "history_commits": commits,
            "history_commit_s": history_s / commits if commits else None,
        }
    server.stop()
    return out


# ---------------------------------------------------------------- the databases' own limits

BENCH_TABLE = """
DROP TABLE IF EXISTS bench_contributions;
CREATE TABLE bench_contributions (
    id TEXT PRIMARY KEY NOT NULL, network_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    recorded_by TEXT NOT NULL, kind TEXT NOT NULL, quantity NUMERIC(28,18) NOT NULL,
    unit TEXT NOT NULL, skill TEXT, description TEXT NOT NULL, evidence_url TEXT, cites TEXT,
    corrects TEXT, occurred_at TIMESTAMP NOT NULL, recorded_at TIMESTAMP NOT NULL);
CREATE INDEX bench_contributions_network ON bench_contributions(network_id, id);
CREATE INDEX bench_contributions_agent ON bench_contributions(network_id, agent_id);
"""


def pgbench_insert(url, connections, seconds):
    psql(url, BENCH_TABLE)
    script = ("INSERT INTO bench_contributions VALUES (gen_random_uuid()::text, 'n', 'a', 'a', "
              "'work', 2.5, 'hours', NULL, 'benchmark', NULL, NULL, NULL, now(), now());\n")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        name = f.name
    out = sh(["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j",
              str(min(connections, 2)), "-T", str(seconds), "-f", name, url])
    os.unlink(name)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def pg_copy(url, rows):
    psql(url, BENCH_TABLE)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        for i in range(rows):
            f.write(f"{uuid.uuid4()},n,a{i % 1000},a,work,2.5,hours,,benchmark,,,,"
                    "2026-01-15 10:00:00,2026-01-15 10:00:00\n")
        name = f.name
    start = time.perf_counter()
    psql(url, f"\\copy bench_contributions FROM '{name}' CSV")
    took = time.perf_counter() - start
    os.unlink(name)
    return rows / took


def sqlite_inserts(path, seconds, batch):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for stmt in BENCH_TABLE.split(";"):
        if stmt.strip():
            db.execute(stmt.replace("NUMERIC(28,18)", "TEXT"))
    row = ("n", "a", "a", "work", "2.5", "hours", None, "benchmark", None, None, None,
           "2026-01-15 10:00:00", "2026-01-15 10:00:00")
    sql = "INSERT INTO bench_contributions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if batch == 1:
            db.execute(sql, (str(uuid.uuid4()),) + row)
        else:
            db.execute("BEGIN")
            db.executemany(sql, [(str(uuid.uuid4()),) + row for _ in range(batch)])
            db.execute("COMMIT")
        n += batch
    took = time.perf_counter() - start
    db.close()
    return n / took


# What one single POST writes, written by the database's own client alone: the part of the
# single-POST gap that is the rows themselves, not the service around them.

POST_ROWS = ("contribution", "contribution_journal", "post")


def ordered_id():
    """A 36-character id in time order, as the service's UUIDv7 ids are (so each table's
    index takes it at its end, as it takes the service's)."""
    return f"{time.time_ns() // 1000:014x}" + str(uuid.uuid4())[14:]


def post_texts(network, agent, cid):
    """The journal entry's body and the answer the key keeps, shaped as the service's."""
    compact = dict(separators=(",", ":"))
    fields = {"agent_id": agent, "cites": None, "corrects": None, "description": "benchmark",
              "evidence_url": None, "id": cid, "kind": "work", "occurred_at": "2026-01-15T10:00:00Z",
              "quantity": "2", "recorded_by": agent, "skill": None, "tags": [], "unit": "hours"}
    answer = {"id": cid, "network_id": network, "agent_id": agent, "recorded_by": agent, "kind": "work",
              "quantity": "2", "unit": "hours", "skill": None, "tags": [], "description": "benchmark",
              "evidence_url": None, "cites": None, "corrects": None, "corrected_by": None,
              "status": "pending", "approvals": 0, "rejections": 0,
              "occurred_at": "2026-01-15T10:00:00Z", "recorded_at": "2026-12-07T23:44:24.188708Z"}
    return json.dumps(fields, **compact), json.dumps(answer, **compact)


REQUEST_HASH = "9ee7e29169bde97e6191acdb4d7258ada1e4f2e159f866606f80690433f70344"


def key_scope(agent):
    """The scope a member's idempotency keys for single POSTs are kept under."""
    return f"{agent} POST /v1/networks/bench/contributions"


# A POST's rows, one statement each, for both clients. `:name` is a bound value (sqlite3's
# named parameters, pgbench's variables); `{…}` is filled in per client (`POST_ROW_VALUES`).
POST_ROW_SQL = {
    "contribution": "INSERT INTO contributions (id, network_id, agent_id, recorded_by, kind, quantity, unit, "
                    "skill, description, evidence_url, cites, corrects, occurred_at, recorded_at) "
                    "VALUES ({cid}, :net, :agent, :agent, 'work', {quantity}, 'hours', NULL, 'benchmark', NULL, "
                    "NULL, NULL, '2026-01-15 10:00:00', {now})",
    "journal": "INSERT INTO journal_entries (id, network_id, recorded_at, actor, kind, body) "
               "VALUES ({jid}, :net, {now}, :agent, 'contribution.recorded', :body)",
    "key": "INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, status_code, content_type, "
           "response_body, created_at, response_zstd) "
           "VALUES (:scope, {key}, :hash, 'done', 201, 'application/json', :answer, {now}, NULL)",
}

# A time-ordered 36-character id in SQL, as ordered_id() makes.
PG_ORDERED_ID = ("(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000000)::bigint), 14, '0') "
                 "|| substr(gen_random_uuid()::text, 15))")

POST_ROW_VALUES = {
    # Bound per POST by the bench; quantities are canonical decimal text on SQLite.
    "sqlite": dict(cid=":cid", jid=":jid", key=":key", now=":now", quantity="'2'"),
    # Made by PostgreSQL per statement.
    "postgres": dict(cid=PG_ORDERED_ID, jid=PG_ORDERED_ID, key="gen_random_uuid()::text", now="now()",
                     quantity="2"),
}


def post_row_sql(backend, upto):
    """The first `upto` of a POST's statements (contribution, journal entry, key) for a client."""
    return [POST_ROW_SQL[k].format(**POST_ROW_VALUES[backend]) for k in ("contribution", "journal", "key")[:upto]]


def sqlite_post_rows(service_db, workdir, seconds):
    """The rows of one single POST, a transaction each, written by sqlite3 from one connection
    into a copy of the service's database after the HTTP runs (its schema, indexes and
    triggers): the contribution alone; with its journal entry (and the entry's sealing-queue
    row, which a trigger adds); and with the key and its answer too, all a POST writes."""
    copy = workdir / "post-rows.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(copy) + suffix).unlink(missing_ok=True)
    src, dst = sqlite3.connect(service_db), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    db = sqlite3.connect(copy, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    network, agent = db.execute("SELECT network_id, agent_id FROM contributions LIMIT 1").fetchone()
    # The texts once, as pgbench's run takes them: a POST's differ from another's only in the
    # id they name, not in length, and making them anew cost the loop about 11 us of Python a
    # POST (the ids, key and time made per POST below, about 10 us; the INSERT baseline, 2).
    body, answer = post_texts(network, agent, ordered_id())
    fixed = dict(net=network, agent=agent, body=body, scope=key_scope(agent), hash=REQUEST_HASH, answer=answer)
    out = {}
    for upto, name in enumerate(POST_ROWS, 1):
        statements = post_row_sql("sqlite", upto)
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            values = dict(fixed, cid=ordered_id(), jid=ordered_id(), key=str(uuid.uuid4()),
                          now=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"))
            db.execute("BEGIN IMMEDIATE")
            for sql in statements:
                db.execute(sql, values)
            db.execute("COMMIT")
            n += 1
        out[name] = n / (time.perf_counter() - start)
    db.close()
    return out


def pg_post_rows(source_db, connections, seconds):
    """The rows of one single POST, one statement each (as the service sends a POST's rows:
    inserts joined by `WITH`), by pgbench into a copy of the service's database after the HTTP
    runs: the contribution alone and with its journal entry at 1 client, and all a POST writes
    (the key and its answer too) at each concurrency."""
    db = "holoptic_post_rows"
    sh(["psql", "-q", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
    sh(["psql", "-q", PG_ADMIN, "-c", f"CREATE DATABASE {db} TEMPLATE {source_db}"])
    url = pg_url(db)
    network, agent = psql(url, "SELECT network_id, agent_id FROM contributions LIMIT 1").strip().split("|")
    body, answer = post_texts(network, agent, ordered_id())
    c, j, k = post_row_sql("postgres", 3)
    scripts = {
        "contribution": c,
        "contribution_journal": f"WITH c AS ({c}) {j}",
        "post": f"WITH c AS ({c}), j AS ({j}) {k}",
    }
    out = {}
    for name, sql in scripts.items():
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(sql + ";\n")
            script = f.name
        out[name] = {}
        for n in connections if name == "post" else connections[:1]:
            res = sh(["pgbench", "-n", "-M", "prepared", "-c", str(n), "-j", str(min(n, 2)), "-T", str(seconds),
                      "-f", script, "-D", f"net={network}", "-D", f"agent={agent}", "-D", f"body={body}",
                      "-D", f"answer={answer}", "-D", f"scope={key_scope(agent)}",
                      "-D", f"hash={REQUEST_HASH}", url])
            out[name][n] = float(re.search(r"tps = ([\d.]+)", res).group(1))
        os.unlink(script)
    sh(["psql", "-q", PG_ADMIN, "-c", f"DROP DATABASE {db} WITH (FORCE)"])
    return out


def sqlite_group_by(path, network_id):
    db = sqlite3.connect(path)
    start = time.perf_counter()
    db.execute(
        "SELECT c.agent_id, SUM(CAST(c.quantity AS REAL)) FROM contributions c NOT INDEXED "
        "JOIN contribution_outcomes o ON o.contribution_id = c.id "
        "WHERE c.network_id = ? AND o.status = 'validated' GROUP BY c.agent_id",
        (network_id,),
    ).fetchall()
    took = time.perf_counter() - start
    db.close()
    return took


def pg_group_by(url, network_id):
    return psql_ms(
        url,
        "SELECT c.agent_id, SUM(c.quantity) FROM contributions c "
        "JOIN contribution_outcomes o ON o.contribution_id = c.id "
        f"WHERE c.network_id = '{network_id}' AND o.status = 'validated' GROUP BY c.agent_id",
    )


# ---------------------------------------------------------------- the run


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": f"{int(mem) // 1024 // 1024} GiB",
        "kernel": platform.release(),
        "postgres": sh(["psql", "-At", PG_ADMIN, "-c", "SHOW server_version"]).strip(),
        # The bench's databases are created with template1's; the baselines' tables use it.
        "postgres collation": sh(["psql", "-At", PG_ADMIN, "-c",
                                  "SELECT datcollate FROM pg_database WHERE datname = 'template1'"]).strip()
        + " (new databases' default: the baselines' tables compare text with it; Holoptic's "
          "text columns compare byte by byte, \"C\", whatever it is)",
        "sqlite": sqlite3.sqlite_version + " (python's, for the baseline; the service bundles its own)",
        "rustc": sh(["rustc", "--version"]).strip(),
        "wrk": "wrk (Debian package)",
        "oha": sh(["oha", "--version"]).strip() if shutil.which("oha") else "not installed",
    }


PARTS = ("http", "baselines", "distribution", "policies")


def run_backend(backend, sizes, workdir, parts=PARTS):
    res = {"backend": backend}
    path = None
    if backend == "sqlite":
        path = workdir / "bench.db"
        url = f"sqlite://{path}"
    else:
        db = "holoptic_bench"
        sh(["psql", "-q", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
        sh(["psql", "-q", PG_ADMIN, "-c", f"CREATE DATABASE {db}"])
        url = pg_url(db)
    server = Server(url)
    try:
        return measure_backend(backend, sizes, url, path if backend == "sqlite" else None, server, res,
                               parts)
    finally:
        server.stop()


def measure_backend(backend, sizes, url, path, server, res, parts=PARTS):
    if "http" in parts:
        print(f"[{backend}] HTTP benchmarks", file=sys.stderr)
        res["http"] = http_benchmarks(server, sizes)

    print(f"[{backend}] baselines", file=sys.stderr)
    if "baselines" not in parts:
        pass
    elif backend == "sqlite":
        base = path.parent / "baseline.db"
        res["baseline"] = {
            "single_insert": sqlite_inserts(base, sizes["seconds"], 1),
            "batch_insert": sqlite_inserts(base, sizes["seconds"], 1000),
        }
        if "http" in parts:
            res["baseline"]["post_rows"] = sqlite_post_rows(path, path.parent, sizes["seconds"])
    else:
        res["baseline"] = {}
        if "http" in parts:
            # First, while the service's database is as the HTTP runs left it.
            res["baseline"]["post_rows"] = pg_post_rows(url.rsplit("/", 1)[1], sizes["concurrency"],
                                                        sizes["seconds"])
        res["baseline"].update(
            single_insert={c: pgbench_insert(url, c, sizes["seconds"]) for c in sizes["concurrency"]},
            copy=pg_copy(url, sizes["copy_rows"]),
        )

    print(f"[{backend}] distributions", file=sys.stderr)
    server.start()
    _, a = http("POST", "/v1/agents", body={"display_name": "Big steward"})
    server.steward_key = a["api_key"]
    if backend == "sqlite":
        seed = lambda net, m, n, first, **kw: seed_sqlite(path, net, m, n, first, **kw)  # noqa: E731
        group_by = lambda net: sqlite_group_by(path, net)  # noqa: E731
    else:
        seed = lambda net, m, n, first, **kw: seed_postgres(url, net, m, n, first, **kw)  # noqa: E731
        group_by = lambda net: pg_group_by(url, net)  # noqa: E731
    if "distribution" in parts:
        res["distribution"] = distribution_benchmarks(server, seed, group_by, sizes)
    if "policies" in parts:
        print(f"[{backend}] balanced / immediate / recent over 52 weeks", file=sys.stderr)
        server.restart()  # still running when the distribution part did not run
        res["policies"] = policy_benchmarks(server, seed, sizes)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes: check the harness")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--parts", default=",".join(PARTS),
                    help="a subset of " + ",".join(PARTS) + " (then only the raw figures are written)")
    ap.add_argument("--bin", help="measure this server binary instead of building target/release/holoptic")
    ap.add_argument("--render", metavar="JSON",
                    help="only write BENCHMARKS.md from an earlier run's raw figures")
    args = ap.parse_args()
    if args.render:
        from report import render  # noqa: E402 (bench/report.py, beside this file)

        Path(args.out).write_text(render(json.loads(Path(args.render).read_text())))
        return
    parts = tuple(args.parts.split(","))
    if any(p not in PARTS for p in parts):
        raise SystemExit(f"--parts: each must be one of {', '.join(PARTS)}")
    if args.quick:
        sizes = dict(concurrency=[1, 4], seconds=3, validation_seconds=3, to_validate=4000,
                     read_rate=200, members=500, distribution=[10_000, 20_000], copy_rows=50_000,
                     weekly_contributions=5_000)
    else:
        sizes = dict(concurrency=[1, 4, 16], seconds=10, validation_seconds=5, to_validate=30_000,
                     read_rate=1000, members=10_000, distribution=[100_000, 1_000_000],
                     copy_rows=1_000_000, weekly_contributions=104_000)
    for tool in ("wrk", "oha", "pgbench", "psql") if "http" in parts else ("pgbench", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (see bench/run.py's docstring)")
    global BIN
    if args.bin:
        BIN = Path(args.bin).resolve()
    else:
        sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    results = {"machine": machine(), "sizes": sizes, "quick": args.quick,
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    with tempfile.TemporaryDirectory() as d:
        raw = Path(tempfile.gettempdir()) / "holoptic-bench.json"
        for backend in args.backends.split(","):
            results[backend] = run_backend(backend, sizes, Path(d), parts)
            raw.write_text(json.dumps(results, indent=2))
    print(f"raw figures: {raw}", file=sys.stderr)
    if set(parts) != set(PARTS):
        print(raw.read_text())
        return
    from report import render  # noqa: E402 (bench/report.py, beside this file)

    Path(args.out).write_text(render(results))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

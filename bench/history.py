#!/usr/bin/env python3
"""Writes after a long journal: 150 batches of 1,000 contributions, then single POST and
minting approvals at 4 wrk connections, on one backend, with the harness of bench/run.py. On
PostgreSQL it samples, during the approvals, which statements block others (pg_stat_activity
and pg_blocking_pids) and prints them.

    python3 bench/history.py target/release/holoptic sqlite|postgres

Needs wrk and psql, as bench/run.py does. Prints the figures; writes nothing."""
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402 (bench/run.py, beside this file)

BLOCKERS = (
    "select distinct b.state, b.wait_event_type, b.wait_event, "
    "left(regexp_replace(b.query, '\\s+', ' ', 'g'), 160) "
    "from pg_stat_activity a join pg_stat_activity b on b.pid = any(pg_blocking_pids(a.pid)) "
    "where a.datname = current_database()"
)


def main():
    binary, backend = Path(sys.argv[1]).resolve(), sys.argv[2]
    run.BIN = binary
    workdir = Path(tempfile.mkdtemp())
    db = f"holoptic_history_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite://{workdir}/bench.db"
    else:
        run.psql(run.pg_url("postgres"), f"CREATE DATABASE {db}")
        url = f"postgres://postgres@127.0.0.1:5432/{db}?sslmode=disable"
    server = run.Server(url)
    try:
        measure(server, backend, db)
    finally:
        server.stop()
        if backend != "sqlite":
            run.psql(run.pg_url("postgres"), f"DROP DATABASE IF EXISTS {db}")


def measure(server, backend, db):
    _, members = run.setup_network(server, "bench")
    tokens = [m["token"] for m in members]
    path = "/v1/networks/bench/contributions"
    batch = {"items": [run.work_item(i) for i in range(1000)]}
    start = time.time()
    for i in range(150):
        run.http("POST", path + "/batch", tokens[i % len(tokens)], batch)
    print(f"150,000 contributions in {time.time() - start:.1f} s", flush=True)
    for _ in range(600):
        _, v = run.http("GET", "/v1/networks/bench/journal/verify", tokens[0])
        if v["unsealed"] == 0:
            break
        time.sleep(1)
    print(f"journal all sealed {time.time() - start:.1f} s after the first batch", flush=True)
    r = run.wrk(path, tokens, run.work_item(), 4, 10)
    print("single POST, 4 connections:", {k: r[k] for k in ("rps", "p50", "p99", "non_2xx")})
    ids = []
    for _ in range(10):
        _, out = run.http("POST", path + "/batch", members[0]["token"], batch)
        ids += [c["id"] for c in out["items"]]
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("\n".join(ids))
    samples, done = Counter(), threading.Event()

    def sample():
        while not done.is_set():
            out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc",
                                  BLOCKERS], capture_output=True, text=True).stdout
            samples.update(out.splitlines())
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    if backend != "sqlite":
        sampler.start()
    v = run.wrk(path + "/{id}/validations", [members[1]["token"]], {"decision": "approve"}, 4, 5,
                ids=f.name)
    done.set()
    if backend != "sqlite":
        sampler.join()
    os.unlink(f.name)
    print("approvals, 4 connections:", {k: v[k] for k in ("rps", "p50", "p99", "non_2xx")})
    if samples:
        print("statements that blocked others (samples, state, wait, statement):")
        for line, n in samples.most_common(8):
            print(f"  {n} {line}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How long the journal sealer takes to catch up after a burst of writes.

    python3 bench/sealer.py target/release/holoptic postgres|sqlite [SECONDS]

Starts the server on a fresh database (PostgreSQL at 127.0.0.1:5432, as for the tests, or a
temporary SQLite file), posts single contributions from 16 connections with wrk for SECONDS
(default 30; each is one journal entry, where a batch of 1,000 is one entry too), then prints
how many entries wait in the sealing queue each second until it is empty.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402


def queue_length(backend, target):
    query = "SELECT count(*) FROM journal_unsealed"
    if backend == "postgres":
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", target, "-Atc", query],
                             capture_output=True, text=True, check=True).stdout
        return int(out)
    import sqlite3
    with sqlite3.connect(target) as c:
        return c.execute(query).fetchone()[0]


def main():
    run.BIN = Path(sys.argv[1]).resolve()
    backend = sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    if backend == "postgres":
        target = "holoptic_bench_sealer"
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", target], check=True)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", target], check=True)
        url = f"postgres://postgres@127.0.0.1:5432/{target}"
    else:
        target = str(Path(tempfile.mkdtemp()) / "sealer.db")
        url = f"sqlite://{target}"
    server = run.Server(url)
    try:
        _, members = run.setup_network(server, "bench")
        tokens = [m["token"] for m in members]
        t0 = time.monotonic()
        w = run.wrk("/v1/networks/bench/contributions", tokens, run.work_item(), 16, seconds)
        t1 = time.monotonic()
        print(f"about {w['rps'] * seconds:.0f} contributions written in {t1 - t0:.1f} s "
              f"({w['rps']:.0f}/s, {w['non_2xx']} refused)")
        while True:
            n = queue_length(backend, target)
            print(f"{time.monotonic() - t1:6.1f} s: {n} entries unsealed")
            if n == 0:
                break
            time.sleep(1)
    finally:
        server.stop()


if __name__ == "__main__":
    main()

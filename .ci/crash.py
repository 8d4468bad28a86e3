#!/usr/bin/env python3
"""Crash and fault test, run by .ci/run: while clients log contributions, approve them (minting
tokens) and transfer tokens, the service is killed with SIGKILL at random moments and
restarted; on PostgreSQL the database is stopped with `-m immediate` and started again; on
SQLite the disk under the database fills up and is freed. Afterwards every retried request is
resent with its Idempotency-Key until it has a final answer, and the test checks:

- every acknowledged write is present, and none is there twice;
- every acknowledged approval left its contribution validated (with its tokens minted);
- the recipient's token balance is exactly the sum of the transfers that were applied;
- the ledger check and the journal verification pass;
- while the database was away the service answered 503 application/problem+json (never a
  500), and it recovered by itself, without a restart.

Usage: .ci/crash.py BINARY sqlite|postgres [--seconds N]. Loopback only; bounded in time.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

PORT = int(os.environ.get("HOLOPTIC_CRASH_PORT", "18240"))
BASE = f"http://127.0.0.1:{PORT}"
SLUG = "crash"
N = f"/v1/networks/{SLUG}"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"


def request(method, path, token=None, body=None, key=None, timeout=10):
    """(status, content type, parsed body); status 0 when the service could not be reached."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("idempotency-key", key)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("content-type", ""), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw or b"null")
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, e.headers.get("content-type", ""), parsed
    except (OSError, ValueError):
        return 0, "", None


def must(method, path, token=None, body=None, want=(200, 201)):
    for _ in range(100):
        status, _, out = request(method, path, token, body, key=str(uuid.uuid4()))
        if status in want:
            return out
        if status in (0, 503):
            time.sleep(0.1)
            continue
        raise SystemExit(f"{method} {path}: {status} {out}")
    raise SystemExit(f"{method} {path}: the service did not answer")


class Service:
    def __init__(self, binary, database_url):
        self.binary = binary
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=database_url,
            HOLOPTIC_JWT_SECRET="crash-test-secret-that-is-long-enough-0123",
            HOLOPTIC_TOKEN_TTL_SECS="3600",
            HOLOPTIC_DB_TIMEOUT_MS="500",
            # A key left "in progress" by a killed process is retaken after 3 s, not 5 minutes.
            HOLOPTIC_IDEMPOTENCY_STALE_SECS="3",
            RUST_LOG="warn",
        )
        self.proc = None
        self.log = open(Path(tempfile.gettempdir()) / "holoptic-crash-server.log", "a")

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--bind", f"127.0.0.1:{PORT}"],
            env=self.env, stdout=self.log, stderr=self.log,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if request("GET", "/readyz")[0] == 200:
                return
            time.sleep(0.05)
        raise SystemExit("the service did not become ready")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


class Load:
    """Clients that log, approve and transfer, remembering what was acknowledged and what must
    be retried with the same key."""

    def __init__(self, ada, bob):
        self.ada, self.bob = ada, bob
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.logged = {}  # key -> contribution id (acknowledged)
        self.approved = {}  # contribution id -> key (acknowledged)
        self.transfers = {}  # transfer id -> amount (acknowledged)
        self.retry = []  # (kind, key, method, path, token, body)
        self.to_approve = []
        self.problems = []
        self.answers = {}

    def note(self, status, ctype, out, what):
        with self.lock:
            self.answers[status] = self.answers.get(status, 0) + 1
            if status >= 500 and status != 503:
                self.problems.append(f"{what}: {status} {out}")
            if status in (503,) and "application/problem+json" not in ctype:
                self.problems.append(f"{what}: 503 without problem+json ({ctype})")

    def log_work(self):
        while not self.stop.is_set():
            key = str(uuid.uuid4())
            body = {"kind": "work", "quantity": "1", "unit": "hours",
                    "occurred_at": "2026-01-15T10:00:00Z", "description": f"crash {key}"}
            status, ctype, out = request("POST", f"{N}/contributions", self.ada, body, key)
            self.note(status, ctype, out, "log")
            with self.lock:
                if status == 201:
                    self.logged[key] = out["id"]
                    self.to_approve.append(out["id"])
                elif status in (0, 409, 503):
                    self.retry.append(("log", key, f"{N}/contributions", self.ada, body))
                else:
                    self.problems.append(f"log: {status} {out}")
            if status in (0, 503):
                time.sleep(0.05)

    def approve(self):
        while not self.stop.is_set():
            with self.lock:
                cid = self.to_approve.pop(0) if self.to_approve else None
            if cid is None:
                time.sleep(0.01)
                continue
            key = str(uuid.uuid4())
            path = f"{N}/contributions/{cid}/validations"
            status, ctype, out = request("POST", path, self.bob, {"decision": "approve"}, key)
            self.note(status, ctype, out, "approve")
            with self.lock:
                if status == 201:
                    self.approved[cid] = key
                elif status in (0, 409, 503):
                    self.retry.append(("approve", key, path, self.bob, {"decision": "approve"}))
                else:
                    self.problems.append(f"approve: {status} {out}")
            if status in (0, 503):
                time.sleep(0.05)

    def transfer(self, bob_id):
        while not self.stop.is_set():
            tid = str(uuid.uuid4())
            body = {"to": bob_id, "amount": "0.01", "transfer_id": tid}
            status, ctype, out = request("POST", f"{N}/transfers", self.ada, body, tid)
            self.note(status, ctype, out, "transfer")
            with self.lock:
                if status == 201:
                    self.transfers[tid] = Decimal("0.01")
                elif status in (0, 409, 503):
                    self.retry.append(("transfer", tid, f"{N}/transfers", self.ada, body))
                # 422: not enough vested tokens yet, a final refusal that wrote nothing.
            time.sleep(0.02 if status == 201 else 0.1)


def settle_retries(load):
    """Resend every unanswered request with its own key until it has a final answer."""
    applied_unknown = 0
    for kind, key, path, token, body in load.retry:
        for _ in range(200):
            status, _, out = request("POST", path, token, body, key)
            if status in (0, 503) or (status == 409 and "in progress" in json.dumps(out)):
                time.sleep(0.1)
                continue
            break
        else:
            raise SystemExit(f"retry of {kind} {key} never got an answer")
        lost = status == 409 and "response was lost" in json.dumps(out)
        if kind == "log":
            if status in (200, 201):
                load.logged[key] = out["id"]
            elif lost:
                applied_unknown += 1
                load.logged[key] = None  # applied; the id is found by its description
            else:
                load.problems.append(f"retried log {key}: {status} {out}")
        elif kind == "approve":
            cid = path.split("/")[-2]
            if status in (200, 201) or lost:
                load.approved[cid] = key
            elif status == 409:
                pass  # already decided by an earlier attempt of another key: not double-counted
            else:
                load.problems.append(f"retried approve {cid}: {status} {out}")
        elif kind == "transfer":
            if status in (200, 201) or lost:
                load.transfers[key] = Decimal("0.01")
    return applied_unknown


def all_contributions(token):
    items, cursor = [], None
    while True:
        path = f"{N}/contributions?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = must("GET", path, token)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def wait_ready(seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if request("GET", "/readyz")[0] == 200:
            return True
        time.sleep(0.1)
    return False


def probe_outage(load, token, label):
    """While the database is away: a write answers 503 problem+json with Retry-After."""
    status, ctype, out = request("POST", f"{N}/contributions", token,
                                 {"kind": "work", "quantity": "1", "unit": "hours",
                                  "occurred_at": "2026-01-15T10:00:00Z", "description": "probe"},
                                 str(uuid.uuid4()))
    ok = status == 503 and "application/problem+json" in ctype
    print(f"  {label}: a write answered {status} {ctype}", file=sys.stderr)
    if not ok:
        load.problems.append(f"{label}: a write answered {status} {ctype} {out}, not 503 problem+json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("backend", choices=["sqlite", "postgres"])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--kills", type=int, default=5)
    args = ap.parse_args()
    random.seed(os.environ.get("CRASH_SEED", str(time.time())))

    workdir = Path(tempfile.mkdtemp(prefix="holoptic-crash-"))
    mount = None
    if args.backend == "sqlite":
        # The database lives on its own small filesystem so the disk can be filled.
        mount = workdir / "disk"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
        url = f"sqlite://{mount}/crash.db"
    else:
        db = f"holoptic_crash_{os.getpid()}"
        subprocess.run(["psql", "-q", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {db}"], check=True)
        subprocess.run(["psql", "-q", PG_ADMIN, "-c", f"CREATE DATABASE {db}"], check=True)
        url = f"postgres://postgres@127.0.0.1:5432/{db}"

    svc = Service(args.binary, url)
    try:
        boot = json.loads(subprocess.run(
            [args.binary, "bootstrap", "--name", "Crash", "--slug", SLUG, "--steward", "Steward",
             "--currency", "EUR:2"], env=svc.env, check=True, capture_output=True, text=True).stdout)
        svc.start()
        steward = must("POST", "/v1/auth/token", body={"api_key": boot["api_key"]})["access_token"]
        people = []
        for name in ("Ada", "Bob"):
            a = must("POST", "/v1/agents", body={"display_name": name})
            t = must("POST", "/v1/auth/token", body={"api_key": a["api_key"]})["access_token"]
            must("POST", f"{N}/members", t, {})
            people.append((t, a["agent"]["id"]))
        (ada, _ada_id), (bob, bob_id) = people
        must("POST", f"{N}/token", steward, {"symbol": "CRT", "name": "Crash token", "decimals": 2})
        eq = {"buckets": [{"name": "all", "share": "straight", "percent": "100",
                           "pool": {"policy": {"type": "pro_rata", "claim": "equity"}}}],
              "token": {"mint_on": "validation", "per_unit": "1", "transferable": True}}
        p = must("POST", f"{N}/proposals", steward, {"title": "Rules", "equation": eq})
        for voter in (steward, ada, bob):
            if must("POST", f"{N}/proposals/{p['id']}/votes", voter, {"vote": "yes"})["status"] == "passed":
                break

        load = Load(ada, bob)
        threads = [threading.Thread(target=load.log_work) for _ in range(3)]
        threads += [threading.Thread(target=load.approve),
                    threading.Thread(target=load.transfer, args=(bob_id,))]
        for t in threads:
            t.start()

        print(f"[{args.backend}] kill -9 at random moments", file=sys.stderr)
        for i in range(args.kills):
            time.sleep(random.uniform(0.3, args.seconds / args.kills))
            svc.kill()
            time.sleep(random.uniform(0.0, 0.5))
            svc.start()
            print(f"  kill {i + 1}: restarted", file=sys.stderr)

        if args.backend == "postgres":
            print("[postgres] immediate stop of PostgreSQL", file=sys.stderr)
            cluster = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "stop",
                            "-m", "immediate"], check=True)
            time.sleep(1.0)
            probe_outage(load, ada, "PostgreSQL down")
            ready = request("GET", "/readyz")
            if ready[0] != 503:
                load.problems.append(f"/readyz answered {ready[0]} while PostgreSQL was down")
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start"],
                           check=True)
            if not wait_ready(60):
                load.problems.append("the service did not recover after PostgreSQL came back")
            print("  recovered without a restart", file=sys.stderr)
        else:
            print("[sqlite] the disk fills up", file=sys.stderr)
            filler = mount / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"],
                           capture_output=True)
            time.sleep(1.5)
            probe_outage(load, ada, "disk full")
            filler.unlink()
            time.sleep(0.5)
            if not wait_ready(30):
                load.problems.append("the service did not recover after the disk was freed")
            probe = request("POST", f"{N}/contributions", ada,
                            {"kind": "work", "quantity": "1", "unit": "hours",
                             "occurred_at": "2026-01-15T10:00:00Z", "description": "after"},
                            str(uuid.uuid4()))
            if probe[0] != 201:
                load.problems.append(f"a write after the disk was freed answered {probe[0]} {probe[2]}")
            print("  recovered without a restart", file=sys.stderr)

        time.sleep(1.0)
        load.stop.set()
        for t in threads:
            t.join(timeout=30)
        unknown = settle_retries(load)

        # Checks.
        contributions = all_contributions(steward)
        by_key = {}
        for c in contributions:
            d = c.get("description") or ""
            if d.startswith("crash "):
                by_key.setdefault(d[len("crash "):], []).append(c)
        for key, cid in load.logged.items():
            found = by_key.get(key, [])
            if len(found) != 1:
                load.problems.append(f"contribution {key}: {len(found)} copies (acknowledged {cid})")
            elif cid and found[0]["id"] != cid:
                load.problems.append(f"contribution {key}: acknowledged as {cid}, stored as {found[0]['id']}")
        for key in by_key:
            if key not in load.logged and len(by_key[key]) > 1:
                load.problems.append(f"contribution {key}: {len(by_key[key])} copies of an unacknowledged write")
        status_of = {c["id"]: c["status"] for c in contributions}
        for cid in load.approved:
            if status_of.get(cid) != "validated":
                load.problems.append(f"approved contribution {cid} is {status_of.get(cid)}")
        balance = must("GET", f"{N}/balances/{bob_id}", bob)
        sent = sum(load.transfers.values(), Decimal(0))
        if Decimal(balance["total"]) != sent:
            load.problems.append(f"Bob holds {balance['total']} but the applied transfers sum to {sent}")
        check = must("GET", f"{N}/ledger/check", steward)
        if not check["ok"]:
            load.problems.append(f"ledger check: {check['problems']}")
        verify = must("GET", f"{N}/journal/verify", steward)
        if not verify["ok"]:
            load.problems.append(f"journal verify: {json.dumps(verify)[:500]}")

        print(
            f"[{args.backend}] {len(load.logged)} contributions logged ({unknown} found by key after a lost "
            f"response), {len(load.approved)} approvals, {len(load.transfers)} transfers, "
            f"{len(load.retry)} retried; answers {dict(sorted(load.answers.items()))}; "
            f"journal {verify['entries']} entries",
            file=sys.stderr,
        )
        if load.problems:
            for p in load.problems[:50]:
                print(f"PROBLEM: {p}", file=sys.stderr)
            raise SystemExit(f"[{args.backend}] {len(load.problems)} problems")
        if len(load.logged) < 50 or len(load.transfers) < 5:
            raise SystemExit(f"[{args.backend}] too little load to judge anything")
        print(f"[{args.backend}] crash test passed", file=sys.stderr)
    finally:
        svc.stop()
        if args.backend == "postgres" and subprocess.run(
                ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode != 0:
            cluster = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start"],
                           check=False)
        if mount:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        else:
            subprocess.run(["psql", "-q", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                           check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Runs the README's curl walkthrough, exactly as written, against a fresh server on the
# default address (127.0.0.1:8080) and the default embedded SQLite database.
set -euo pipefail
bin=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
block() { sed -n "/<!-- $1:start -->/,/<!-- $1:end -->/p" "$root/README.md" | sed '/^<!--/d; /^```/d'; }
script="$(block walkthrough)
$(block walkthrough2)
$(block walkthrough3)"
[ -n "$script" ] || { echo "no walkthrough block in README.md" >&2; exit 1; }
work=$(mktemp -d)
cd "$work"
env -u DATABASE_URL -u HOLOPTIC_BIND RUST_LOG=warn "$bin" serve >server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; cd /; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 0.2; done
if ! out=$(bash -euo pipefail -c "$script"); then
  printf '%s\n' "$out"
  echo "the walkthrough stopped with an error; server log:" >&2
  tail -20 server.log >&2
  exit 1
fi
printf '%s\n' "$out"
# Grace's work is validated, and the second part ends with a verified, paid distribution.
printf '%s\n' "$out" | grep -q '"status": "validated"' || { echo "walkthrough did not end with a validated contribution" >&2; exit 1; }
printf '%s\n' "$out" | grep -q 'nobody validates their own' || { echo "self-validation was not refused" >&2; exit 1; }
printf '%s\n' "$out" | grep -q '"matches": true' || { echo "the committed distribution did not verify" >&2; exit 1; }
printf '%s\n' "$out" | grep -q '"paid_reference": "SEPA-2026-11-22-0001"' || { echo "the line was not marked paid" >&2; exit 1; }
printf '%s\n' "$out" | grep -q '"ok": true' || { echo "the ledger check did not pass" >&2; exit 1; }
echo "walkthrough ok"

#!/usr/bin/env bash
# Runs the README's curl walkthrough, exactly as written, against a fresh server on the
# default address (127.0.0.1:8080) and the default embedded SQLite database.
set -euo pipefail
bin=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
script=$(sed -n '/<!-- walkthrough:start -->/,/<!-- walkthrough:end -->/p' "$root/README.md" | sed '/^<!--/d; /^```/d')
[ -n "$script" ] || { echo "no walkthrough block in README.md" >&2; exit 1; }
work=$(mktemp -d)
cd "$work"
env -u DATABASE_URL -u HOLOPTIC_BIND RUST_LOG=warn "$bin" serve >server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; cd /; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 0.2; done
out=$(bash -euo pipefail -c "$script")
printf '%s\n' "$out"
# The last command lists Grace's validated work: it must be there.
printf '%s\n' "$out" | grep -q '"status": "validated"' || { echo "walkthrough did not end with a validated contribution" >&2; exit 1; }
printf '%s\n' "$out" | grep -q 'nobody validates their own' || { echo "self-validation was not refused" >&2; exit 1; }
echo "walkthrough ok"

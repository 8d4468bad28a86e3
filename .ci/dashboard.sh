#!/usr/bin/env bash
# The dashboard in Debian's Chromium, driven by playwright-core, against a fresh server on
# each backend. Screenshots land in ci-artifacts/dashboard/<backend>/.
# Usage: .ci/dashboard.sh <holoptic binary> <node_modules parent dir>
set -euo pipefail
bin=$(realpath "$1")
npm_dir=$(realpath "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
cp "$root/.ci/dashboard/dashboard.mjs" "$npm_dir/"
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

run() {
  local backend=$1 url=$2 port=$3
  HOLOPTIC_BIND=127.0.0.1:$port DATABASE_URL=$url RUST_LOG=warn \
    HOLOPTIC_JWT_SECRET=dashboard-test-secret-that-is-long-enough-0123 \
    HOLOPTIC_SIWE_DOMAIN=127.0.0.1:$port "$bin" serve >"$work/$backend.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  echo "[$backend]"
  if ! (cd "$npm_dir" && timeout 600 node dashboard.mjs "http://127.0.0.1:$port" "$root/ci-artifacts/dashboard/$backend"); then
    tail -30 "$work/$backend.log" >&2
    exit 1
  fi
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
}

rm -rf "$root/ci-artifacts/dashboard"
run sqlite "sqlite://$work/dashboard.db" 18110
pg_db="holoptic_dashboard_$$"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $pg_db"
run postgres "postgres://postgres@127.0.0.1:5432/$pg_db?sslmode=disable" 18111
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE $pg_db"

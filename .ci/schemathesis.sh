#!/usr/bin/env bash
# Runs schemathesis against a live server on its own /openapi.json: no 5xx, and every status,
# content type and body conforms to the spec. Usage: .ci/schemathesis.sh BINARY DATABASE_URL
set -euo pipefail
bin=$1
database_url=$2
port=${SCHEMATHESIS_PORT:-18080}
examples=${SCHEMATHESIS_EXAMPLES:-25}
workdir=$(mktemp -d)
export DATABASE_URL=$database_url
export HOLOPTIC_JWT_SECRET=schemathesis-secret-that-is-long-enough-0123
export RUST_LOG=warn
export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=schemathesis_hooks

"$bin" migrate >/dev/null
boot=$("$bin" bootstrap --name "Schema Lab" --slug schema-lab --steward "Steward" --currency EUR:2)
key=$(printf '%s' "$boot" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')

"$bin" serve --bind "127.0.0.1:$port" >"$workdir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
token=$(curl -fsS -X POST "http://127.0.0.1:$port/v1/auth/token" -H 'content-type: application/json' \
  -d "{\"api_key\":\"$key\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# Some data to reach deeper responses: a proposal (with a whole equation in it) and a token.
curl -fsS -X POST "http://127.0.0.1:$port/v1/networks/schema-lab/proposals" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"title":"Adopt Sensorica","preset":"sensorica"}' >/dev/null
curl -fsS -X POST "http://127.0.0.1:$port/v1/networks/schema-lab/token" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"symbol":"LAB","name":"Lab token","decimals":6}' >/dev/null

schemathesis --config-file "$(dirname "$0")/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" \
  --request-timeout 10 \
  -H "Authorization: Bearer $token" \
  --no-color

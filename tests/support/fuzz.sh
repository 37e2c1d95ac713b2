#!/usr/bin/env bash
# Property-based fuzzing of the edge's HTTP API, generated from its own OpenAPI document
# (`/v1/openapi.json`) by schemathesis, against a real edge and the real cluster `make test`
# started. Real run and workflow ids are supplied (a finished run, a running one, an unknown
# one; the fixtures and an unknown workflow) so that requests reach the handlers. Every check
# runs: no 5xx, only documented statuses and content types, every body valid against the
# document (errors against the envelope), invalid requests refused, valid ones accepted,
# `Allow` on 405s. Deterministic seed, bounded by examples per operation, one worker.
#
# Called by tests/support/test.sh with its cluster settings (OPENWOP_TEST_*). Settings:
# OPENWOP_FUZZ_EXAMPLES (per operation and phase, default 100), OPENWOP_FUZZ_SEED (default 1).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
: "${OPENWOP_TEST_PGDATA:?run through make test}" "${OPENWOP_TEST_PGPORT:?}" "${OPENWOP_EDGE_BIN:?}"
examples=${OPENWOP_FUZZ_EXAMPLES:-100}
seed=${OPENWOP_FUZZ_SEED:-1}
schemathesis=$(tests/support/tools.sh schemathesis)
work=$repo/target/openwop-test/fuzz
rm -rf "$work" && mkdir -p "$work"
sql() { tests/support/cluster.sh "$OPENWOP_TEST_PGDATA" "$OPENWOP_TEST_PGPORT" psql -d openwop -tA "$@"; }

# A tenant of its own, with the fixtures and a key holding every scope.
tenant="fuzz$(date +%s%N | tail -c 9)"
sql -c "SELECT openwop.create_tenant('$tenant')" -c "SELECT count(*) FROM openwop.seed_fixtures('$tenant')" >/dev/null
key=$(sql -c "SELECT openwop.create_api_key('$tenant', 'fuzz')")

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
OPENWOP_DATABASE_URL="postgres://openwop_edge@127.0.0.1:$OPENWOP_TEST_PGPORT/openwop" \
    OPENWOP_LISTEN="127.0.0.1:$port" OPENWOP_RATE_LIMIT=0 OPENWOP_LOG=warn \
    "$OPENWOP_EDGE_BIN" >"$work/edge.log" 2>&1 &
edge_pid=$!
trap 'kill "$edge_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fs "$base/.well-known/openwop" >/dev/null && break
    sleep 0.1
done

start() {
    curl -fs -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$1" "$base/v1/runs" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["runId"])'
}
finished=$(start '{"workflowId": "conformance-noop"}')
failed=$(start '{"workflowId": "conformance-failure"}')
running=$(start '{"workflowId": "conformance-delay", "inputs": {"delayMs": 30000}}')

cat >"$work/schemathesis.toml" <<TOML
[dictionaries.runs]
values = ["$finished", "$failed", "$running", "00000000-0000-7000-8000-000000000000"]
[dictionaries.workflows]
values = ["conformance-noop", "conformance-delay", "conformance-failure", "no-such-workflow"]

[parameters]
"path.runId" = { dictionary = "runs", probability = 0.8 }
"path.workflowId" = { dictionary = "workflows", probability = 0.8 }
"body.workflowId" = { dictionary = "workflows", probability = 0.8 }

# Refusals the schema cannot express (an unknown workflowId, inputs that do not fit the
# workflow's variables) are the documented 400 of createRun.
[[operations]]
include-operation-id = "createRun"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
TOML

echo "fuzz: schemathesis $("$schemathesis" --version | awk '{print $NF}') against $base/v1/openapi.json (seed $seed, $examples examples per operation)"
set +e
(cd "$work" && "$schemathesis" run "$base/v1/openapi.json" --url "$base" \
    -H "Authorization: Bearer $key" --checks all --seed "$seed" --max-examples "$examples" \
    --workers 1 --request-timeout 10 --no-color \
    --report har,json --report-har-path "$work/requests.har" --report-json-path "$work/report.json" \
    >"$work/schemathesis.log" 2>&1)
status=$?
set -e
python3 tests/support/fuzz_report.py "$work/report.json" "$work/requests.har" || status=1
if [ "$status" != 0 ]; then
    sed -n '/FAILURES/,$p' "$work/schemathesis.log" >&2
    echo "fuzz: failed (full log: $work/schemathesis.log)" >&2
fi
exit "$status"

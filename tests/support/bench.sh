#!/usr/bin/env bash
# `make bench`: a throwaway cluster + a release edge, then N runs of the 3-node fixture over
# HTTP at concurrency C. Settings: BENCH_RUNS (default 3000), BENCH_CONCURRENCY (default 32),
# BENCH_WORKFLOW (default conformance-multi-node), BENCH_PGPORT (54349), BENCH_LISTEN
# (127.0.0.1:18080), BENCH_WORKERS (openwop.workers, default 2).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
port=${BENCH_PGPORT:-54349}
listen=${BENCH_LISTEN:-127.0.0.1:18080}
if [ "$(id -u)" = 0 ]; then sudo_flag=(); else sudo_flag=(--sudo); fi

cargo pgrx install -p openwop --release --pg-config "$PGBIN/pg_config" "${sudo_flag[@]}"
cargo build --release -p edge -p openwop-e2e --bin edge --bin openwop-bench

data=$(tests/support/datadir.sh "$repo/target/openwop-bench/cluster" bench-cluster)
cluster() { tests/support/cluster.sh "$data" "$port" "$@"; }
cluster stop
rm -rf "$data"
OPENWOP_CLUSTER_CONF="openwop.workers = ${BENCH_WORKERS:-2}
shared_buffers = 512MB" cluster init
cluster start
cleanup() { [ -n "${edge_pid:-}" ] && kill "$edge_pid" 2>/dev/null; cluster stop; }
trap cleanup EXIT
cluster psql -d postgres -c "CREATE DATABASE openwop"
cluster psql -d openwop -c "CREATE EXTENSION openwop" -c "SELECT count(*) FROM openwop.seed_fixtures()" \
    -c "CREATE ROLE openwop_edge LOGIN IN ROLE openwop_service" >/dev/null
key=$(cluster psql -d openwop -tAc "SELECT openwop.create_api_key(label => 'bench')")

# One key drives all the load: no per-key rate limit here.
OPENWOP_DATABASE_URL="postgres://openwop_edge@127.0.0.1:$port/openwop" OPENWOP_LISTEN="$listen" OPENWOP_LOG=warn \
    OPENWOP_RATE_LIMIT=0 \
    OPENWOP_POOL_SIZE=${BENCH_POOL:-32} target/release/edge &
edge_pid=$!
for _ in $(seq 100); do curl -fs "http://$listen/.well-known/openwop" >/dev/null && break; sleep 0.1; done

echo "=== openwop-bench: $(nproc) cores, synchronous_commit=on, ${BENCH_WORKERS:-2} workers"
target/release/openwop-bench --url "http://$listen" --key "$key" --runs "${BENCH_RUNS:-3000}" \
    --concurrency "${BENCH_CONCURRENCY:-32}" --workflow "${BENCH_WORKFLOW:-conformance-multi-node}"
cluster psql -d openwop -c "SELECT slot, batches, runs_stepped, events_written, latch_wakes, timeouts, errors FROM openwop.worker_stats()"

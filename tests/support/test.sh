#!/usr/bin/env bash
# `make test`: every test, against real parts. In order:
#   1. Rust unit tests and #[pg_test]s of the extension (cargo pgrx test; its own cluster)
#   2. install the extension, start a fresh throwaway cluster with it preloaded
#   3. SQL regression tests (pg_regress, expected output in tests/regress/expected)
#   4. edge unit tests and the end-to-end tests (real cluster + real edge binary over HTTP)
#   5. property-based fuzzing of the HTTP API from its OpenAPI document (tests/support/fuzz.sh)
#   6. the fold check: every run those made has a projection equal to the fold of its log
# Settings: OPENWOP_TEST_PGPORT (default 54339), PGBIN.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PGBIN/pg_config
PGXS=$("$PG_CONFIG" --pkglibdir)/pgxs
port=${OPENWOP_TEST_PGPORT:-54339}
work=$repo/target/openwop-test
mkdir -p "$work"
step() { echo "=== $* ($(date +%T))"; }

if [ "$(id -u)" = 0 ]; then runas=postgres; sudo_flag=(); else runas=$(id -un); sudo_flag=(--sudo); fi

step "unit tests + #[pg_test] (cargo pgrx test)"
pgtest=$(tests/support/datadir.sh "$work/pg_test" pg_test)
mkdir -p "$pgtest"
for pid in "$pgtest"/*/postmaster.pid; do   # a cluster left by a killed run
    [ -f "$pid" ] && { [ "$runas" = postgres ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(dirname "$pid")" -m immediate -w stop || "$PGBIN/pg_ctl" -D "$(dirname "$pid")" -m immediate -w stop; } >/dev/null 2>&1 || true
done
rm -rf "${pgtest:?}"/*
[ "$runas" = postgres ] && chown postgres:postgres "$pgtest"
cargo pgrx test pg15 -p openwop --runas "$runas" --pgdata "$pgtest"

step "install the extension"
# (cargo pgrx test installed a test-featured build; replace it)
cargo pgrx install -p openwop --pg-config "$PG_CONFIG" "${sudo_flag[@]}"

step "build the edge and the end-to-end tests"
cargo build -p edge
cargo test -p edge -p openwop-e2e --no-run

step "fresh cluster on 127.0.0.1:$port"
data=$(tests/support/datadir.sh "$work/cluster" test-cluster)
cluster() { tests/support/cluster.sh "$data" "$port" "$@"; }
cluster stop
rm -rf "$data"
OPENWOP_CLUSTER_CONF="openwop.poll_ms = 500" cluster init
cluster start
trap 'cluster stop' EXIT
cluster psql -d postgres -c "CREATE DATABASE openwop"
cluster psql -d openwop -c "CREATE EXTENSION openwop"
# The edge connects as a service role (not a superuser), so row-level security applies to it.
cluster psql -d openwop -c "CREATE ROLE openwop_edge LOGIN IN ROLE openwop_service"

step "SQL regression tests"
rm -rf "$work/regress"
if ! "$PGXS/src/test/regress/pg_regress" --use-existing --host=127.0.0.1 --port="$port" --user=postgres \
        --dbname=openwop --bindir="$PGBIN" --inputdir=tests/regress --outputdir="$work/regress" \
        --schedule=tests/regress/schedule; then
    cat "$work/regress/regression.diffs" >&2 || true
    exit 1
fi

step "edge unit tests + end-to-end tests"
export OPENWOP_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/openwop"
export OPENWOP_TEST_EDGE_DATABASE_URL="postgres://openwop_edge@127.0.0.1:$port/openwop"
export OPENWOP_TEST_PGDATA="$data" OPENWOP_TEST_PGPORT="$port" OPENWOP_TEST_PGBIN="$PGBIN"
export OPENWOP_TEST_CLUSTER_SCRIPT="$repo/tests/support/cluster.sh"
export OPENWOP_EDGE_BIN="$repo/target/debug/edge"
cargo test -p edge -p openwop-e2e -- --test-threads="${OPENWOP_TEST_THREADS:-4}"

step "property-based fuzzing of the HTTP API (schemathesis, from our OpenAPI document)"
tests/support/fuzz.sh

step "every run's projection equals the fold of its log (all runs the suites made)"
cluster psql -d openwop -f tests/support/fold_check.sql
step "all tests passed"

#!/usr/bin/env bash
# `make run`: build and install the extension, start (or reuse) a local cluster with it
# preloaded, create the database and the extension, seed the conformance fixtures, register a
# development API key, then serve the edge in the foreground. Ctrl-C stops the edge and the
# cluster; running it again reuses the same cluster and data.
#
# Settings: OPENWOP_LISTEN (edge address, default 127.0.0.1:8080), OPENWOP_PGPORT (cluster
# port, default 54329), OPENWOP_DEV_API_KEY (use this key instead of a generated one),
# OPENWOP_DATA (data location, default ./.data; as root, when the postgres user cannot reach
# it, /var/tmp/openwop/dev-<hash> is used instead and printed), OPENWOP_RESET=1 (recreate the
# database when the extension's schema changed between pre-release builds).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PGBIN/pg_config
port=${OPENWOP_PGPORT:-54329}
listen=${OPENWOP_LISTEN:-127.0.0.1:8080}
base=${OPENWOP_DATA:-$repo/.data}
if [ "$(id -u)" = 0 ]; then sudo_flag=(); else sudo_flag=(--sudo); fi

echo "=== building and installing the openwop extension (release)"
cargo pgrx install -p openwop --release --pg-config "$PG_CONFIG" "${sudo_flag[@]}"
echo "=== building the edge (release)"
cargo build --release -p edge

data=$(tests/support/datadir.sh "$base/pg" "dev-$(printf %s "$repo" | sha1sum | cut -c1-8)")
keyfile=$(dirname "$data")/dev-api-key
cluster() { tests/support/cluster.sh "$data" "$port" "$@"; }
cluster init
if [ -f "$data/postmaster.pid" ]; then
    cluster restart   # load the freshly installed library
else
    cluster start
fi
cleanup() {
    trap - INT TERM EXIT
    [ -n "${edge_pid:-}" ] && kill "$edge_pid" 2>/dev/null && wait "$edge_pid" 2>/dev/null
    echo "=== stopping the cluster"
    cluster stop
}
trap cleanup EXIT
trap 'exit 0' INT TERM   # Ctrl-C is the normal way to stop: clean up and exit 0

# The extension's SQL as installed now. While openwop is pre-release (0.1.0, no upgrade
# scripts yet), a database created by an older build cannot be upgraded in place: say so
# instead of running against a stale schema, and recreate it only when asked to.
schema_file=$("$PG_CONFIG" --sharedir)/extension/openwop--$(sed -n "s/^version.workspace.*//;s/^version = \"\(.*\)\"/\1/p" Cargo.toml | head -1).sql
schema_hash=$(sha256sum "$schema_file" | cut -c1-64)
stamp=$(dirname "$data")/schema.sha256
has_db=$(cluster psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'openwop'")
if [ "$has_db" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" != "$schema_hash" ]; then
    if [ "${OPENWOP_RESET:-}" = 1 ]; then
        echo "=== OPENWOP_RESET=1: recreating database openwop with the current schema"
        cluster psql -d postgres -c "DROP DATABASE openwop WITH (FORCE)"
        has_db=
    else
        echo "The database in $data was created by an earlier build whose openwop schema differs," >&2
        echo "and this pre-release version has no upgrade script. Run 'OPENWOP_RESET=1 make run' to" >&2
        echo "recreate the database (its runs are lost), or keep using the earlier build." >&2
        exit 1
    fi
fi
[ "$has_db" = 1 ] || cluster psql -d postgres -c "CREATE DATABASE openwop"
cluster psql -d openwop -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS openwop"
printf %s "$schema_hash" >"$stamp"
# The edge connects as a service role, not a superuser: row-level security applies to it.
cluster psql -d openwop -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'openwop_edge'" | grep -q 1 ||
    cluster psql -d openwop -c "CREATE ROLE openwop_edge LOGIN IN ROLE openwop_service"
fixtures=$(cluster psql -d openwop -tAc "SELECT count(*) FROM openwop.seed_fixtures()")

key=${OPENWOP_DEV_API_KEY:-}
if [ -z "$key" ] && [ -f "$keyfile" ]; then key=$(cat "$keyfile"); fi
if [ -z "$key" ]; then
    key=$(cluster psql -d openwop -tAc "SELECT openwop.create_api_key(label => 'make run')")
else
    # (psql interpolates :'k' only in commands read from stdin, not in -c)
    echo "SELECT openwop.create_api_key(label => 'make run', token => :'k')" |
        cluster psql -d openwop -tA -v k="$key" >/dev/null
fi
[ -z "${OPENWOP_DEV_API_KEY:-}" ] && { umask 077; printf %s "$key" >"$keyfile"; }

cat <<BANNER

  openwop-pg is running
    edge:      http://$listen   (discovery: http://$listen/.well-known/openwop)
    API key:   $key
    database:  postgres://postgres@127.0.0.1:$port/openwop   ($fixtures conformance fixtures seeded; the edge connects as openwop_edge)
    data:      $data
  Ctrl-C stops the edge and the cluster.

BANNER
OPENWOP_DATABASE_URL="postgres://openwop_edge@127.0.0.1:$port/openwop" OPENWOP_LISTEN="$listen" \
    "$repo/target/release/edge" &
edge_pid=$!
wait "$edge_pid"

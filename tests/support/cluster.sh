#!/usr/bin/env bash
# Manage a local PostgreSQL cluster with the openwop extension preloaded.
#
#   cluster.sh <data-dir> <port> init|start|stop|restart|status|psql [args...]
#
# Postgres refuses to run as root, so as root the cluster runs as the `postgres` OS user
# (the data directory must be reachable by that user); as anyone else it runs as you.
# It listens on 127.0.0.1 only. Settings: PGBIN (PostgreSQL binaries), OPENWOP_DB (the
# database the workers serve, default openwop), OPENWOP_CLUSTER_CONF (extra postgresql.conf
# lines).
set -euo pipefail

data=${1:?data dir}; port=${2:?port}; cmd=${3:?command}; shift 3
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
db=${OPENWOP_DB:-openwop}

if [ "$(id -u)" = 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
    owner=postgres
else
    as_pg() { "$@"; }
    owner=$(id -un)
fi

case "$cmd" in
init)
    if [ -f "$data/PG_VERSION" ]; then exit 0; fi
    mkdir -p "$data"
    [ "$owner" = postgres ] && chown postgres:postgres "$data"
    chmod 700 "$data"
    as_pg "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$data/postgresql.conf" <<CONF

# --- openwop local cluster ---
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
shared_preload_libraries = 'openwop'
openwop.database = '$db'
openwop.workers = 2
max_connections = 200
fsync = on
synchronous_commit = on
log_line_prefix = '%m [%p] %q%a '
${OPENWOP_CLUSTER_CONF:-}
CONF
    ;;
start)
    if as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then exit 0; fi
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null
    ;;
stop)
    if [ -f "$data/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || true; fi
    ;;
restart)
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$data/server.log" -m fast -w -t 60 restart >/dev/null
    ;;
status)
    as_pg "$PGBIN/pg_ctl" -D "$data" status
    ;;
psql)
    exec "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
    ;;
*)
    echo "unknown command $cmd" >&2; exit 2 ;;
esac

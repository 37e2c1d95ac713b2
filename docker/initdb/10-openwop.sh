#!/usr/bin/env bash
# First start of the container: create the extension, seed the conformance fixtures, create
# the edge's login role (a member of openwop_service, so row-level security applies to it),
# and, when OPENWOP_DEV_API_KEY is set, register it as an API key of the default tenant.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE EXTENSION IF NOT EXISTS openwop;
SELECT count(*) AS fixtures FROM openwop.seed_fixtures();
SQL
# psql interpolates :'name' only in commands read from stdin, not in -c
echo "CREATE ROLE openwop_edge LOGIN PASSWORD :'pw' IN ROLE openwop_service" |
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v pw="${OPENWOP_EDGE_PASSWORD:-openwop}"
if [ -n "${OPENWOP_DEV_API_KEY:-}" ]; then
    echo "SELECT openwop.create_api_key(label => 'compose', token => :'key') IS NOT NULL AS key_registered" |
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v key="$OPENWOP_DEV_API_KEY"
fi

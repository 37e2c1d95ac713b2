#!/usr/bin/env bash
# First start of the container: create the extension, seed the conformance fixtures and,
# when OPENWOP_DEV_API_KEY is set, register it as an API key of the default tenant.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE EXTENSION IF NOT EXISTS openwop;
SELECT count(*) AS fixtures FROM openwop.seed_fixtures();
SQL
if [ -n "${OPENWOP_DEV_API_KEY:-}" ]; then
    # psql interpolates :'key' only in commands read from stdin, not in -c
    echo "SELECT openwop.create_api_key(label => 'compose', token => :'key') IS NOT NULL AS key_registered" |
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v key="$OPENWOP_DEV_API_KEY"
fi

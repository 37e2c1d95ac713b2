#!/usr/bin/env bash
# Install what building and testing openwop-pg needs, skipping whatever is already there:
# Debian packages (PostgreSQL 15 server + headers matching its exact version, clang for
# bindgen, sudo for `cargo pgrx test --runas`), cargo-pgrx at the pinned version, and
# `cargo pgrx init` against the system PostgreSQL (never a download).
set -euo pipefail

PGRX_VERSION=${PGRX_VERSION:-0.18.1}
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
export PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

pkgs=()
if installed "postgresql-$PG_MAJOR"; then
    # the headers must match the running server's minor version exactly
    pgv=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")
    installed "postgresql-server-dev-$PG_MAJOR" || pkgs+=("postgresql-server-dev-$PG_MAJOR=$pgv")
else
    pkgs+=("postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR")
fi
for p in libclang-dev clang build-essential pkg-config sudo curl; do installed "$p" || pkgs+=("$p"); done
if ((${#pkgs[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing Debian packages: ${pkgs[*]}" >&2
        echo "deps: install them (sudo apt-get install ${pkgs[*]%%=*}) and run again" >&2
        exit 1
    fi
    echo "deps: apt-get install ${pkgs[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]%%=*}"
fi

if [ "$(cargo pgrx --version 2>/dev/null || true)" != "cargo-pgrx $PGRX_VERSION" ]; then
    echo "deps: cargo install cargo-pgrx $PGRX_VERSION (a few minutes, once)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs "^pg$PG_MAJOR = \"$PG_CONFIG\"" "$PGRX_HOME/config.toml"; then
    cargo pgrx init "--pg$PG_MAJOR" "$PG_CONFIG"
fi

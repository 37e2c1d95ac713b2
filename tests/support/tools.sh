#!/usr/bin/env bash
# Test tools from PyPI, pinned, each in a virtualenv of its own outside the repository:
#   tools.sh schemathesis    install it if missing, then print the path of its executable
# Settings: OPENWOP_TOOLS (where the virtualenvs live, default ~/.cache/openwop).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
tools=${OPENWOP_TOOLS:-$HOME/.cache/openwop}

case "${1:?tool name}" in
schemathesis)
    venv=$tools/schemathesis-$SCHEMATHESIS_VERSION
    exe=$venv/bin/schemathesis
    if ! "$exe" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
        echo "tools: pip install schemathesis==$SCHEMATHESIS_VERSION into $venv" >&2
        rm -rf "$venv"
        if ! python3 -m venv "$venv" >&2; then
            # Debian's python3 ships venv separately
            if [ "$(id -u)" = 0 ]; then
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >&2
                rm -rf "$venv"
                python3 -m venv "$venv" >&2
            else
                echo "tools: python3 -m venv failed; install python3-venv (sudo apt-get install python3-venv)" >&2
                exit 1
            fi
        fi
        "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
    fi
    echo "$exe"
    ;;
*)
    echo "tools: unknown tool $1" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Print a directory for a local cluster's data that the cluster's OS user can use.
#   datadir.sh <preferred-dir> <fallback-name>
# As root the cluster runs as `postgres`, which cannot enter a repository under /root (mode
# 700): then the data goes to /var/tmp/openwop/<fallback-name> instead.
set -euo pipefail
preferred=$1; name=$2
if [ "$(id -u)" != 0 ]; then echo "$preferred"; exit 0; fi
parent=$(dirname "$preferred")
mkdir -p "$parent"
if runuser -u postgres -- test -x "$parent" 2>/dev/null && runuser -u postgres -- test -r "$parent" 2>/dev/null; then
    # postgres must also be able to create the data dir: we create it and hand it over
    echo "$preferred"
else
    mkdir -p /var/tmp/openwop
    chmod 755 /var/tmp/openwop
    echo "/var/tmp/openwop/$name"
fi

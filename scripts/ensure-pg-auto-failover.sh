#!/usr/bin/env bash
# Make pg_auto_failover available for the failover tests (tests/ha): print the directory of the
# PostgreSQL binaries its extension is built for, installing the Debian packages if needed.
#
#   postgresql-<major>-auto-failover   the extension (monitor and keeper both load it)
#   pg-auto-failover-cli               pg_autoctl
#
# The major version is the newest PostgreSQL installed (ensure-postgres.sh installs one).
# Installs with apt-get (needs root). Fails loudly: the suite never skips its failover test
# because the packages were missing.
set -euo pipefail

log() { echo "ensure-pg-auto-failover: $*" >&2; }

find_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

bindir=$(find_bindir)
if [ -z "$bindir" ]; then
  log "no PostgreSQL server installed: run scripts/ensure-postgres.sh first"
  exit 1
fi
major=$(basename "$(dirname "$bindir")")
extension=/usr/share/postgresql/$major/extension/pgautofailover.control

if [ ! -f "$extension" ] || ! command -v pg_autoctl >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    log "pg_auto_failover not found and not root: install postgresql-$major-auto-failover and pg-auto-failover-cli"
    exit 1
  fi
  log "installing pg_auto_failover for PostgreSQL $major (Debian packages)…"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show "postgresql-$major-auto-failover" >/dev/null 2>&1; then
    apt-get update -qq >&2
  fi
  apt-get install -y -qq --no-install-recommends \
    "postgresql-$major-auto-failover" pg-auto-failover-cli >&2
fi
if [ ! -f "$extension" ] || ! command -v pg_autoctl >/dev/null; then
  log "pg_auto_failover is still missing after installing (PostgreSQL $major)"
  exit 1
fi
echo "$bindir"

#!/usr/bin/env bash
# Print the URL of a PostgreSQL server for the tests, starting a private one on 127.0.0.1 if needed.
#
#   QM_TEST_POSTGRES_URL   use this server instead (nothing is started)
#   QM_PG_PORT             port of the private server (default 54329)
#   QM_PG_DIR              its data directory (default /var/tmp/quartermaster-pg-$QM_PG_PORT)
#   QM_PG_DURABLE=1        keep fsync on (benchmarks); tests run with fsync off for speed
#
# Installs the Debian package when no server binaries are present (needs root). Fails loudly:
# the suite never skips its PostgreSQL tests because a server was missing.
set -euo pipefail

if [ -n "${QM_TEST_POSTGRES_URL:-}" ]; then
  echo "$QM_TEST_POSTGRES_URL"
  exit 0
fi

port=${QM_PG_PORT:-54329}
dir=${QM_PG_DIR:-/var/tmp/quartermaster-pg-$port}
url="postgresql://qm@127.0.0.1:$port/quartermaster"

log() { echo "ensure-postgres: $*" >&2; }

find_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

bindir=$(find_bindir)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL server binaries not found and not root: install the 'postgresql' package"
    exit 1
  fi
  log "installing PostgreSQL (Debian package)…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir=$(find_bindir)
fi

# PostgreSQL refuses to run as root: run its tools as the postgres user when we are root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  echo "$url"
  exit 0
fi

if [ ! -s "$dir/PG_VERSION" ]; then
  log "creating a private cluster in $dir"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  as_owner "$bindir/initdb" -D "$dir" -U qm -A trust -E UTF8 --no-instructions >/dev/null
fi

durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ "${QM_PG_DURABLE:-0}" = 1 ] && durability=""
log "starting PostgreSQL on 127.0.0.1:$port"
# shellcheck disable=SC2086
as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 $durability" \
  start >/dev/null || { tail -n 30 "$dir/server.log" >&2; exit 1; }
"$bindir/psql" -q -h 127.0.0.1 -p "$port" -U qm -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='quartermaster'" | grep -q 1 ||
  "$bindir/createdb" -h 127.0.0.1 -p "$port" -U qm quartermaster
echo "$url"

#!/usr/bin/env bash
# Print the URL of a Redis server for the tests, starting a private one on 127.0.0.1 if needed.
#
#   QM_TEST_REDIS_URL   use this server instead (nothing is started)
#   QM_REDIS_PORT       port of the private server (default 63799)
#   QM_REDIS_DIR        its working directory (default /var/tmp/quartermaster-redis-$QM_REDIS_PORT)
#
# Installs the Debian package when redis-server is missing (needs root). Fails loudly: the suite
# never skips its Redis tests because a server was missing.
set -euo pipefail

if [ -n "${QM_TEST_REDIS_URL:-}" ]; then
  echo "$QM_TEST_REDIS_URL"
  exit 0
fi

port=${QM_REDIS_PORT:-63799}
dir=${QM_REDIS_DIR:-/var/tmp/quartermaster-redis-$port}
url="redis://127.0.0.1:$port"

log() { echo "ensure-redis: $*" >&2; }

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    log "redis-server not found and not root: install the 'redis-server' package"
    exit 1
  fi
  log "installing Redis (Debian package)…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
fi

ping() { redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; }

if ping; then
  echo "$url"
  exit 0
fi

mkdir -p "$dir"
log "starting Redis on 127.0.0.1:$port"
# No persistence: the tests keep only rate-limit counters there.
redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
  --daemonize yes --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" >&2 || true
for _ in $(seq 1 50); do
  if ping; then
    echo "$url"
    exit 0
  fi
  sleep 0.1
done
log "Redis did not start on 127.0.0.1:$port"
tail -n 20 "$dir/redis.log" >&2 || true
exit 1

#!/usr/bin/env bash
# The whole suite: static checks, then pytest on SQLite, then pytest on PostgreSQL.
# Extra arguments go to both pytest runs (e.g. scripts/test.sh -k items -x).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
bin=.venv/bin
step() { printf '\n=== %s ===\n' "$*"; }

step "ruff"
lint_paths=(src tests)
[ -d bench ] && lint_paths+=(bench)
"$bin/ruff" check "${lint_paths[@]}"
"$bin/ruff" format --check "${lint_paths[@]}"
step "mypy"
"$bin/mypy"
step "import-linter"
"$bin/lint-imports" --no-cache
step "migrations are up to date"
QM_DATA_DIR=$(mktemp -d) "$bin/quartermaster" manage makemigrations --check --dry-run

step "PostgreSQL for the tests"
pg_url=$(scripts/ensure-postgres.sh)
echo "$pg_url"

step "pg_auto_failover for the failover tests (tests/ha)"
scripts/ensure-pg-auto-failover.sh

step "Redis and Chromium for the tests"
QM_TEST_REDIS_URL=$(scripts/ensure-redis.sh)
QM_CHROMIUM=$(scripts/ensure-chromium.sh)
export QM_TEST_REDIS_URL QM_CHROMIUM
echo "$QM_TEST_REDIS_URL $QM_CHROMIUM"

step "pytest on SQLite"
QM_DATABASE_URL= "$bin/pytest" -m "not postgres" -p xdist -n 2 "$@"

step "pytest on PostgreSQL"
QM_DATABASE_URL=$pg_url "$bin/pytest" -p xdist -n 2 "$@"

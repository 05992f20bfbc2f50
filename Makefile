# Quartermaster developer commands. `make help` lists them.
.DEFAULT_GOAL := help
BIN := .venv/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: install
install: ## create .venv and install pinned dependencies
	@scripts/bootstrap.sh

.PHONY: messages
messages: ## compile the message catalogues (core/locale/*/django.po) after editing one
	$(BIN)/python -m quartermaster.core.catalogues

.PHONY: demo
demo: install ## migrate the embedded SQLite database, load demo data, serve on http://127.0.0.1:8000
	$(BIN)/quartermaster demo --serve --host $(HOST) --port $(PORT)

.PHONY: serve
serve: install ## serve without loading demo data
	$(BIN)/quartermaster migrate && $(BIN)/quartermaster serve --host $(HOST) --port $(PORT)

.PHONY: test
test: ## the whole suite: lint, types, layering, migrations, pytest on SQLite and PostgreSQL
	@scripts/test.sh

.PHONY: lint
lint: install ## ruff, mypy, import-linter only
	$(BIN)/ruff check src tests bench && $(BIN)/ruff format --check src tests bench
	$(BIN)/mypy && $(BIN)/lint-imports --no-cache

.PHONY: fmt
fmt: install ## format and autofix
	$(BIN)/ruff format src tests bench && $(BIN)/ruff check --fix src tests bench

.PHONY: openapi
openapi: install ## rewrite the OpenAPI snapshot after a deliberate contract change
	QM_UPDATE_SNAPSHOT=1 $(BIN)/pytest tests/test_openapi_snapshot.py -q

.PHONY: bench
bench: install ## run the benchmarks (prints figures; record them in bench/RESULTS.md)
	$(BIN)/python bench/bench_items.py

.PHONY: bench-sync
bench-sync: install ## sync throughput: bulk vs per-op vs set-based SQL, both databases (~12 min)
	$(BIN)/python bench/bench_sync.py

.PHONY: clean
clean: ## remove the virtualenv, caches and the embedded database
	rm -rf .venv var .mypy_cache .ruff_cache .hypothesis

.PHONY: bench-market
bench-market: install ## flower market: morning rush (20 devices) vs set-based SQL, month-end settle time and memory, both databases (~15 min)
	$(BIN)/python bench/bench_market.py

.PHONY: bench-failover
bench-failover: install ## pg_auto_failover: writes with a synchronous standby vs alone, outage over 5 failovers (~5 min; installs pg_auto_failover as root)
	scripts/ensure-postgres.sh >/dev/null && scripts/ensure-pg-auto-failover.sh >/dev/null
	PYTHONPATH=src:. $(BIN)/python bench/bench_failover.py

.PHONY: bench-peers
bench-peers: install ## PATCH qty and GET item beside the seed-001/seed-003 peers (black boxes), both databases (~8 min)
	$(BIN)/python bench/bench_peers.py

.PHONY: bench-soak
bench-soak: install ## memory and connections per worker under 16 clients of PATCH for 10 minutes (SQLite)
	$(BIN)/python bench/bench_soak.py

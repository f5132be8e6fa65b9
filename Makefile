# The only commands a newcomer needs. Each target sets itself up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3.12 2>/dev/null || command -v python3.13 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every wheel the project installs, kept so that tests can install the package offline (tests/packaging).
WHEELHOUSE := $(VENV)/wheelhouse

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo demo-xero test lint bench bench-push reliability report clean sql prefect prefect-stop

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13), sys.version' || { echo "needs Python 3.11, 3.12 or 3.13"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip wheel --quiet -c constraints.txt --wheel-dir $(WHEELHOUSE) ".[dev]"
	rm -rf $(WHEELHOUSE)/trackline-*.whl build
	$(BIN)/pip install --quiet --no-index --find-links $(WHEELHOUSE) -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/trackline backfill --emit-batches
	$(BIN)/trackline report

# The sample pushed to the Xero double (tests/doubles/xero.py, on 127.0.0.1), one client moved to another
# partner, a backfill, and the retrack plan (tests/doubles/xero_demo.py; DEMO_XERO_ARGS=--apply applies it).
demo-xero: $(STAMP)
	$(BIN)/python -m tests.doubles.xero_demo $(DEMO_XERO_ARGS)

# Two workers (pytest-xdist), a test file each at a time: the machines have two cores.
test: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check flows transforms tests bench
	$(BIN)/ruff format --check flows transforms tests bench

clean:
	rm -rf data/warehouse.duckdb* data/.warehouse.duckdb.* data/out

bench: $(STAMP)
	$(BIN)/python -m bench.run

# 100 practices × 2,000 invoices pushed to the Xero double at Xero's limits (time scaled): BENCHMARKS.md.
bench-push: $(STAMP)
	$(BIN)/python -m bench.push

reliability: $(STAMP)
	$(BIN)/python -m tests.reliability.figures

report: $(STAMP)
	$(BIN)/trackline report

# The analysts' SQL prompt: the duckdb CLI (same version as the Python package), on the warehouse read-only.
WAREHOUSE ?= data/warehouse.duckdb
sql: $(STAMP)
	@test -f "$(WAREHOUSE)" || { echo "no warehouse at $(WAREHOUSE) yet: run \`make demo\` or \`trackline backfill\` first"; exit 1; }
	$(BIN)/duckdb -readonly "$(WAREHOUSE)"

# A long-lived local Prefect server (API and UI on 127.0.0.1), in the background, its database under
# .prefect/ (the UI is told its API's port too, or it would look for 4200). With PREFECT_API_URL pointing at it, every trackline command registers its runs there (and
# skips starting a temporary server of its own); `make prefect-stop` stops it.
PREFECT_PORT ?= 4200
PREFECT_DIR ?= $(CURDIR)/.prefect
PREFECT_HEALTH := http://127.0.0.1:$(PREFECT_PORT)/api/health
# Waits up to $$1 seconds for the server to answer; exit status 1 when it does not.
PREFECT_WAIT = printf '%s\n' 'import sys, time, httpx' 'for _ in range(int(sys.argv[1])):' \
	'    try:' '        httpx.get("$(PREFECT_HEALTH)", timeout=2).raise_for_status(); sys.exit(0)' \
	'    except httpx.HTTPError:' '        time.sleep(1)' 'sys.exit(1)' | $(BIN)/python -
prefect: $(STAMP)
	@mkdir -p "$(PREFECT_DIR)"
	@if $(PREFECT_WAIT) 1; then \
		echo "a Prefect server is already answering on 127.0.0.1:$(PREFECT_PORT)"; \
	else \
		PREFECT_HOME="$(PREFECT_DIR)" PREFECT_SERVER_API_HOST=127.0.0.1 PREFECT_SERVER_API_PORT=$(PREFECT_PORT) \
			PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
			$(BIN)/prefect server start --background --host 127.0.0.1 \
			--port $(PREFECT_PORT) --analytics-off >"$(PREFECT_DIR)/start.log" 2>&1 \
			|| { cat "$(PREFECT_DIR)/start.log"; exit 1; }; \
		$(PREFECT_WAIT) 180 || { echo "the Prefect server did not answer in 3 minutes: see $(PREFECT_DIR)"; exit 1; }; \
	fi
	@echo "Prefect UI: http://127.0.0.1:$(PREFECT_PORT)"
	@echo "Point trackline at it (in this shell, or in your profile):"
	@echo "    export PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api"
	@echo "Stop it with: make prefect-stop"

prefect-stop: $(STAMP)
	PREFECT_HOME="$(PREFECT_DIR)" $(BIN)/prefect server stop

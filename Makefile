# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := build/demo

.PHONY: demo test lint scenarios bench bench-full clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded default: a seeded sample book imported into one SQLite file.
demo: $(STAMP)
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/creditledger sample generate $(DEMO)/book.toml
	$(BIN)/creditledger init --db $(DEMO)/ledger.db
	$(BIN)/creditledger import $(DEMO)/book.toml --db $(DEMO)/ledger.db
	$(BIN)/creditledger summary --db $(DEMO)/ledger.db
	$(BIN)/creditledger exposure --db $(DEMO)/ledger.db --as-of 2025-12-31
	$(BIN)/creditledger obligations --db $(DEMO)/ledger.db --as-of 2025-12-31 --open
	# Each quarter declared and recorded (QUARTER:DAY MADE), in time for its due date.
	for declaration in 2025-Q1:2025-04-20 2025-Q2:2025-07-20 2025-Q3:2025-10-20 2025-Q4:2026-01-20; do \
		$(BIN)/creditledger declare --db $(DEMO)/ledger.db --period $${declaration%:*} \
			--record --effective $${declaration#*:} || exit 1; done
	$(BIN)/creditledger premium --db $(DEMO)/ledger.db --as-of 2026-01-31
	$(BIN)/creditledger claims --db $(DEMO)/ledger.db --as-of 2025-12-31
	$(BIN)/creditledger claim --db $(DEMO)/ledger.db --as-of 2025-12-31 --explain \
		$$($(BIN)/creditledger log --db $(DEMO)/ledger.db --type insolvency --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)[0]["buyer"])')

# ruff, mypy, and the layer contract of pyproject.toml (docs/design.md "Layers").
lint: $(STAMP)
	$(BIN)/ruff check ledger projections tests bench
	$(BIN)/mypy ledger projections
	$(BIN)/lint-imports

# The scenario files (scenarios/, one rule each): every expectation must hold.
scenarios: $(STAMP)
	$(BIN)/creditledger scenario run scenarios

# The scenarios also run inside pytest (tests/test_scenarios.py), which fails on any
# scenario failure; tests/test_readme.py runs the README's tour on the demo book.
test: lint chromium
	$(BIN)/pytest -ra

# The benchmark: 100,000 events on SQLite and PostgreSQL side by side (bench-full: 1,000,000, long);
# figures in bench/results.json (docs/performance.md).
bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-full: $(STAMP)
	$(BIN)/python bench/run.py --full

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The fuzz tests of the importers and the policy parser, long: 5,000 examples each (make test runs 40).
.PHONY: soak-fuzz
soak-fuzz: $(STAMP)
	CREDITLEDGER_FUZZ_EXAMPLES=5000 $(BIN)/pytest tests/test_fuzz.py

# The long runs of docs/reliability.md: the tests marked `soak`, made long by CREDITLEDGER_SOAK=1
# (the stateful model on SQLite and PostgreSQL, more concurrent writers and events), ten kill
# rounds of the crash tests, and the long fuzz run. -rP prints each test's counts.
.PHONY: soak
soak: soak-fuzz
	CREDITLEDGER_SOAK=1 $(BIN)/pytest -m soak -rP tests
	CREDITLEDGER_CRASH_ROUNDS=10 $(BIN)/pytest -rP tests/test_crash.py

# The whole suite on PostgreSQL (127.0.0.1:5432, database `test`): every ledger a test opens,
# in-memory ones included, is a fresh schema there (tests/conftest.py). CI runs it after `make test`.
.PHONY: test-postgres
test-postgres: $(STAMP)
	CREDITLEDGER_TEST_STORE=postgres $(BIN)/pytest -ra

# The browser of the web view's tests and screenshots: Debian's Chromium and its driver,
# installed where missing (make test runs as root in CI); nothing is downloaded at run time.
.PHONY: chromium screenshots
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update && apt-get install -y chromium chromium-driver)

# The main pages of the web view as PNG files under build/screenshots/ (laptop and phone width).
screenshots: $(STAMP) chromium
	$(BIN)/python tests/screenshots.py

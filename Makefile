# Two entry points, both of which set themselves up on a fresh machine (Python >= 3.11):
#   make run   - install with the server extra and start the platform on its embedded defaults
#                (http://127.0.0.1:8000: bundled challenges, baseline entries, API docs at /docs)
#   make test  - install with the dev tools, then lint, type-check and run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ALGORITHM ?= pseudo-label
CHALLENGE ?= vision-selection
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test lint bench load results screenshots conformance fuzz bench-originals

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.server: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[server]'
	touch $@ $(VENV)/.core

$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.core $(VENV)/.server

$(VENV)/.load: $(VENV)/.dev
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,load]'
	touch $@

run: $(VENV)/.server
	$(BIN)/dataperf serve --host $(HOST) --port $(PORT)

# The local loop without a server: the strongest built-in algorithm, scored locally.
demo: $(VENV)/.core
	$(BIN)/dataperf run $(CHALLENGE) --algorithm $(ALGORITHM) --out out/$(CHALLENGE)/$(ALGORITHM)
	$(BIN)/dataperf evaluate $(CHALLENGE) out/$(CHALLENGE)/$(ALGORITHM)

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(VENV)/.dev
	$(BIN)/python bench/bench_scoring.py
	$(BIN)/python bench/bench_selection_algorithms.py
	$(BIN)/python bench/bench_platform.py $(if $(POSTGRES_URL),--postgres $(POSTGRES_URL))
	$(BIN)/python bench/bench_cleaning_trainer.py
	$(BIN)/python bench/bench_acquisition_scorer.py --markets 1
	$(BIN)/python bench/bench_speech_scorer.py
	$(BIN)/python bench/bench_redteaming_scorer.py
	$(BIN)/python bench/bench_studio.py

# The platform under concurrent load (bench/load): 50 users for 60 s, 10 of them submitting, on
# SQLite and, with POSTGRES_URL, on PostgreSQL; targets 0 errors and leaderboard p99 < 100 ms.
load: $(VENV)/.load
	$(BIN)/python bench/load/run.py $(if $(POSTGRES_URL),--postgres $(POSTGRES_URL))

results: $(VENV)/.core
	$(BIN)/dataperf compare $(CHALLENGE) --markdown docs/results/$(CHALLENGE).md

# Screenshots of the main pages for the docs, taken by the browser tests (needs Chromium).
screenshots: $(VENV)/.dev
	DATAPERF_SCREENSHOTS=docs/images $(BIN)/pytest -q tests/browser

# The original DataPerf evaluators next to ours on the same files (checkouts of the public
# reference repositories in ORIGINALS, never vendored); every number must be equal.
conformance: $(VENV)/.dev
	@test -n "$(ORIGINALS)" || { echo "usage: make conformance ORIGINALS=DIR (checkouts of the original repositories)"; exit 2; }
	DATAPERF_ORIGINALS=$(abspath $(ORIGINALS)) $(BIN)/pytest -q -rs -s -m conformance tests/conformance

# The same originals timed next to ours at their original sizes (bench/against_originals.py):
# wall, CPU and peak memory of each, the ratios and whether the scores are equal.
bench-originals: $(VENV)/.dev
	@test -n "$(ORIGINALS)" || { echo "usage: make bench-originals ORIGINALS=DIR (checkouts of the original repositories)"; exit 2; }
	$(BIN)/python bench/against_originals.py $(abspath $(ORIGINALS))

# Every API route fuzzed from its OpenAPI schema, far longer than in the tests (FUZZ_EXAMPLES
# requests generated per route; with POSTGRES_URL on PostgreSQL too): no 5xx, all documented.
FUZZ_EXAMPLES ?= 200
fuzz: $(VENV)/.dev
	DATAPERF_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(if $(POSTGRES_URL),DATAPERF_TEST_POSTGRES_URL=$(POSTGRES_URL)) \
	  $(BIN)/pytest -q tests/server/test_api_fuzzing.py

# Faults, counted: CHAOS_KILLS workers killed mid-evaluation, server replicas killed mid-upload,
# the file storage failing on write, with POSTGRES_URL on PostgreSQL (else SQLite) and with
# CHAOS_PG_RESTART (a shell command, e.g. `pg_ctlcluster 15 main restart`) its server restarted
# mid-run; prints a table of what was lost, stuck, scored twice or charged wrongly (all 0).
CHAOS_KILLS ?= 100
CHAOS_SERVER_KILLS ?= 5
CHAOS_STORAGE_FAULTS ?= 3
chaos: $(VENV)/.dev
	$(BIN)/python tests/chaos.py --kills $(CHAOS_KILLS) --server-kills $(CHAOS_SERVER_KILLS) \
	  --storage-faults $(CHAOS_STORAGE_FAULTS) $(if $(POSTGRES_URL),--postgres '$(POSTGRES_URL)') \
	  $(if $(CHAOS_PG_RESTART),--pg-restart '$(CHAOS_PG_RESTART)')

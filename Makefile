# coursekit: the two commands of the README, plus `make lab`.
#   make baseline  - set up .venv and run the Phase 1 baseline notebook into runs/phase1-baseline/<UTC time>/
#   make test      - set up .venv, then ruff check, ruff format --check, pytest (+ notebooks) with coverage
#                    (first installs bubblewrap, the sandbox of untrusted Rust code, and Chromium with
#                    its driver for the real-browser test, if root and missing)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.coursekit-installed
# one folder per `make baseline` (the notebook refuses a folder that already holds a run)
RUN_DIR := $(CURDIR)/runs/phase1-baseline/$(shell date -u +%Y%m%d-%H%M%S)
export PATH := $(HOME)/.cargo/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv baseline sandbox coverage-tools browser test test-all lab clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, by exact version: the CPU wheel these machines carry (no CUDA downloads)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

baseline: $(STAMP)
	mkdir -p $(RUN_DIR)
	$(PY) -m papermill --log-output --request-save-on-cell-execute \
		notebooks/phase1_baseline.ipynb $(RUN_DIR)/phase1_baseline.ipynb \
		-p output_dir $(RUN_DIR) --cwd notebooks
	@echo ""
	@echo "executed notebook: $(RUN_DIR)/phase1_baseline.ipynb"
	@echo "loss curve:        $(RUN_DIR)/loss_curve.png"
	@echo "metrics:           $(RUN_DIR)/metrics.json"

# bubblewrap (`bwrap`) runs generated tests without privileges (docs/sandbox.md). Installed when
# missing and we are root; otherwise the tests that need it skip, naming the package.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq bubblewrap; } || \
	      echo "bubblewrap could not be installed: sandbox tests will skip (apt-get install bubblewrap)"; \
	  else \
	    echo "bubblewrap missing: sandbox tests will skip (as root: apt-get install bubblewrap)"; \
	  fi; }

# llvm-profdata/llvm-cov measure the line coverage of generated tests (docs/evaluation.md);
# rustc 1.95's data is read by LLVM 19's tools (a probe checks it at run time), the newest
# Debian bookworm ships. Installed when missing and root; otherwise coverage is "unavailable".
coverage-tools:
	@command -v llvm-profdata-19 >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq llvm-19 >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq llvm-19 >/dev/null; } || \
	      echo "llvm-19 could not be installed: coverage tests will skip (apt-get install llvm-19)"; \
	  else \
	    echo "llvm-19 missing: coverage tests will skip (as root: apt-get install llvm-19)"; \
	  fi; }

# Debian's chromium and chromium-driver run the real-browser test (tests/browser/: JupyterLab in
# headless Chromium, driven by selenium). Installed when missing and root; otherwise that test
# skips, naming the packages.
browser:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	      echo "chromium could not be installed: the browser test will skip (apt-get install chromium chromium-driver)"; \
	  else \
	    echo "chromium missing: the browser test will skip (as root: apt-get install chromium chromium-driver)"; \
	  fi; }

# nbval replays Phases 1-2 as committed; Phases 3-4 take minutes at their defaults, so tests/
# execute them with papermill at CI size (tests/test_notebooks.py, tests/test_phase3_notebooks.py)
# CI's `make test` leaves out the tests marked `heavy` (each the slow end-to-end twin of faster
# tests, about 8 minutes in all) to stay under 20 minutes on 2 cores; `make test-all` runs them.
PYTEST_ARGS := --cov=coursekit --cov-report=term-missing --durations=15 --nbval-lax tests \
	notebooks/phase1_baseline.ipynb notebooks/phase2_analysis.ipynb

test: $(STAMP) sandbox coverage-tools browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -m "not heavy" $(PYTEST_ARGS)

test-all: $(STAMP) sandbox coverage-tools browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf runs .pytest_cache .ruff_cache .coverage htmlcov

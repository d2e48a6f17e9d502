# The README's commands. Everything installs into .venv; only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The package is reinstalled only when a file under src/ (or pyproject.toml) changed.
BUILT := $(VENV)/.built-$(shell find src pyproject.toml -type f -not -name '*.pyc' | LC_ALL=C sort | xargs cksum | cksum | cut -d' ' -f1)
# `make serve PORT=8080` (or REDISCHED_PORT=8080 make serve) serves on another port.
PORT ?=

.PHONY: install setup serve test check format bench bench-full bench-operate bench-history bench-backlog bench-peers screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Tests run against the installed package (not the source tree), so a file missing from the
# wheel fails at once.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

$(BUILT): $(STAMP)
	$(BIN)/pip install -q --no-deps --force-reinstall .
	@rm -f $(VENV)/.built-* && touch $(BUILT)

install: $(BUILT)

# What the tests need besides Python: chromium, Go + redigo, Node modules, RabbitMQ.
setup:
	scripts/setup

serve: install
	$(BIN)/redisched serve $(if $(PORT),--port $(PORT))

check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test: check setup
	$(BIN)/python -m pytest

# The bench environment: the peers and matplotlib, kept out of the product's dependencies.
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cat pyproject.toml bench/peers/requirements.txt | cksum | cut -d' ' -f1)

$(BENCH_STAMP): pyproject.toml bench/peers/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/pip install -q --upgrade pip
	$(BENCH_BIN)/pip install -q -e ".[embedded]" -r bench/peers/requirements.txt
	@rm -f $(BENCH_VENV)/.installed-* && touch $(BENCH_STAMP)

# Results go to bench/results/*.json; BENCHMARKS.md and docs/bench-*.png are rendered from them.
bench: install $(BENCH_STAMP)
	$(BIN)/python -m bench.run --quick
	$(BENCH_BIN)/python -m bench.render

bench-full: install $(BENCH_STAMP)
	$(BIN)/python -m bench.run
	$(BENCH_BIN)/python -m bench.render

# Issue 16's figures: a listing page and a purge of 1,000,000 jobs (bench/results/operate.json).
bench-operate: $(BENCH_STAMP)
	$(BENCH_BIN)/python -m bench.run --only operate --repeats 1 --output bench/results/operate.json
	$(BENCH_BIN)/python -m bench.render

# Issue 17's backlog curve to 10,000,000 scheduled jobs (~4 GB of Redis memory, ~30 minutes);
# BENCHMARKS.md shows it in place of `make bench`'s curve to 1,000,000.
bench-backlog: install $(BENCH_STAMP)
	$(BIN)/python -m bench.run --only backlog --repeats 1 --output bench/results/backlog.json
	$(BENCH_BIN)/python -m bench.render

# Issue 13's figures alone (history on vs off); BENCHMARKS.md gets a section from them.
bench-history: install $(BENCH_STAMP)
	$(BIN)/python -m bench.run --quick --only history --repeats 1 --output bench/results/history.json
	$(BENCH_BIN)/python -m bench.render

bench-peers: $(BENCH_STAMP)
	$(BENCH_BIN)/python -m bench.run --peers
	$(BENCH_BIN)/python -m bench.render

# docs/dashboard-*.png: a real `redisched serve` with sample data, photographed by Chromium;
# docs/screenshots/operate-*.png: the operator's browser tests, photographed at each step.
screenshots: install
	$(BIN)/python docs/screenshots.py
	REDISCHED_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_dashboard_operate.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache

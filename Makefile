# The README's commands. Everything installs into .venv; only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install serve test check format bench bench-full bench-peers screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Tests run against the installed package (not the source tree), so a file missing from the
# wheel fails at once.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)
	$(BIN)/pip install -q --no-deps --force-reinstall .

serve: install
	$(BIN)/redisched serve

check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test: check
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.run --quick

bench-full: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

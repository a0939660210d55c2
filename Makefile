# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Each installs what it needs: the virtualenv and packages (pip), the Elasticsearch server
# (Maven), and is safe to run again.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint typecheck unit bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(BIN)/soc demo

# Every benchmark under bench/, one report: bench/reports/latest.md (+ latest.json).
bench: $(STAMP)
	$(BIN)/python bench/run

test: $(STAMP) lint typecheck
	$(BIN)/soc es install
	@scripts/ensure-compose-client.sh
	@scripts/ensure-chromium.sh
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	-$(BIN)/soc es stop
	rm -rf $(VENV) var

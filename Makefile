# The two commands of the billing service: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test install lint typecheck pytest clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

## Set everything up and run web + Celery worker + beat on SQLite and a file broker.
run: install
	@bash scripts/run.sh

## Install, then lint, type-check and run the whole test suite on PostgreSQL and Redis.
test: install
	@$(BIN)/python scripts/check_services.py
	$(BIN)/ruff check --output-format concise .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	@bash scripts/ensure_system_packages.sh
	$(BIN)/pytest

lint:
	$(BIN)/ruff check --output-format concise . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

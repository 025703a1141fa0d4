# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy logto_core logto_adapters tests

unit: $(STAMP)
	$(BIN)/pytest --cov=logto_core --cov-branch --cov-report=term --cov-fail-under=95

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/python -m logto_adapters.demo

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage

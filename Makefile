# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INTEROP := tests/interop/provider
NODE_STAMP := $(INTEROP)/node_modules/.installed
# System packages need root; use sudo when not root (CI runs as root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test lint typecheck unit demo serve chromium redis-server fuzz soak bench bench-coordination clean errors-doc

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The real OpenID provider (oidc-provider on Node.js) of the interoperability tests.
$(NODE_STAMP): $(INTEROP)/package-lock.json
	npm ci --prefix $(INTEROP) --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# Debian's Chromium for the real-browser test (Playwright drives it; it downloads nothing).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# Debian's Redis for the multi-process tests (the suite starts its own on a free loopback port).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy logto_core logto_adapters tests

unit: $(STAMP) $(NODE_STAMP) chromium redis-server
	$(BIN)/pytest --cov=logto_core --cov-branch --cov-report=term --cov-fail-under=95

test: lint typecheck unit

# docs/errors.md is generated from the registry (tests/test_error_codes.py checks it is current).
errors-doc: $(STAMP)
	$(BIN)/python -m logto_core.error_codes > docs/errors.md

demo: $(STAMP)
	$(BIN)/python -m logto_adapters.demo

# `make serve FRAMEWORK=flask|django|fastapi` (and CLIENT=sync|aio) serves that framework's
# sample app instead of the tutorial's.
FRAMEWORK ?= tutorial
CLIENT ?= async
serve: $(STAMP)
	$(BIN)/python -m logto_adapters.demo --serve --framework $(FRAMEWORK) --client $(CLIENT)

# Long profiles of the fuzzers and of the fault-injection soak (minutes; figures printed,
# recorded in docs/security.md). The test suite runs short profiles of both.
# `make fuzz FUZZ_MINUTES=5`. The fast engine found as much as atheris per minute and covered
# as many branches (docs/security.md); `make fuzz FUZZ_ENGINES="fast atheris"` adds the
# coverage-guided engine, and only then installs atheris (the `fuzz` extra).
FUZZ_STAMP := $(VENV)/.installed-fuzz
FUZZ_MINUTES ?= 20
FUZZ_ENGINES ?= fast

$(FUZZ_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(STAMP) $(if $(filter atheris,$(FUZZ_ENGINES)),$(FUZZ_STAMP))
	$(BIN)/python tests/fuzz/run_long.py --engine $(FUZZ_ENGINES) --minutes $(FUZZ_MINUTES)

soak: $(STAMP)
	$(BIN)/python tests/soak/run_long.py --sessions 500 --operations 20000

# Benchmarks side by side with the official `logto` package (in its own .venv-bench);
# rewrites docs/benchmarks.md and docs/benchmarks.png.
bench:
	$(PYTHON) -m benchmarks

# What RedisCoordinator costs per request next to the in-process coordinator (round trips,
# added latency); in the project's venv, with a redis-server of its own (docs/deployment.md).
bench-coordination: $(STAMP) redis-server
	$(BIN)/python -m benchmarks.coordination

clean:
	rm -rf $(VENV) .venv-bench .mypy_cache .pytest_cache .ruff_cache .coverage $(INTEROP)/node_modules

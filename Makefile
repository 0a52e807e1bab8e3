# Two commands on a fresh machine: `make demo` and `make test`.
# Every target installs what it needs, idempotently: virtualenv, Kafka jars, redis-server.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AMITY := $(BIN)/amity
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: deps venv redis jars demo demo-down test test-unit test-integration clean

deps: venv redis jars

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "==> Python virtualenv in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet --progress-bar on -e '.[test]'
	@touch $@

redis:
	@command -v redis-server >/dev/null 2>&1 || test -x /usr/sbin/redis-server || { \
	  echo "==> installing redis-server (Debian package)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

jars: venv
	@echo "==> Apache Kafka 4.3.1 jars (Maven Central)"
	@$(AMITY) dev install

demo: deps
	@$(AMITY) demo

demo-down: venv
	@$(AMITY) dev down

test: deps
	@echo "==> test suite (unit, integration on real local regions, e2e)"
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: venv
	@$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

clean:
	-@$(AMITY) dev down
	rm -rf .amity .cache $(VENV) *.egg-info

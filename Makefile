# Two commands on a fresh machine: `make demo` and `make test`.
# Every target installs what it needs, idempotently: virtualenv, Kafka jars, redis-server.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AMITY := $(BIN)/amity
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: deps venv redis jars demo demo-down test test-unit test-integration clean

deps: venv redis jars chromium

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

# ---- the dashboard's browser tests, deploy/ and tilt/ (docs/deploy.md, docs/dev.md) ----

.PHONY: chromium helm tilt deploy-check tilt-ci tilt-check dashboard-screenshot

GOBIN_DIR := $(CURDIR)/.cache/bin
HELM_VERSION := v3.22.0
TILT_VERSION := v0.34.0

# Debian's Chromium for the Playwright tests (never `playwright install`: browser downloads are blocked).
chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  echo "==> installing chromium (Debian package)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

helm: $(GOBIN_DIR)/helm

$(GOBIN_DIR)/helm:
	@echo "==> building helm $(HELM_VERSION) from the Go module proxy (a few minutes)"
	@GOBIN=$(GOBIN_DIR) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

tilt: $(GOBIN_DIR)/tilt

$(GOBIN_DIR)/tilt:
	@echo "==> building tilt $(TILT_VERSION) from the Go module proxy"
	@GOBIN=$(GOBIN_DIR) go install github.com/tilt-dev/tilt/cmd/tilt@$(TILT_VERSION)

# deploy/ checked as far as a machine without Docker or Kubernetes allows: the Dockerfile's install step in a
# virtualenv (from the same files the image copies), helm lint and template, schemas, then the deploy tests.
DEPLOY_CHECK := $(CURDIR)/.cache/deploy-check
deploy-check: deps helm
	@echo "==> the Dockerfile's install step into $(DEPLOY_CHECK)/opt/amity"
	@rm -rf $(DEPLOY_CHECK) && mkdir -p $(DEPLOY_CHECK)/src/deploy
	@cp -r pyproject.toml README.md shared services $(DEPLOY_CHECK)/src/ && cp -r deploy/docker $(DEPLOY_CHECK)/src/deploy/
	@sh deploy/docker/install.sh $(DEPLOY_CHECK)/opt/amity $(DEPLOY_CHECK)/src
	@PATH=$(GOBIN_DIR):$$PATH AMITY_DEPLOY_VENV=$(DEPLOY_CHECK)/opt/amity \
	  $(BIN)/python -m pytest tests/integration/test_deploy.py -rs $(PYTEST_ARGS)

# tilt ci on tilt/Tiltfile with regions, ports and a coordinator of its own; its regions are stopped after.
TILT_CI_ENV := AMITY_DEV_HOME=$(CURDIR)/.amity/tilt-ci AMITY_DEV_BASE_PORT=47090 AMITY_PORT=47080 \
	AMITY_TILT_METRICS_PORT=47108
tilt-ci: deps tilt
	@status=0; $(TILT_CI_ENV) $(GOBIN_DIR)/tilt ci -f tilt/Tiltfile --port 0 --timeout 5m || status=$$?; \
	  $(TILT_CI_ENV) $(AMITY) dev down; exit $$status

# Where tilt cannot be built: the Tiltfile in go.starlark.net, run the way `tilt ci` runs it (tests/support/tiltfile.py).
tilt-check: deps
	@$(BIN)/python -m pytest tests/integration/test_tilt.py -rs $(PYTEST_ARGS)

# docs/dashboard.png from a running dev loop (`tilt up -f tilt/Tiltfile`, then trigger `traffic`).
dashboard-screenshot: venv
	@$(BIN)/python tilt/screenshot.py $${AMITY_URL:-http://127.0.0.1:8080} docs/dashboard.png

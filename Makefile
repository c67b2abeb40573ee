# The two commands a fresh clone needs:  make demo  /  make test
# Each installs what it needs into .venv once; a stamp file makes the next run
# skip installation entirely (and so work offline) until pyproject.toml changes.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: demo test lint typecheck unit bench install clean browser engine lock

demo: $(RUNTIME_STAMP)
	$(BIN)/pipeline demo

test: $(DEV_STAMP) browser engine lint
	$(BIN)/python -m pytest

# The Flower browser test drives Debian's chromium through chromium-driver (no
# browser downloads). Installed once when missing and we are root with apt-get;
# otherwise say why, and that test skips with the same reason.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (Debian packages) for the Flower browser test ..."; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
			>/dev/null 2>&1 || echo "could not install chromium/chromium-driver: the Flower browser test will skip" >&2; \
	else \
		echo "chromium/chromium-driver missing and not root with apt-get: the Flower browser test will skip" >&2; \
	fi

# The compose test (tests/compose/test_compose_engine.py) builds and runs the
# stack on a private Docker engine: Debian's dockerd (docker.io), docker-compose
# v1 and debootstrap (the stand-in base images: no registry is reachable); the
# remote-worker test puts a worker in a network namespace (iproute2's `ip`).
# Installed once when missing and we are root with apt-get; otherwise stop here
# with the reason: those tests do not skip.
ENGINE_TOOLS := dockerd containerd docker-compose debootstrap ip
engine:
	@missing=""; for tool in $(ENGINE_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing docker.io, docker-compose and debootstrap (Debian packages) for the compose test ..."; \
		log=$$(mktemp); \
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				docker.io docker-compose debootstrap debian-archive-keyring iproute2; } >"$$log" 2>&1; then \
			tail -n 20 "$$log" >&2; rm -f "$$log"; \
			echo "could not install docker.io/docker-compose/debootstrap: the compose test cannot run" >&2; exit 1; \
		fi; rm -f "$$log"; \
	else \
		echo "the compose and remote-worker tests need$$missing (Debian: apt-get install docker.io docker-compose debootstrap iproute2) and root" >&2; \
		exit 1; \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

BENCH_STAMP := $(VENV)/.installed-bench

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(WHAT)

$(BENCH_STAMP): pyproject.toml $(DEV_STAMP)
	$(PIP) install -e '.[dev,bench]'
	@touch $@

install: $(RUNTIME_STAMP)

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "pipeline needs Python 3.11 or newer (found: $$($(PYTHON) --version))" >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "python venv is missing: on Debian/Ubuntu, apt-get install python3-venv" >&2; exit 1; }

$(RUNTIME_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e .
	@touch $@

# The example plugin package (examples/pipeline-example-plugins: an extractor and image
# ops, by entry point) is part of the dev install: the plugin tests' workers import it.
EXAMPLE_PLUGINS := examples/pipeline-example-plugins
$(DEV_STAMP): pyproject.toml $(EXAMPLE_PLUGINS)/pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[dev]' -e $(EXAMPLE_PLUGINS)
	@touch $(RUNTIME_STAMP) $@

# deploy/requirements.lock pins every runtime dependency (and setuptools, which builds
# the package) that the image installs in its dependency layer, resolved in a
# throwaway venv with this Python (deploy/make_lock.py). Regenerate after changing
# pyproject.toml's dependencies: `make lock` (tests/unit/test_lock.py fails until you do).
LOCK := deploy/requirements.lock
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check . 'setuptools>=68' packaging
	.lock-venv/bin/python deploy/make_lock.py > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info

# Odin's developer entry points. Every target creates the virtual environment it needs.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help setup run test check lint typecheck bench bench-quick fuzz fuzz-quick install uninstall clean

help:
	@echo "make run     set up and start a single-node Odin engine (with an example job)"
	@echo "make test    set up, lint, type-check and run the test suite"
	@echo "make bench   run the benchmarks and write bench/results/REPORT.md"
	@echo "make fuzz    long fuzz and load runs (the test suite runs short ones)"
	@echo "make install install Odin system-wide (root): a venv in /opt/odin, systemd unit, completion"
	@echo "make sdk-packages  the SDKs as a wheel, an npm tarball and a Go module proxy, in dist/"
	@echo "make deb    a Debian package of Odin for this host's architecture, in dist/ (root)"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $@

setup: $(BIN)/.installed

run: setup
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/run.sh

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

check: lint typecheck

test: check
	PYTHON="$(PYTHON)" bash scripts/test.sh $(PYTEST_ARGS)

bench: setup
	PYTHON="$(PYTHON)" bash scripts/bench.sh

bench-quick: setup
	PYTHON="$(PYTHON)" bash scripts/bench.sh --quick

fuzz: setup
	bash scripts/test-users.sh
	ODIN_FUZZ_EXAMPLES=20000 ODIN_FUZZ_API_EXAMPLES=500 ODIN_FUZZ_SECONDS=900 ODIN_LOAD_SECONDS=60 \
	  PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q -s tests/jobs/test_fuzz_inputs.py tests/api/test_fuzz_api.py tests/cluster/test_cluster_load.py

fuzz-quick: setup
	bash scripts/test-users.sh
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q tests/jobs/test_fuzz_inputs.py tests/api/test_fuzz_api.py tests/cluster/test_cluster_load.py

PREFIX ?= /opt/odin
install:
	$(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/pip install -q --upgrade pip
	$(PREFIX)/bin/pip install -q .
	$(PREFIX)/bin/odin install

uninstall:
	$(PREFIX)/bin/odin uninstall

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The SDKs as packages of their ecosystems, built from sdk/ without any registry:
# $(DIST)/pyodin-VERSION-py3-none-any.whl (pip install it), $(DIST)/odin-VERSION.tgz
# (npm install it) and $(DIST)/goproxy, a Go module proxy directory (GOPROXY=file://...).
DIST ?= dist
.PHONY: sdk-packages sdk-python sdk-node sdk-go deb

sdk-packages: sdk-python sdk-node sdk-go

sdk-python:
	mkdir -p $(DIST)
	$(PYTHON) sdk/python/_build/pyodin_build.py $(DIST)

sdk-node:
	mkdir -p $(DIST)
	cd sdk/node/odin && npm pack --silent --pack-destination $(abspath $(DIST))

sdk-go:
	$(PYTHON) scripts/sdk_goproxy.py sdk/go/odinlib $(DIST)/goproxy

# $(DIST)/odin_VERSION_ARCH.deb: Odin in a venv at /opt/odin, with its unit, completions and
# maintainer scripts (packaging/deb/, docs/operations.md). Install it with apt install ./FILE.
deb:
	PYTHON="$(PYTHON)" bash packaging/deb/build.sh $(DIST)

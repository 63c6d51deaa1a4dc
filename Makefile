# Kagiya: every target bootstraps .venv from pyproject.toml on first use.
# Nothing is assumed installed but Python 3.11+ and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint sysdeps clean vectors protocol messages

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# System packages the real-part tests need (PostgreSQL server, Chromium): installed
# idempotently by the project's own script; it does nothing when they are present.
sysdeps:
	@bash tools/sysdeps.sh

demo: $(STAMP)
	$(BIN)/kagiya demo
	$(BIN)/kagiya demo --connected

# The real OpenID provider of the My Page OIDC tests (npm oidc-provider, pinned by its lock file)
OIDC := tools/oidc/node_modules/.package-lock.json
$(OIDC): tools/oidc/package.json tools/oidc/package-lock.json
	cd tools/oidc && npm ci --no-audit --no-fund --loglevel=error

test: $(STAMP) sysdeps $(OIDC)
	$(BIN)/python -m pytest

bench: $(STAMP)
	@set -e; for b in $$(ls bench/*.py | grep -v "/_"); do echo "== $$b"; $(BIN)/python $$b; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy host_sdk server mobile_sim tools hil

# Re-extract every user-facing sentence into host_sdk/locale (then translate the new ja entries)
messages: $(STAMP)
	$(BIN)/python -m kagiya.sdk.catalogue update
	$(BIN)/python -m kagiya.sdk.catalogue check

vectors: $(STAMP)
	$(BIN)/python -m kagiya.hil.vectors tests/vectors

# The protocol definition (host_sdk/protocol.py) into the firmware's const() blocks and the
# tables of docs/protocol.md; tests/firmware/test_protocol.py fails when they differ.
protocol: $(STAMP)
	$(BIN)/python -m kagiya.sdk.protocol_gen .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

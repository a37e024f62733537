# The two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= settings.toml

.PHONY: run test system-packages browser lint typecheck pytest reliability clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The settings the operator commands read by default (./settings.toml): the example's, on first use.
settings.toml:
	cp settings.example.toml settings.toml

run: $(STAMP) settings.toml
	$(BIN)/billing-bridge --config $(CONFIG) migrate
	$(BIN)/billing-bridge --config $(CONFIG) run

test: $(STAMP) system-packages lint typecheck pytest

# Debian's packages outside Python: chromium and chromium-driver for the browser tests, WeasyPrint's Pango,
# HarfBuzz and fonts for PDF invoices, poppler-utils for the PDF tests. Installed when missing (needs root,
# as on CI); without them those tests skip, unless BRIDGE_REQUIRE_SERVICES=1.
system-packages:
	@bash scripts/ensure-system-packages

browser: system-packages

lint: $(STAMP)
	$(BIN)/ruff check bridge tests bench
	$(BIN)/ruff format --check bridge tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# One pytest worker per core (xdist), each with its own databases. Tests go to whichever worker is free;
# those sharing a module-scoped fixture, such as the fault matrix, stay on one (tests/conftest.py).
PYTEST_WORKERS ?= auto
pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

# The reliability suite at full size: crash injection, the vendor fault matrix, the bad-input table.
# (make test runs the same tables at CI size through pytest.)
reliability: $(STAMP)
	$(BIN)/python -m tests.reliability --size full

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

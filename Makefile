# serverless-maas: `make demo` and `make test` each create the environment they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[build,dev]'
	touch $(STAMP)

demo: $(STAMP)  ## train, publish, serve and call a real model end to end
	$(BIN)/maas demo

test: $(STAMP) lint typecheck unit  ## ruff, mypy, then every test (warnings are errors)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)  ## every layer as a ratio to raw onnxruntime, in one run
	$(BIN)/python -m bench
	$(BIN)/python -m bench.compression
	$(BIN)/python -m bench.batch

clean:
	rm -rf $(VENV) .maas .pytest_cache .mypy_cache .ruff_cache

# serverless-maas: `make demo` and `make test` each create the environment they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench-heavy bench-peers bench-shards demo test lock lint typecheck security unit bench synth clean

# The environment is uv.lock, exactly: uv (at the version the lock pins) syncs every group into
# .venv and fails if the lock is out of date with pyproject.toml (`make lock` refreshes it).
UV_VERSION := $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)

$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet 'uv==$(UV_VERSION)'; }
	$(BIN)/uv sync --locked --all-extras --python $(BIN)/python
	touch $(STAMP)

lock: $(STAMP)  ## refresh uv.lock to today's releases (an upgrade on purpose) and export the functions' requirements
	$(BIN)/uv lock --upgrade
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(BIN)/python -m infra.bundling

demo: $(STAMP)  ## train, publish, serve and call a real model end to end
	$(BIN)/maas demo

test: $(STAMP) node_modules/.installed lint typecheck security unit  ## ruff, mypy, bandit, every test (warnings are errors)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

synth: $(STAMP) node_modules/.installed  ## cdk.out: templates and the bundled asset, offline
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 npx cdk synth --quiet
	$(BIN)/cfn-lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

security: $(STAMP)  ## bandit: no medium or high finding in the shipped code
	$(BIN)/bandit -q -c pyproject.toml -r functions model_build infra --severity-level medium

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)  ## every layer as a ratio to raw onnxruntime, in one run
	$(BIN)/python -m bench
	$(BIN)/python -m bench.compression
	$(BIN)/python -m bench.batch

bench-peers: $(STAMP)  ## maas serve against MLServer, KServe and Flask (peers' environments made on demand)
	command -v wrk >/dev/null || { test "$$(id -u)" = 0 && { apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; }; } || echo "wrk unavailable: the Python load generator is used"
	$(BIN)/python -m bench.peers --plot docs/peers.png

bench-shards: $(STAMP)  ## maas batch --workers 2 on a 1,000,000-row CSV (2.8 GB, generated and deleted)
	$(BIN)/python -m bench.shards --rows 1000000 --workers 2

bench-heavy: $(STAMP)  ## heavy models (BERT-base, 2.46 GB external data): cold start, RSS, downloads
	$(BIN)/python -m bench.heavy --paths

clean:
	rm -rf $(VENV) .maas .pytest_cache .mypy_cache .ruff_cache cdk.out node_modules

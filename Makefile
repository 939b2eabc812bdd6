# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= samples/websockets-deflate.pcap

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/wsanalyze summary $(SAMPLE)
	$(BIN)/wsanalyze messages $(SAMPLE)

test: lint
	$(BIN)/python -m pytest -n 2 -q

# mypy: --strict on sources/, tcp/, websocket/, tls/, tracker, sequencer (pyproject.toml).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check wsanalyze tests tools benchmarks notebooks fuzz
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= samples/websockets-deflate.pcap
# Any source change reinstalls, which recompiles the hot path (setup.py; about
# 1 min on 2 cores).  WSANALYZE_NO_EXTENSIONS=1 make ... installs pure Python.
SOURCES := $(shell find wsanalyze -name '*.py') setup.py
# Run again on the pure-Python build by `make test` (the whole suite runs compiled).
CORRECTNESS := tests/test_samples.py tests/test_pathologies.py tests/test_rules.py \
	tests/test_properties.py tests/test_hostile.py tests/test_build.py \
	tests/test_fuzz.py::test_seed_corpora_cover_the_samples_and_crafted_cases

.PHONY: demo test lint build bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/wsanalyze summary $(SAMPLE)
	$(BIN)/wsanalyze messages $(SAMPLE)

# The fuzzers always run the pure build (fuzz/run.py: atheris instruments bytecode);
# test_build replays their seeds on both builds.
test: lint
	$(BIN)/wsanalyze --version
	$(BIN)/python -m pytest -n 2 -q
	WSANALYZE_NO_EXTENSIONS=1 $(BIN)/python -m pytest -n 2 -q $(CORRECTNESS)

# The compiled build, in place (what `pip install -e .` does), and what it gives.
build: $(VENV)/.installed
	$(BIN)/wsanalyze --version

# mypy: --strict on sources/, tcp/, websocket/, tls/, tracker, sequencer (pyproject.toml).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check wsanalyze tests tools benchmarks notebooks fuzz setup.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build
	find wsanalyze \( -name '*.so' -o -name '*.c' \) -delete; rm -f wsanalyze__mypyc.*

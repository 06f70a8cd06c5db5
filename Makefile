# DeltaZ — the two commands of the README, plus the course.
#   make demo   set up (first time only), then run the whole pipeline on synthetic DTU-like data
#   make test   set up (first time only), then run every test: unit tests, real-DTU checks, notebooks
#               in smoke mode and in full mode
#   make lab    open the notebook course in JupyterLab
# The first use creates .venv and installs the package with `pip install -e ".[dev]"`.
# An already-installed torch is reused (the venv then sees the system site-packages).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deltaz-installed
ARGS ?=

.PHONY: setup demo test test-unit test-notebooks test-full test-browser lab clean aloe-data

$(BIN)/python:
	@if $(PYTHON) -c "import torch" >/dev/null 2>&1; then \
	  echo "deltaz: reusing the torch installed for $(PYTHON)"; \
	  $(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
	  $(PYTHON) -m venv $(VENV); \
	fi

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/deltaz demo $(ARGS)

# Unit tests and notebooks in smoke mode (one pytest run), every notebook in full mode (the learning claims
# a learner reads), then check notebooks carry no outputs. DELTAZ_SOLUTIONS=1: the exercises' reference
# solutions (deltaz.course.solutions) stand in for the learner's stubs.
test: setup
	DELTAZ_SMOKE=1 DELTAZ_SOLUTIONS=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env tests notebooks $(ARGS)
	DELTAZ_SMOKE=0 DELTAZ_SOLUTIONS=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env notebooks $(ARGS)
	$(BIN)/nbstripout --verify notebooks/*.ipynb

test-unit: setup
	$(BIN)/python -m pytest tests $(ARGS)

test-notebooks: setup
	DELTAZ_SMOKE=1 DELTAZ_SOLUTIONS=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env notebooks $(ARGS)

# The notebooks as a learner runs them (full data, real training): every learning claim is asserted.
test-full: setup
	DELTAZ_SMOKE=0 DELTAZ_SOLUTIONS=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env notebooks $(ARGS)

# The course in a real browser: needs Debian's chromium (apt-get install chromium) and the
# browser extra (pip install -e ".[browser]"); skips with a reason when they are missing.
test-browser: setup
	$(BIN)/python -m pip install -q -e ".[browser]"
	$(BIN)/python -m pytest -m browser tests/browser -v $(ARGS)

# The second real stereo pair (Middlebury 2006 Aloe, OpenCV's sample) where deltaz.io.aloe.aloe_dir() looks:
# $DELTAZ_ALOE, else $DELTAZ_DATA/aloe, else data/aloe. From Debian's opencv-doc, else OpenCV's GitHub. Its tests
# skip with that reason without it; benchmarks/real_middlebury.py --scene aloe reads it.
aloe-data:
	bash benchmarks/fetch_aloe.sh "$${DELTAZ_ALOE:-$${DELTAZ_DATA:-data}/aloe}"

lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs/demo .pytest_cache

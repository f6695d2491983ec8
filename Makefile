# Two commands on a fresh machine: `make demo` runs the main job (a real scenario, with report and
# plots), `make test` runs the whole test suite. Both create the virtual environment on first use.
#
# torch is installed on its own and first, pinned: an unpinned torch pulled in by stable-baselines3
# would resolve to a multi-GB CUDA build, while torch==2.13.0 is the CPU build this project targets.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mirrortwin-installed
RESULTS ?= results
DEMO_SCENARIO := planetlab-20110303
DEMO_POLICY := threshold
DEMO_OUT := $(RESULTS)/$(DEMO_SCENARIO)-$(DEMO_POLICY)

.PHONY: install system-packages demo test test-fast lint

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml changes (or the venv is new), so repeated runs start at once.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install 'torch==2.13.0'
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/mirrortwin run $(DEMO_SCENARIO) --policy $(DEMO_POLICY) --out $(DEMO_OUT)
	@echo
	@echo "The report is $(DEMO_OUT)/report.md (plots and data beside it)."

# HAProxy, Redis and borgbackup: the realworld tests run them for real (installed once, if missing).
system-packages:
	bash .ci/system-packages

test: $(STAMP) system-packages
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest

test-fast: $(STAMP) system-packages
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow and not expensive"

lint: $(STAMP)
	$(BIN)/ruff check .

# Two commands: `make test` and `make bench`. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Data home: ../shared/data when it exists (never copied into the repository).
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)),)
export CAUSALMIM_DATA_HOME ?= $(SHARED_DATA)
endif
# Small networks: one thread per process, parallelize over processes.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: test bench lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,plot,econml]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not gpu"

bench: $(STAMP)
	$(BIN)/python benchmarks/ihdp.py --quick

lint: $(STAMP)
	$(BIN)/ruff check causalmim tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

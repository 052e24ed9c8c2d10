# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit integration clean

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' \
		|| { echo "make: needs Python 3.11 or 3.12 as $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/pip || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .   # the `arq-jobs` console script
	touch $@

## run: the API and one worker (embedded Redis if none is reachable; EMBEDDED_REDIS=1 forces it)
run: $(STAMP)
	exec $(BIN)/python -m devserver $(if $(filter 1 yes true,$(EMBEDDED_REDIS)),--embedded-redis)

## test: ruff, mypy --strict and the whole pytest suite (unit + integration)
test: lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

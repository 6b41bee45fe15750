# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,demo,checkpoint,lightning]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m msoptim.demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench tools examples
	$(VENV)/bin/ruff format --check src tests bench tools examples

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench tools examples
	$(VENV)/bin/ruff check --fix src tests bench tools examples

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info runs

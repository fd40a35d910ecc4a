# Bootstraps .venv on first use; needs only python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint typecheck screenshots clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/symbi-console $(ARGS)

test: $(STAMP)
	TEXTUAL_ANIMATIONS=none $(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check engine console tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

screenshots: $(STAMP)
	$(PY) -m console.demo --screenshots screenshots

clean:
	rm -rf $(VENV) .pytest_cache

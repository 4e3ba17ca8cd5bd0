# Conveniences for people with make; CI runs .ci/run, which needs only Python and pip.
PYTHON ?= .venv/bin/python
SEED ?= 7

.PHONY: test chaos bench lint

test:
	$(PYTHON) -m pytest

chaos:  # the long chaos run: 3,000 pages, 20 SIGKILLs; `make chaos SEED=42`
	$(PYTHON) -m tests.end_to_end.chaos --seed $(SEED) --pages 3000 --kills 20

bench:
	$(PYTHON) -m bench.run

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check . && $(PYTHON) -m mypy

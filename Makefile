# lophoc — the two commands a newcomer needs: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve test bench weaklink lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/lophoc serve $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m loadtests --students 10 --seconds 20
	$(BIN)/python -m loadtests --students 20 --seconds 20
	$(BIN)/python -m loadtests --students 40 --seconds 20

# A real Chromium student behind emulated weak phone links (root: network namespaces).
weaklink: install
	$(BIN)/python -m loadtests.weaklink $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy media signaling classroom web loadtests tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

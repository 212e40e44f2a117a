# The two commands a new user needs: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
NODE   := var
STAMP  := $(VENV)/.installed

.PHONY: serve test install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,fast]'
	touch $(STAMP)

install: $(STAMP)

$(NODE)/idnode.toml: | $(STAMP)
	$(BIN)/idnode init $(NODE) --name demo-node --prefix 20.500.123 --demo

serve: $(STAMP) $(NODE)/idnode.toml
	$(BIN)/idnode serve $(NODE)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) $(NODE) build *.egg-info src/*.egg-info

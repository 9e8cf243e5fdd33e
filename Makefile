# Two commands do everything: `make serve` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BASTION_HOST ?= 127.0.0.1
BASTION_PORT ?= 8000
export BASTION_HOST BASTION_PORT

.PHONY: serve test install install-test clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/bastion serve

test: install-test
	VENV=$(VENV) bash scripts/test.sh

# Update the translation catalogs from the code and compile them (needs Debian's gettext).
messages: install-test
	$(BIN)/python scripts/messages.py

clean:
	rm -rf $(VENV) var

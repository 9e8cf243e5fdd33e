# Two commands do everything: `make serve` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BASTION_HOST ?= 127.0.0.1
BASTION_PORT ?= 8000
export BASTION_HOST BASTION_PORT

.PHONY: serve test install install-test clean messages lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every dependency, pip and the build backend included, comes from a lock and is checked
# against its --hash lines (pip's hash-checking mode, on for the whole install), as wheels only:
# building a source distribution would fetch its build requirements unchecked. The project
# itself is a directory, which has no hash, so it follows with --no-deps and the locked
# setuptools (no build isolation: nothing is fetched unchecked). `pip check` catches a
# pyproject.toml dependency the lock misses: run `make lock` (scripts/lock.sh).
# The locked pip comes first, on its own and hash-checked: the pip a new venv brings (23.2 with
# Python 3.11) takes a dependency's extra, such as sigstore's pydantic[email], for a second,
# unpinned requirement and refuses the whole lock.
define install_locked
	awk '/^pip==/ { found = 1 } found { print } found && !/\\$$/ { exit }' $(1) > $(VENV)/pip.lock
	$(BIN)/python -m pip install -q --require-hashes --only-binary :all: -r $(VENV)/pip.lock
	$(BIN)/python -m pip install -q --require-hashes --only-binary :all: -r $(1)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check -q >/dev/null || { $(BIN)/python -m pip check; exit 1; }
endef

$(VENV)/.installed: pyproject.toml constraints-runtime.txt | $(BIN)/python
	$(call install_locked,constraints-runtime.txt)
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(call install_locked,constraints.txt)
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

# Re-lock our dependencies with hashes (constraints.txt, constraints-runtime.txt): keeps the
# current pins; `make lock UPGRADE=1` moves to the newest versions pyproject.toml allows.
lock: | $(BIN)/python
	VENV=$(VENV) UPGRADE=$(UPGRADE) bash scripts/lock.sh

clean:
	rm -rf $(VENV) var

# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
empty :=
space := $(empty) $(empty)
# pyenv's shims hide the interpreters that are not selected: put the real ones on PATH
PYENV_BINS := $(wildcard $(HOME)/.pyenv/versions/3.1[1-9].*/bin)
ifneq ($(PYENV_BINS),)
export PATH := $(subst $(space),:,$(PYENV_BINS)):$(PATH)
endif

# use the interpreters the machine has; never download one
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test lint typing docs bootstrap system-check clean

demo: bootstrap  ## run the demo (SQLite + local memory, no server needed)
	$(VENV)/bin/nox -s demo -- $(ARGS)

test: bootstrap system-check  ## every test leg, lint, typing, docs, package, demo
	$(VENV)/bin/nox $(NOXARGS)

lint typing docs: bootstrap
	$(VENV)/bin/nox -s $@

bootstrap: $(VENV)/.installed

$(VENV)/.installed: Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "Python 3.11 or newer is needed as $(PYTHON) (Debian: python3, python3-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "install the Debian package python3-venv"; exit 1; }
	$(VENV)/bin/python -m pip install --quiet --upgrade pip "nox>=2024.10.9" uv
	touch $@

system-check:
	@bash scripts/check-system

clean:
	rm -rf $(VENV) .nox site

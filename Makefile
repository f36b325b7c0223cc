# lava-gle: the two commands of the README are `make demo` and `make test`.
# Both create .venv with a Python 3.10 interpreter found by scripts/find-python310.sh.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: demo test test-slow bench venv clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@py310=$$(scripts/find-python310.sh) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	  rm -rf $(VENV); echo "creating $(VENV) with $$py310"; "$$py310" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plot,experiments]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lava-gle demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow --run-slow $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# amongo developer tasks. Needs only python3 (3.9+) and pip reaching PyPI.
#   make test              whole suite (unit + integration; servers are started by the fixtures)
#   make test-unit         tests/unit only
#   make test-integration  everything but tests/unit
#   make demo              examples/quickstart.py against a throwaway SecantusDB replica set
#   make bench             python -m benchmarks
#   make fuzz              longer fuzz campaign (FUZZ_EXAMPLES=N scales every target; default 20)
#   make soak              10-minute soak through the fault proxy with a server restart
#                          (SOAK_DURATION=seconds, SOAK_ARGS='--seed 7 --json out.json')
#   MONGODB_URI=mongodb://... make test   run the suite against your own deployment
#   make test PYTEST_ARGS='-k proxy -x'   extra pytest arguments

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Per-test timeout (seconds, pytest-timeout); the whole suite must stay well under 15 minutes.
PYTEST_TIMEOUT ?= 300
PYTEST_ARGS ?=
PYTEST = $(PY) -m pytest -q --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)
# pytest exits 5 when it collected no test: that is a failure here, said out loud.
CHECK_RC = rc=$$?; if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests (exit 5)" >&2; fi; exit $$rc

.PHONY: venv test test-unit test-integration demo bench fuzz soak clean distclean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changes. pytest-timeout is the harness's per-test timeout.
$(VENV)/.stamp-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.stamp-bench: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

venv: $(VENV)/.stamp-test

test: venv
	$(PYTEST) tests || { $(CHECK_RC); }

test-unit: venv
	$(PYTEST) tests/unit || { $(CHECK_RC); }

test-integration: venv
	$(PYTEST) tests --ignore=tests/unit || { $(CHECK_RC); }

# The bounded fuzz campaign runs in `make test`; this one tries FUZZ_EXAMPLES times as many
# cases per target (deterministic; AMONGO_FUZZ_RANDOM=1 for fresh random cases) and prints them.
FUZZ_EXAMPLES ?= 20
fuzz: venv
	AMONGO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q --timeout=7200 -p no:cacheprovider tests/fuzz $(PYTEST_ARGS) || { $(CHECK_RC); }

SOAK_DURATION ?= 600
SOAK_ARGS ?=
soak: venv
	$(PY) tests/soak/soak.py --duration $(SOAK_DURATION) $(SOAK_ARGS)

demo: venv
	$(PY) examples/run_demo.py

bench: $(VENV)/.stamp-bench
	$(PY) -m benchmarks

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print | xargs rm -rf

distclean: clean
	rm -rf $(VENV)

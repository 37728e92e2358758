# amongo developer tasks. Needs only python3 (3.9+) and pip reaching PyPI.
#   make test              whole suite (unit + integration; servers are started by the fixtures),
#                          then the unified spec suites through the PyMongo-style API
#   make test-unit         tests/unit only
#   make test-integration  everything but tests/unit
#   make test-csot         the client-side-operations-timeout unified suite through both APIs
#                          (make test runs it once, through the Motor-style API: ~1.5 min)
#   make demo              examples/quickstart.py against a throwaway SecantusDB replica set
#   make bench             python -m benchmarks
#   make docs              Sphinx site into docs/_build/html (warnings are errors)
#   make test-versions     tests/unit + an integration smoke on every declared Python (3.9-3.13)
#   make dist              sdist + wheel into dist/, checked to contain LICENSE
#   make test-odm          Beanie 1.30.0's own test suite with `motor` served by amongo, then
#                          Beanie 2.1.0's with pymongo.AsyncMongoClient = amongo.AsyncMongoClient
#                          (nx-27017)
#   make test-odm-motor    Beanie 1.30.0 with the real Motor 3.7.1 (its baseline)
#   make test-odm-pymongo  Beanie 2.1.0 with the real PyMongo 4.20.1 async client (its baseline)
#   make test-odm-beanie2  only the amongo run of Beanie 2.1.0
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

.PHONY: venv test test-unit test-integration test-csot test-odm test-odm-motor test-odm-pymongo test-odm-beanie2 demo bench fuzz soak clean distclean docs test-versions test-versions-ci dist

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

# The ODM suites run in their own venv (Beanie's test dependencies: pydantic, fastapi,
# pytest-asyncio ... stay out of .venv), with amongo installed editable and the real Motor.
ODM_VENV := .venv-odm
ODM_PY := $(ODM_VENV)/bin/python
ODM_ARGS ?=

$(ODM_PY):
	$(PYTHON) -m venv $(ODM_VENV)

$(ODM_VENV)/.stamp: pyproject.toml tests/odm/requirements-beanie.txt | $(ODM_PY)
	$(ODM_PY) -m pip install -q -r tests/odm/requirements-beanie.txt -e .
	touch $@

# Beanie 2.x (built on PyMongo's async API) pins other versions of its dependencies: a venv of its own.
ODM2_VENV := .venv-odm2
ODM2_PY := $(ODM2_VENV)/bin/python
ODM2_ARGS ?=
BEANIE2 = $(PY) tests/odm/run_beanie.py --python $(ODM2_PY) --beanie-version 2.1.0

$(ODM2_PY):
	$(PYTHON) -m venv $(ODM2_VENV)

$(ODM2_VENV)/.stamp: pyproject.toml tests/odm/requirements-beanie2.txt | $(ODM2_PY)
	$(ODM2_PY) -m pip install -q -r tests/odm/requirements-beanie2.txt -e .
	touch $@

test: venv
	$(PYTEST) tests || { $(CHECK_RC); }
	# the unified spec suites once more through the PyMongo-style API (amongo.AsyncMongoClient)
	AMONGO_UNIFIED_API=pymongo $(PYTEST) tests/unified || { $(CHECK_RC); }

test-unit: venv
	$(PYTEST) tests/unit || { $(CHECK_RC); }

test-integration: venv
	$(PYTEST) tests --ignore=tests/unit || { $(CHECK_RC); }

# Both Beanie suites run even when the first fails; the target fails if either does.
test-odm: venv $(ODM_VENV)/.stamp $(ODM2_VENV)/.stamp
	rc=0; \
	$(PY) tests/odm/run_beanie.py --python $(ODM_PY) --driver amongo $(ODM_ARGS) || rc=1; \
	$(BEANIE2) --driver amongo $(ODM2_ARGS) || rc=1; \
	exit $$rc

test-odm-beanie2: venv $(ODM2_VENV)/.stamp
	$(BEANIE2) --driver amongo $(ODM2_ARGS)

test-odm-pymongo: venv $(ODM2_VENV)/.stamp
	$(BEANIE2) --driver pymongo $(ODM2_ARGS)

test-odm-motor: venv $(ODM_VENV)/.stamp
	$(PY) tests/odm/run_beanie.py --python $(ODM_PY) --driver motor $(ODM_ARGS)

# The CSOT unified suite (~1.5 min a pass) runs in `make test` through the Motor-style API only
# (the engine under both APIs is the same); this target runs it through both.
test-csot: venv
	$(PYTEST) tests/unified/test_unified.py -k test_unified_csot || { $(CHECK_RC); }
	AMONGO_UNIFIED_CSOT=1 AMONGO_UNIFIED_API=pymongo $(PYTEST) tests/unified/test_unified.py -k test_unified_csot || { $(CHECK_RC); }

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
	rm -rf build dist docs/_build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print | xargs rm -rf

distclean: clean
	rm -rf $(VENV) .venvs $(ODM_VENV) $(ODM2_VENV)

# -- docs, Python versions, distributions ----------------------------------------------------
$(VENV)/.stamp-docs: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.stamp-docs
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# Every declared version (pyproject classifiers), one venv each under .venvs/; one SecantusDB.
test-versions: venv
	$(PY) tests/run_versions.py

# CI's bounded slice: the unit tests on the oldest and newest declared versions.
test-versions-ci: venv
	$(PY) tests/run_versions.py --oldest-newest --unit-only

dist: $(VENV)/.stamp-test
	rm -rf dist
	$(PY) -m pip install -q build
	$(PY) -m build --outdir dist .
	$(PY) tests/check_dist.py dist

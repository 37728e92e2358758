"""One pytest test per unified-format spec test, run against SecantusDB.

``AMONGO_UNIFIED_DRIVER=motor`` runs the suites with Motor (to validate the runner); the default
runs them with ``amongo.motor_asyncio``.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest
from pymongo.errors import PyMongoError

from _specs import load, spec_files, specs_dir

from . import known_failures, skips
from .runner import Skip, load_extended, UnifiedRunner, driver_module, driver_name, server_info
from .schema import validate

SUITES: Tuple[str, ...] = (
    "unified-test-format/valid-pass",
    "crud",
    "collection-management",
    "index-management",
    "run-command",
    "command-logging-and-monitoring",
    "versioned-api",
    "sessions",
    "transactions",
    "change-streams",
    "retryable-reads",
    "retryable-writes",
    "transactions-convenient-api",
    "read-write-concern/operation",
    "causal-consistency",
    "client-backpressure",
    "gridfs",
    "mongodb-handshake",
    "server-discovery-and-monitoring/unified",
    "server-selection/logging",
    "connection-monitoring-and-pooling/logging",
    "auth/unified",
    "open-telemetry",
)

#: Suites whose standalone-only tests run against SecantusDB --standalone (test_unified_single)
#: instead of the replica set.
SINGLE_SUITES: Tuple[str, ...] = (
    "server-discovery-and-monitoring/unified",
    "server-selection/logging",
    "connection-monitoring-and-pooling/logging",
)


#: Per-test time limit (seconds); AMONGO_UNIFIED_TIMEOUT lowers it for quick triage runs.
_TIMEOUT = float(os.environ.get("AMONGO_UNIFIED_TIMEOUT", "60"))

# The driver must import: a broken amongo.motor_asyncio fails collection, never skips the suite.
driver_module()


def _requires_auth(reqs: Any) -> bool:
    """Whether every alternative of a runOnRequirements list needs an authenticated server."""
    return bool(reqs) and all(r.get("auth") is True for r in reqs)


_ALL_TOPOLOGIES = frozenset({"single", "replicaset", "sharded", "sharded-replicaset", "load-balanced"})


def _topologies(reqs: Any) -> frozenset:
    """The topologies a runOnRequirements list allows (all of them when it says nothing)."""
    if not reqs:
        return _ALL_TOPOLOGIES
    out: set = set()
    for r in reqs:
        out |= set(r.get("topologies") or _ALL_TOPOLOGIES)
    return frozenset(out)


def _single_only(spec: Any, test: Any) -> bool:
    """Whether the test runs on a standalone but not on a replica set."""
    tops = _topologies(spec.get("runOnRequirements")) & _topologies(test.get("runOnRequirements"))
    return "single" in tops and "replicaset" not in tops


def _cases(suites: Tuple[str, ...], auth: Optional[bool] = None, single: Optional[bool] = None) -> List[Any]:
    """One param per test; *auth* True/False keeps only the tests that do / do not require
    authentication, *single* True/False only those that do / do not run on a standalone only
    (None keeps all)."""
    out = []
    root = specs_dir()
    for suite in suites:
        for path in spec_files(*suite.split("/")):
            spec = load(path)
            rel = path.relative_to(root).as_posix()
            file_auth = _requires_auth(spec.get("runOnRequirements"))
            for test in spec["tests"]:
                needs = file_auth or _requires_auth(test.get("runOnRequirements"))
                if single is not None and suite in SINGLE_SUITES and _single_only(spec, test) != single:
                    continue
                if auth is None or needs == auth:
                    out.append(pytest.param(path, test["description"], id=f"{rel}::{test['description']}"))
    return out


_FILES: Dict[Any, Dict[str, Any]] = {}
_INFO: Dict[str, Any] = {}


def _spec(path: Any) -> Dict[str, Any]:
    if path not in _FILES:
        raw = load(path)
        validate(raw)
        _FILES[path] = load_extended(raw)
    return _FILES[path]


async def _run(path: Any, description: str, uri: str, table: Dict[str, str], request: Any,
               multi_uri: Optional[str] = None) -> None:
    test_id = request.node.callspec.id
    reason = skips.skip_reason(test_id, skips.SPEC_DEFECTS) or skips.skip_reason(test_id, table)
    if reason and not os.environ.get("AMONGO_UNIFIED_NO_SKIPS"):  # (set it to audit skips.py)
        pytest.skip(reason)
    gap = skips.skip_reason(test_id, known_failures.AMONGO)
    if gap:
        request.applymarker(pytest.mark.xfail(reason=f"amongo gap: {gap}", strict=False))
    if driver_name() == "motor":
        deviation = skips.skip_reason(test_id, skips.MOTOR_DEVIATIONS)
        if deviation:
            request.applymarker(pytest.mark.xfail(reason=f"Motor deviation: {deviation}", strict=False))
    spec = _spec(path)
    test = next(t for t in spec["tests"] if t["description"] == description)
    if uri not in _INFO:
        client = driver_module().AsyncIOMotorClient(uri)
        try:
            _INFO[uri] = await server_info(client, uri)
        finally:
            client.close()
    runner = UnifiedRunner(uri, spec, test, _INFO[uri], multi_uri=multi_uri)
    try:
        await runner.run()
    except Skip as exc:
        pytest.skip(str(exc))
    finally:
        # (a test skipped before its teardown must not leave amongo's loggers at DEBUG)
        runner.log_capture.close()


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("path, description", _cases(SUITES, auth=False, single=False))
async def test_unified(path: Any, description: str, unified_secantus: Any, request: Any) -> None:
    await _run(path, description, unified_secantus.uri, skips.SECANTUS, request)


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("path, description", _cases(SUITES, auth=True))
async def test_unified_auth(path: Any, description: str, unified_secantus_auth: Any, request: Any) -> None:
    """The tests whose runOnRequirements need authentication, against SecantusDB with --auth."""
    await _run(path, description, unified_secantus_auth.uri, skips.SECANTUS_AUTH, request)


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("path, description", _cases(SINGLE_SUITES, single=True))
async def test_unified_single(path: Any, description: str, unified_secantus_standalone: Any,
                              request: Any) -> None:
    """Tests that need a standalone, against SecantusDB started with --standalone."""
    await _run(path, description, unified_secantus_standalone.uri, skips.SECANTUS_STANDALONE, request)


#: Suites that also run against nx-27017, a standalone (tests needing a replica set skip
#: themselves through runOnRequirements).
NX_SUITES: Tuple[str, ...] = (
    "unified-test-format/valid-pass",
    "crud",
    "collection-management",
    "index-management",
    "run-command",
    "command-logging-and-monitoring",
    "versioned-api",
    "load-balancers",  # non-lb-connection-establishment (single or sharded only)
)


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("path, description", _cases(NX_SUITES))
async def test_unified_nx(path: Any, description: str, unified_nx: Any, request: Any) -> None:
    await _run(path, description, unified_nx.uri, skips.NX, request)


#: Suites run against a load balancer (tests/proxy.py in load-balancer mode over SecantusDB):
#: the load-balancers suite and those whose commands pin connections (cursors, transactions)
#: or whose events carry the serviceId.
LB_SUITES: Tuple[str, ...] = (
    "load-balancers",
    "crud",
    "transactions",
    "transactions-convenient-api",
    "sessions",
    "change-streams",
    "retryable-reads",
    "retryable-writes",
    "command-logging-and-monitoring",
    "versioned-api",
    "open-telemetry",
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path, description", _cases(LB_SUITES))
async def test_unified_lb(path: Any, description: str, unified_lb: Any, request: Any) -> None:
    await _run(path, description, unified_lb.uri, skips.LOAD_BALANCED, request, multi_uri=unified_lb.multi_uri)


def _needs_auth(reqs: Any) -> bool:
    return any(r.get("auth") is True for r in reqs or [])


def _auth_cases(suites: Tuple[str, ...]) -> List[Any]:
    """The tests of *suites* that only run with authentication (runOnRequirements auth: true)."""
    out = []
    for param in _cases(suites):
        path, description = param.values
        spec = load(path)
        test = next(t for t in spec["tests"] if t["description"] == description)
        if _needs_auth(spec.get("runOnRequirements")) or _needs_auth(test.get("runOnRequirements")):
            out.append(param)
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path, description", _auth_cases(LB_SUITES))
async def test_unified_lb_auth(path: Any, description: str, unified_lb_auth: Any, request: Any) -> None:
    """The load-balancer tests that need authentication, through the LB proxy over SecantusDB --auth."""
    await _run(path, description, unified_lb_auth.uri, skips.LOAD_BALANCED, request,
               multi_uri=unified_lb_auth.multi_uri)


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("path, description", _cases(("unified-test-format/valid-fail",)))
async def test_valid_fail(path: Any, description: str, unified_secantus: Any, request: Any) -> None:
    """Runner self-test: each of these must be reported as a failure."""
    try:
        await _run(path, description, unified_secantus.uri, {}, request)
    except (AssertionError, Exception) as exc:
        if isinstance(exc, pytest.skip.Exception):
            raise
        return
    pytest.fail("the runner did not report this valid-fail test as failing")


#: The client-side-operations-timeout suite. Its tests race fail points that block for 10-600 ms
#: against deadlines of a similar size (a 75 ms timeoutMS against two 50 ms blocks leaves 25 ms
#: for everything else), so on a loaded machine one can fail by timing alone. As PyMongo's
#: runner does for its CSOT tests, a test whose assertions fail (or whose operation expected to
#: succeed raises a timeout error) is run again, up to
#: CSOT_ATTEMPTS times in all: a driver bug fails every attempt, a lost race does not repeat.
#: Each retry is printed to stderr (``pytest -s`` or the captured output shows it).
#: It runs in ``make test`` (the Motor-style API pass; with AMONGO_UNIFIED_API=pymongo only
#: when AMONGO_UNIFIED_CSOT=1) and in ``make test-csot`` (both APIs).
CSOT_SUITES: Tuple[str, ...] = ("client-side-operations-timeout",)
CSOT_ATTEMPTS = int(os.environ.get("AMONGO_CSOT_ATTEMPTS", "3"))  # (1: no retry, for triage)

if os.environ.get("AMONGO_UNIFIED_CSOT") or os.environ.get("AMONGO_UNIFIED_API") != "pymongo":

    @pytest.mark.timeout(_TIMEOUT * CSOT_ATTEMPTS)
    @pytest.mark.parametrize("path, description", _cases(CSOT_SUITES))
    async def test_unified_csot(path: Any, description: str, unified_secantus: Any, request: Any) -> None:
        for attempt in range(1, CSOT_ATTEMPTS + 1):
            try:
                await _run(path, description, unified_secantus.uri, skips.SECANTUS, request)
                return
            except (AssertionError, PyMongoError) as exc:
                # (an unexpected timeout error is the same lost race: an operation the test expects
                # to succeed, e.g. under socketTimeoutMS=100, answered late by a loaded server)
                if attempt == CSOT_ATTEMPTS or (isinstance(exc, PyMongoError) and not exc.timeout):
                    raise
                print(f"CSOT retry: attempt {attempt} of {request.node.callspec.id} failed: "
                      f"{str(exc)[:500]}", file=sys.stderr)

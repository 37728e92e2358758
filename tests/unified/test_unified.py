"""One pytest test per unified-format spec test, run against SecantusDB.

``AMONGO_UNIFIED_DRIVER=motor`` runs the suites with Motor (to validate the runner); the default
runs them with ``amongo.motor_asyncio``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from _specs import load, spec_files, specs_dir

from . import skips
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
    "open-telemetry",
    "gridfs",
    "mongodb-handshake/unified",
)

# The driver must import: a broken amongo.motor_asyncio fails collection, never skips the suite.
driver_module()


def _cases(suites: Tuple[str, ...]) -> List[Any]:
    out = []
    root = specs_dir()
    for suite in suites:
        for path in spec_files(*suite.split("/")):
            spec = load(path)
            rel = path.relative_to(root).as_posix()
            for test in spec["tests"]:
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
    reason = skips.skip_reason(test_id, table)
    if reason:
        pytest.skip(reason)
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


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path, description", _cases(SUITES))
async def test_unified(path: Any, description: str, unified_secantus: Any, request: Any) -> None:
    await _run(path, description, unified_secantus.uri, skips.SECANTUS, request)


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


@pytest.mark.timeout(60)
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


@pytest.mark.timeout(60)
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

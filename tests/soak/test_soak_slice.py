"""A 30-second slice of the soak campaign (``make soak`` runs 10 minutes): the mixed workload
through the fault proxy with a server restart; no acknowledged write lost, no wrong reply, no
non-pymongo exception, no unbounded growth of RSS, file descriptors or asyncio tasks."""
from __future__ import annotations

import os

import pytest

import soak

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_soak_slice() -> None:
    if os.environ.get("MONGODB_URI"):
        pytest.skip("the soak campaign restarts the server: it starts its own SecantusDB")
    duration = os.environ.get("AMONGO_SOAK_SLICE", "30")
    args = soak.parse_args(["--duration", duration, "--interval", "2", "--workers", "8"])
    result = soak.run(args)
    problems = soak.verdict(result)
    soak.print_report(result, problems)
    assert problems == []
    assert result["faults_total"] > 20, result["faults"]
    assert result["server_restarts_s"], "the server was not restarted"
    assert result["acknowledged_writes"] > 50

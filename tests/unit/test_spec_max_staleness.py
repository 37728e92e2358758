"""Max-staleness spec suite (offline): staleness estimates, filtering and validation.

The files have the server-selection format plus ``heartbeatFrequencyMS``, ``lastWrite`` and
``lastUpdateTime`` (milliseconds), and ``error: true`` for an invalid maxStalenessSeconds.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from bson import json_util
from pymongo.errors import ConfigurationError
from pymongo.read_preferences import make_read_preference, read_pref_mode_from_name

from amongo.topology.description import (
    ServerDescription,
    ServerType,
    TopologyDescription,
    TopologyType,
    parse_address,
)
from amongo.topology.selection import (
    WRITABLE,
    select_servers,
    staleness_seconds,
    suitable_servers,
    validate_max_staleness,
)
from tests._specs import load, spec_files, specs_dir

SUITE = "max-staleness"


def _params() -> List[Any]:
    root = specs_dir() / SUITE
    return [pytest.param(p, id=p.relative_to(root).as_posix()) for p in spec_files(SUITE)]


def _ms(value: Any) -> float:
    return float(value) / 1000.0


def _server(doc: Dict[str, Any]) -> ServerDescription:
    last_write = (doc.get("lastWrite") or {}).get("lastWriteDate")
    return ServerDescription(
        address=parse_address(doc["address"]),
        server_type=ServerType[doc["type"]],
        tags=dict(doc.get("tags") or {}),
        round_trip_time=_ms(doc["avg_rtt_ms"]) if doc.get("avg_rtt_ms") is not None else None,
        max_wire_version=int(doc.get("maxWireVersion", 21)),
        last_write_date=_ms(last_write) if last_write is not None else None,
        last_update_time=_ms(doc.get("lastUpdateTime", 0)),
    )


def _topology(doc: Dict[str, Any]) -> TopologyDescription:
    servers = {}
    for s in doc["servers"]:
        sd = _server(s)
        servers[sd.address] = sd
    return TopologyDescription(topology_type=TopologyType[doc["type"]], servers=servers)


def _read_preference(doc: Dict[str, Any]) -> Any:
    mode = doc.get("mode", "Primary")
    return make_read_preference(
        read_pref_mode_from_name(mode[0].lower() + mode[1:]),
        doc.get("tag_sets"),
        doc.get("maxStalenessSeconds", -1),
    )


def _addresses(servers: List[Any]) -> List[Any]:
    return sorted(
        s.address if isinstance(s, ServerDescription) else parse_address(s["address"])
        for s in servers
    )


@pytest.mark.parametrize("path", _params())
def test_max_staleness(path: Any) -> None:
    test = json_util.loads(json.dumps(load(path)))
    td = _topology(test["topology_description"])
    heartbeat = test.get("heartbeatFrequencyMS", 10_000)

    def run() -> Any:
        if test.get("operation", "read") == "write":
            selector: Any = WRITABLE
        else:
            selector = _read_preference(test["read_preference"])
        return (
            suitable_servers(td, selector, heartbeat_frequency_ms=heartbeat),
            select_servers(td, selector, 15, heartbeat_frequency_ms=heartbeat),
        )

    if test.get("error"):
        # Invalid values: pymongo's read preference rejects 0 and primary+maxStaleness
        # (ValueError/ConfigurationError); selection rejects values below the minimum.
        with pytest.raises((ConfigurationError, ValueError)):
            run()
        return
    suitable, window = run()
    assert _addresses(suitable) == _addresses(test["suitable_servers"])
    assert _addresses(window) == _addresses(test["in_latency_window"])


def test_validate_max_staleness_bounds() -> None:
    validate_max_staleness(-1, 10_000)
    validate_max_staleness(90, 10_000)
    validate_max_staleness(110, 100_000)
    with pytest.raises(ConfigurationError):
        validate_max_staleness(89, 10_000)
    with pytest.raises(ConfigurationError):
        validate_max_staleness(100, 100_000)


def test_staleness_formula() -> None:
    p = ServerDescription(("p", 1), ServerType.RSPrimary, last_write_date=100.0, last_update_time=50.0)
    s = ServerDescription(("s", 1), ServerType.RSSecondary, last_write_date=40.0, last_update_time=55.0)
    # (55 - 40) - (50 - 100) + 10 = 75
    assert staleness_seconds(s, p, None, 10_000) == pytest.approx(75.0)
    # No primary: SMax.lastWriteDate - S.lastWriteDate + heartbeat.
    smax = ServerDescription(("m", 1), ServerType.RSSecondary, last_write_date=70.0)
    assert staleness_seconds(s, None, smax, 10_000) == pytest.approx(40.0)


def test_suite_present() -> None:
    assert spec_files(SUITE), f"no spec files in {SUITE} (AMONGO_SPECS_DIR?)"

"""Server-selection spec suites (offline): server_selection, rtt and in_window.

Descriptions are built straight from the files' topology descriptions and handed to the
pure functions of :mod:`amongo.topology.selection`.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any, Dict, List

import pytest
from bson import json_util
from pymongo.read_preferences import make_read_preference, read_pref_mode_from_name

from amongo.topology.description import (
    ServerDescription,
    ServerType,
    TopologyDescription,
    TopologyType,
    moving_average_rtt,
    parse_address,
)
from amongo.topology.selection import WRITABLE, choose_in_window, select_servers, suitable_servers
from tests._specs import load, spec_files, specs_dir

SUITE = "server-selection"


def _params(sub: str) -> List[Any]:
    root = specs_dir() / SUITE / sub
    return [pytest.param(p, id=p.relative_to(root).as_posix()) for p in spec_files(SUITE, sub)]


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
    tag_sets = doc.get("tag_sets")
    if mode == "Primary" and tag_sets == [{}]:
        tag_sets = None
    return make_read_preference(
        read_pref_mode_from_name(mode[0].lower() + mode[1:]),
        tag_sets,
        doc.get("maxStalenessSeconds", -1),
    )


def _addresses(servers: List[Any]) -> List[Any]:
    return sorted(s.address if isinstance(s, ServerDescription) else parse_address(s["address"]) for s in servers)


def run_selection_case(test: Dict[str, Any]) -> None:
    """Run one server_selection / max-staleness case."""
    test = json_util.loads(json.dumps(test))
    td = _topology(test["topology_description"])
    heartbeat = test.get("heartbeatFrequencyMS", 10_000)
    deprioritized = [parse_address(s["address"]) for s in test.get("deprioritized_servers", [])]

    def run() -> Any:
        if test.get("operation", "read") == "write":
            selector: Any = WRITABLE
        else:
            selector = _read_preference(test.get("read_preference", {}))
        suitable = suitable_servers(
            td, selector, heartbeat_frequency_ms=heartbeat, deprioritized=deprioritized
        )
        window = select_servers(
            td, selector, 15, heartbeat_frequency_ms=heartbeat, deprioritized=deprioritized
        )
        return suitable, window

    if test.get("error"):
        with pytest.raises(Exception):
            run()
        return
    suitable, window = run()
    assert _addresses(suitable) == _addresses(test["suitable_servers"])
    assert _addresses(window) == _addresses(test["in_latency_window"])


@pytest.mark.parametrize("path", _params("server_selection"))
def test_server_selection(path: Any) -> None:
    run_selection_case(load(path))


@pytest.mark.parametrize("path", _params("rtt"))
def test_rtt(path: Any) -> None:
    t = load(path)
    previous = None if t["avg_rtt_ms"] == "NULL" else float(t["avg_rtt_ms"])
    assert moving_average_rtt(previous, float(t["new_rtt_ms"])) == pytest.approx(t["new_avg_rtt"])


@pytest.mark.parametrize("path", _params("in_window"))
def test_in_window(path: Any) -> None:
    t = json_util.loads(json.dumps(load(path)))
    td = _topology(t["topology_description"])
    counts = {parse_address(s["address"]): s["operation_count"] for s in t["mocked_topology_state"]}
    selector = make_read_preference(read_pref_mode_from_name("nearest"), None)
    window = select_servers(td, selector, 15)
    rng = random.Random(20240531)
    chosen: Counter = Counter()
    for _ in range(t["iterations"]):
        chosen[choose_in_window(window, counts, rng).address] += 1
    tolerance = t["outcome"]["tolerance"]
    for address, expected in t["outcome"]["expected_frequencies"].items():
        freq = chosen[parse_address(address)] / t["iterations"]
        if expected in (0, 1):
            assert freq == expected, address
        else:
            assert abs(freq - expected) <= tolerance, (address, freq, expected)


def test_suites_present() -> None:
    for sub in ("server_selection", "rtt", "in_window"):
        assert spec_files(SUITE, sub), f"no spec files in {SUITE}/{sub} (AMONGO_SPECS_DIR?)"

"""SDAM spec suites (offline): rs, single, sharded, load-balanced, errors and monitoring.

Each file drives the pure functions of :mod:`amongo.topology.sdam` with scripted hello
replies and application errors.  The runner models what the I/O layer owns: one pool
generation per server (bumped when the decision says "clear pool", and when a monitor's
check fails) and the SDAM event stream (from :func:`amongo.topology.sdam.topology_events`).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

import pytest
from bson import json_util
from bson.objectid import ObjectId
from pymongo import monitoring

from amongo.topology.description import (
    Address,
    ServerDescription,
    ServerType,
    TopologyDescription,
    format_address,
    parse_address,
)
from amongo.topology.sdam import (
    ErrorKind,
    ErrorPhase,
    check_failure_decision,
    command_error_fields,
    error_handling_decision,
    initial_topology_description,
    opening_events,
    topology_events,
    updated_topology_description,
)
from tests._specs import load, spec_files, specs_dir

SUITE = "server-discovery-and-monitoring"
OUTCOME_DIRS = ("rs", "single", "sharded", "load-balanced", "errors")


def _ejson(obj: Any) -> Any:
    """Convert the test file's extended JSON ($oid, $numberLong) to BSON values."""
    return json_util.loads(json.dumps(obj))


def _params(dirs: Tuple[str, ...]) -> List[Any]:
    out = []
    root = specs_dir() / SUITE
    for d in dirs:
        for path in spec_files(SUITE, d):
            out.append(pytest.param(path, id=path.relative_to(root).as_posix()))
    return out


def _parse_uri(uri: str) -> Tuple[List[Address], Dict[str, str]]:
    assert uri.startswith("mongodb://")
    rest = uri[len("mongodb://") :]
    hosts_part, _, query = rest.partition("?")
    hosts_part = hosts_part.rstrip("/")
    hosts = [parse_address(h) for h in hosts_part.split(",") if h]
    opts = {k.lower(): v for k, v in parse_qsl(query)}
    return hosts, opts


def _initial(uri: str, folder: str) -> TopologyDescription:
    seeds, opts = _parse_uri(uri)
    direct: Optional[bool] = None
    if "directconnection" in opts:
        direct = opts["directconnection"] == "true"
    elif folder == "single" and len(seeds) == 1:
        # One seed in the "single" files means an initial TopologyType of Single.
        direct = True
    return initial_topology_description(
        seeds,
        replica_set_name=opts.get("replicaset"),
        direct_connection=direct,
        load_balanced=opts.get("loadbalanced") == "true",
    )


class _Harness:
    """The I/O layer's bookkeeping, reduced to what the spec files observe."""

    def __init__(self, td: TopologyDescription) -> None:
        self.td = td
        self.generations: Dict[Address, int] = {a: 0 for a in td.servers}
        self.topology_id = ObjectId()
        self.events: List[Any] = list(opening_events(td, self.topology_id))

    def _swap(self, new: TopologyDescription, address: Address) -> None:
        self.events.extend(topology_events(self.td, new, self.topology_id, address=address))
        self.td = new
        self.generations = {a: self.generations.get(a, 0) for a in new.servers}

    def hello(self, address: Address, reply: Dict[str, Any]) -> None:
        if address not in self.td.servers:
            return
        if not reply:
            # A failed check: the monitor marks the server Unknown and clears its pool.
            decision = check_failure_decision(self.td.servers[address])
            if decision.clear_pool:
                self.generations[address] += 1
            sd = ServerDescription.unknown(address, ConnectionError("hello failed"))
        else:
            sd = ServerDescription.from_hello(address, reply, 0.0)
        self._swap(updated_topology_description(self.td, sd), address)

    def app_error(self, err: Dict[str, Any]) -> None:
        address = parse_address(err["address"])
        if address not in self.td.servers:
            return
        kind = ErrorKind(err["type"])
        code = message = tv = None
        if kind == ErrorKind.COMMAND:
            fields = command_error_fields(err["response"])
            if fields is None:
                return  # e.g. only writeErrors: never looked at
            code, message, tv = fields
        pool_gen = self.generations[address]
        decision = error_handling_decision(
            self.td,
            address,
            kind,
            code=code,
            message=message,
            topology_version=tv,
            connection_generation=err.get("generation", pool_gen),
            pool_generation=pool_gen,
            max_wire_version=err["maxWireVersion"],
            phase=ErrorPhase(err["when"]),
        )
        if decision.stale or decision.ignored:
            return
        if decision.mark_unknown:
            sd = ServerDescription.unknown(
                address, RuntimeError(message or kind.value), topology_version=decision.topology_version
            )
            self._swap(updated_topology_description(self.td, sd), address)
        if decision.clear_pool:
            self.generations[address] += 1


def _run_phases(path: Any, folder: str, check: Any) -> None:
    data = _ejson(load(path))
    h = _Harness(_initial(data["uri"], folder))
    for i, phase in enumerate(data["phases"]):
        for address, reply in phase.get("responses", []):
            h.hello(parse_address(address), reply)
        for err in phase.get("applicationErrors", []):
            h.app_error(err)
        check(h, phase["outcome"], f"phase {i} ({phase.get('description', '')})")


# ---------------------------------------------------------------------------------------
# Outcome (TopologyDescription) suites
# ---------------------------------------------------------------------------------------


def _check_server(sd: ServerDescription, exp: Dict[str, Any], gen: int, where: str) -> None:
    assert sd.server_type_name == exp["type"], (where, sd)
    if "setName" in exp:
        assert sd.set_name == exp["setName"], where
    if "setVersion" in exp:
        assert sd.set_version == exp["setVersion"], where
    if "electionId" in exp:
        assert sd.election_id == exp["electionId"], where
    if "logicalSessionTimeoutMinutes" in exp:
        assert sd.logical_session_timeout_minutes == exp["logicalSessionTimeoutMinutes"], where
    for key, attr in (("minWireVersion", "min_wire_version"), ("maxWireVersion", "max_wire_version")):
        if key in exp:
            # The SDAM default for both is 0; the load-balancer file writes that as null.
            assert getattr(sd, attr) == (exp[key] if exp[key] is not None else 0), (where, key)
    if "topologyVersion" in exp:
        assert sd.topology_version == exp["topologyVersion"], (where, sd.topology_version)
    if "pool" in exp:
        assert gen == exp["pool"]["generation"], (where, "pool generation")
    if "error" in exp:
        assert sd.error is not None and exp["error"] in str(sd.error), (where, sd.error)


def _check_outcome(h: _Harness, outcome: Dict[str, Any], where: str) -> None:
    td = h.td
    assert td.topology_type_name == outcome["topologyType"], where
    assert td.replica_set_name == outcome["setName"], where
    if "logicalSessionTimeoutMinutes" in outcome:
        assert td.logical_session_timeout_minutes == outcome["logicalSessionTimeoutMinutes"], where
    if "maxSetVersion" in outcome:
        assert td.max_set_version == outcome["maxSetVersion"], where
    if "maxElectionId" in outcome:
        assert td.max_election_id == outcome["maxElectionId"], where
    if "compatible" in outcome:
        assert td.compatible == outcome["compatible"], (where, td.compatibility_error)
    expected = {parse_address(a): s for a, s in outcome["servers"].items()}
    assert set(td.servers) == set(expected), where
    for address, exp in expected.items():
        _check_server(td.servers[address], exp, h.generations[address], f"{where} {address}")


@pytest.mark.parametrize("path", _params(OUTCOME_DIRS))
def test_sdam(path: Any) -> None:
    folder = path.relative_to(specs_dir() / SUITE).parts[0]
    _run_phases(path, folder, _check_outcome)


# ---------------------------------------------------------------------------------------
# Monitoring (event) suite
# ---------------------------------------------------------------------------------------


def _sd_doc(sd: ServerDescription) -> Dict[str, Any]:
    return {
        "address": format_address(sd.address),
        "arbiters": sorted(format_address(a) for a in sd.arbiters),
        "hosts": sorted(format_address(a) for a in sd.hosts),
        "passives": sorted(format_address(a) for a in sd.passives),
        "primary": format_address(sd.primary) if sd.primary else None,
        "setName": sd.set_name,
        "type": sd.server_type_name,
    }


def _norm_sd(exp: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "address": format_address(parse_address(exp["address"])),
        "arbiters": sorted(exp.get("arbiters", [])),
        "hosts": sorted(exp.get("hosts", [])),
        "passives": sorted(exp.get("passives", [])),
        "primary": exp.get("primary"),
        "setName": exp.get("setName"),
        "type": exp["type"],
    }


def _td_doc(td: TopologyDescription) -> Dict[str, Any]:
    return {
        "topologyType": td.topology_type_name,
        "setName": td.replica_set_name,
        "servers": sorted((_sd_doc(s) for s in td.servers.values()), key=lambda d: d["address"]),
    }


def _norm_td(exp: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "topologyType": exp["topologyType"],
        "setName": exp.get("setName"),
        "servers": sorted((_norm_sd(s) for s in exp["servers"]), key=lambda d: d["address"]),
    }


def _event_doc(e: Any) -> Tuple[str, Dict[str, Any]]:
    if isinstance(e, monitoring.TopologyOpenedEvent):
        return "topology_opening_event", {}
    if isinstance(e, monitoring.TopologyDescriptionChangedEvent):
        return "topology_description_changed_event", {
            "previousDescription": _td_doc(e.previous_description),
            "newDescription": _td_doc(e.new_description),
        }
    if isinstance(e, monitoring.ServerOpeningEvent):
        return "server_opening_event", {"address": format_address(e.server_address)}
    if isinstance(e, monitoring.ServerClosedEvent):
        return "server_closed_event", {"address": format_address(e.server_address)}
    if isinstance(e, monitoring.ServerDescriptionChangedEvent):
        return "server_description_changed_event", {
            "address": format_address(e.server_address),
            "previousDescription": _sd_doc(e.previous_description),
            "newDescription": _sd_doc(e.new_description),
        }
    raise AssertionError(f"unexpected event {e!r}")


def _expected_doc(e: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    (name, body), = e.items()
    if name == "topology_opening_event":
        return name, {}
    if name == "topology_description_changed_event":
        return name, {
            "previousDescription": _norm_td(body["previousDescription"]),
            "newDescription": _norm_td(body["newDescription"]),
        }
    if name in ("server_opening_event", "server_closed_event"):
        return name, {"address": format_address(parse_address(body["address"]))}
    if name == "server_description_changed_event":
        return name, {
            "address": format_address(parse_address(body["address"])),
            "previousDescription": _norm_sd(body["previousDescription"]),
            "newDescription": _norm_sd(body["newDescription"]),
        }
    raise AssertionError(f"unknown expected event {name}")


def _check_events(h: _Harness, outcome: Dict[str, Any], where: str) -> None:
    got = [_event_doc(e) for e in h.events]
    want = [_expected_doc(e) for e in outcome["events"]]
    assert got == want, where
    h.events.clear()


@pytest.mark.parametrize("path", _params(("monitoring",)))
def test_sdam_monitoring(path: Any) -> None:
    _run_phases(path, "monitoring", _check_events)


def test_suites_present() -> None:
    for d in OUTCOME_DIRS + ("monitoring",):
        assert spec_files(SUITE, d), f"no spec files in {SUITE}/{d} (AMONGO_SPECS_DIR?)"

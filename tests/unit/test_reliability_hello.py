"""Issue 11, defects 2 and 4 (pure side): ``ServerDescription.from_hello`` rejects fields of
an unexpected type with a ProtocolError, and processing a hello is linear in its size.

Linearity is checked by counting address comparisons (never by timing): the old
de-duplication compared each host with every earlier one (15,000 hosts: ~10^8 comparisons).
"""
from __future__ import annotations

import datetime
from typing import Any, Dict

import pytest
from bson.objectid import ObjectId
from pymongo.errors import ProtocolError

from amongo.topology import description as d
from amongo.topology import sdam
from amongo.topology.description import ServerDescription, ServerType, TopologyType

A = ("a.example", 27017)


def _rs_hello(hosts: Any, **extra: Any) -> Dict[str, Any]:
    doc = {
        "ok": 1, "setName": "rs", "hosts": hosts, "isWritablePrimary": True, "me": "a.example:27017",
        "minWireVersion": 0, "maxWireVersion": 21, "setVersion": 1, "electionId": ObjectId(),
        "topologyVersion": {"processId": ObjectId(), "counter": 3},
        "lastWrite": {"lastWriteDate": datetime.datetime(2024, 1, 1)},
        "logicalSessionTimeoutMinutes": 30, "tags": {"dc": "east"},
    }
    doc.update(extra)
    return doc


@pytest.mark.parametrize(
    "field,value",
    [
        ("electionId", "abc"),
        ("electionId", 5),
        ("setVersion", "1"),
        ("setVersion", 1.5),
        ("setVersion", True),
        ("setName", 3),
        ("hosts", "a.example:27017"),
        ("hosts", ["a.example:27017", None]),
        ("hosts", ["[::1"]),
        ("hosts", ["h:70000"]),
        ("passives", [b"x"]),
        ("arbiters", {"a": 1}),
        ("primary", ["a"]),
        ("me", 1),
        ("topologyVersion", "tv"),
        ("topologyVersion", {"processId": "p", "counter": 1}),
        ("topologyVersion", {"processId": ObjectId(), "counter": 1.5}),
        ("maxWireVersion", "21"),
        ("minWireVersion", float("nan")),
        ("maxBsonObjectSize", "big"),
        ("logicalSessionTimeoutMinutes", "30"),
        ("tags", [1]),
        ("lastWrite", 3),
        ("lastWrite", {"lastWriteDate": "today"}),
        ("lastWrite", {"lastWriteDate": float("inf")}),
        ("serviceId", "sid"),
        ("compression", "zlib"),
    ],
)
def test_from_hello_rejects_wrong_types(field: str, value: Any) -> None:
    hello = _rs_hello(["a.example:27017"])
    hello[field] = value
    with pytest.raises(ProtocolError, match=field):
        ServerDescription.from_hello(A, hello, 0.01)


def test_from_hello_rejects_bad_topology_version_of_failed_reply() -> None:
    with pytest.raises(ProtocolError, match="topologyVersion"):
        ServerDescription.from_hello(A, {"ok": 0, "topologyVersion": {"counter": []}})


def test_from_hello_accepts_well_typed_values() -> None:
    hello = _rs_hello(["a.example:27017", "B.example:1", "a.example:27017"], setVersion=2.0, maxWireVersion=21.0)
    sd = ServerDescription.from_hello(A, hello, 0.01)
    assert sd.server_type == ServerType.RSPrimary
    assert sd.hosts == (A, ("b.example", 1))  # de-duplicated, lower-cased, in order
    assert sd.set_version == 2 and isinstance(sd.set_version, int)
    assert sd.max_wire_version == 21
    assert sd.topology_version["counter"] == 3
    assert d.hello_int({"x": None}, "x", 7) == 7


class _CountingAddress(tuple):
    """An address that counts the equality comparisons made with it."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountingAddress.comparisons += 1
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__


def test_hello_with_15000_hosts_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    real = d.parse_address
    monkeypatch.setattr(d, "parse_address", lambda text, *a: _CountingAddress(real(text, *a)))
    n = 15_000
    hosts = [f"h{i}.example:27017" for i in range(n)] + ["a.example:27017", "h1.example:27017"]
    _CountingAddress.comparisons = 0
    sd = ServerDescription.from_hello(A, _rs_hello(hosts), 0.01)
    assert len(sd.hosts) == n + 1
    assert len(sd.all_hosts) == n + 1
    td = sdam.initial_topology_description([A])
    new = sdam.updated_topology_description(td, sd)
    assert new.topology_type == TopologyType.ReplicaSetWithPrimary
    assert len(new.servers) == n + 1
    events = sdam.topology_events(td, new, ObjectId(), address=A)
    assert len(events) > n
    # the same hello again (the next heartbeat)
    again = sdam.updated_topology_description(new, ServerDescription.from_hello(A, _rs_hello(hosts), 0.01))
    assert len(again.servers) == n + 1
    # Linear: a few comparisons per host (the quadratic de-duplication made ~n^2/2).
    assert _CountingAddress.comparisons < 20 * n, _CountingAddress.comparisons

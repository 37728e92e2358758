"""Unit tests for the pure topology layer beyond what the spec JSON covers."""
from __future__ import annotations

import ast
import datetime
import random
from pathlib import Path

import pytest
from bson.objectid import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo import monitoring
from pymongo.errors import ConfigurationError
from pymongo.read_preferences import Nearest, Primary, Secondary, SecondaryPreferred

from amongo.topology import description as desc_mod
from amongo.topology import sdam as sdam_mod
from amongo.topology import selection as sel_mod
from amongo.topology.description import (
    MAX_SUPPORTED_WIRE_VERSION,
    MIN_SUPPORTED_WIRE_VERSION,
    ServerDescription,
    ServerType,
    TopologyDescription,
    TopologyType,
    compare_topology_version,
    moving_average_rtt,
    parse_address,
)
from amongo.topology.sdam import (
    ErrorKind,
    ErrorPhase,
    check_failure_decision,
    command_error_fields,
    error_handling_decision,
    initial_topology_description,
    min_round_trip_time,
    opening_events,
    topology_events,
    updated_topology_description,
)
from amongo.topology.selection import (
    WRITABLE,
    address_selector,
    choose_in_window,
    select_servers,
)

A, B, C = ("a", 27017), ("b", 27017), ("c", 27017)


def _hello(**kw):
    doc = {"ok": 1, "helloOk": True, "minWireVersion": 0, "maxWireVersion": 21}
    doc.update(kw)
    return doc


def _primary(addr, hosts=("a:27017", "b:27017", "c:27017"), **kw):
    return ServerDescription.from_hello(
        addr, _hello(isWritablePrimary=True, setName="rs", hosts=list(hosts), **kw), 0.01
    )


def _secondary(addr, hosts=("a:27017", "b:27017", "c:27017"), rtt=0.01, **kw):
    return ServerDescription.from_hello(
        addr, _hello(isWritablePrimary=False, secondary=True, setName="rs", hosts=list(hosts), **kw), rtt
    )


# -- purity ------------------------------------------------------------------------------


@pytest.mark.parametrize("mod", [desc_mod, sdam_mod, sel_mod])
def test_pure_modules_do_not_import_asyncio_or_pymongo_internals(mod) -> None:
    tree = ast.parse(Path(mod.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not any(n == "asyncio" or n.startswith("asyncio.") for n in names)
    allowed = {"pymongo.errors", "pymongo.read_preferences", "pymongo", "pymongo.monitoring"}
    assert {n for n in names if n.startswith("pymongo")} <= allowed


def test_constants() -> None:
    assert MIN_SUPPORTED_WIRE_VERSION == 9
    assert MAX_SUPPORTED_WIRE_VERSION == 27
    assert int(ServerType.RSPrimary) == 4 and int(TopologyType.LoadBalanced) == 5


# -- descriptions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, expected",
    [
        ({"ok": 0}, ServerType.Unknown),
        ({"ok": 1}, ServerType.Standalone),
        ({"ok": 1, "msg": "isdbgrid"}, ServerType.Mongos),
        ({"ok": 1, "isreplicaset": True}, ServerType.RSGhost),
        ({"ok": 1, "setName": "rs", "ismaster": True}, ServerType.RSPrimary),
        ({"ok": 1, "setName": "rs", "isWritablePrimary": True}, ServerType.RSPrimary),
        ({"ok": 1, "setName": "rs", "secondary": True}, ServerType.RSSecondary),
        ({"ok": 1, "setName": "rs", "arbiterOnly": True}, ServerType.RSArbiter),
        ({"ok": 1, "setName": "rs", "secondary": True, "hidden": True}, ServerType.RSOther),
        ({"ok": 1, "setName": "rs"}, ServerType.RSOther),
    ],
)
def test_server_type_from_hello(reply, expected) -> None:
    assert ServerDescription.from_hello(A, reply).server_type == expected


def test_from_hello_fields() -> None:
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    sd = ServerDescription.from_hello(
        A,
        _hello(
            isWritablePrimary=True,
            setName="rs",
            hosts=["A:27017", "B:1"],
            me="A:27017",
            primary="A:27017",
            tags={"dc": "ny"},
            lastWrite={"lastWriteDate": when},
            logicalSessionTimeoutMinutes=30,
            maxBsonObjectSize=1024,
        ),
        0.005,
        last_update_time=3.0,
    )
    assert sd.hosts == (A, ("b", 1))
    assert sd.me == A and sd.primary == A
    assert sd.last_write_date == when.timestamp()
    assert sd.round_trip_time == 0.005 and sd.last_update_time == 3.0
    assert sd.max_bson_size == 1024 and sd.server_type_name == "RSPrimary"
    assert sd.is_writable and sd.is_readable and sd.retryable_writes_supported
    with pytest.raises(AttributeError):
        sd.set_name = "x"  # type: ignore[misc]


def test_equality_ignores_rtt_and_update_time() -> None:
    h = _hello(isWritablePrimary=True, setName="rs", hosts=["a:27017"])
    s1 = ServerDescription.from_hello(A, h, 0.001, last_update_time=1)
    s2 = ServerDescription.from_hello(A, h, 0.5, last_update_time=2)
    assert s1 == s2
    assert s1 != ServerDescription.from_hello(A, dict(h, setVersion=2), 0.001)


def test_parse_address() -> None:
    assert parse_address("A") == ("a", 27017)
    assert parse_address("[::1]:27018") == ("::1", 27018)
    assert parse_address("Host:1") == ("host", 1)


def test_rtt_and_topology_version_helpers() -> None:
    assert moving_average_rtt(None, 3.0) == 3.0
    assert moving_average_rtt(10.0, 20.0) == pytest.approx(12.0)
    pid = ObjectId()
    assert compare_topology_version(None, {"processId": pid, "counter": 1}) == -1
    assert compare_topology_version({"processId": pid, "counter": 2}, {"processId": pid, "counter": 1}) == 1
    assert compare_topology_version({"processId": pid, "counter": 1}, {"processId": pid, "counter": 1}) == 0
    assert compare_topology_version({"processId": pid, "counter": 5}, {"processId": ObjectId(), "counter": 1}) == -1
    assert min_round_trip_time([0.5]) == 0.0
    assert min_round_trip_time([0.5, 0.2, 0.3]) == 0.2


def test_compatibility_message() -> None:
    td = initial_topology_description([A])
    td = updated_topology_description(td, ServerDescription.from_hello(A, _hello(maxWireVersion=7)))
    assert not td.compatible and "requires at least 9 (MongoDB 4.4)" in td.compatibility_error
    with pytest.raises(ConfigurationError):
        td.check_compatible()


# -- initial description -----------------------------------------------------------------


def test_initial_topology_description() -> None:
    assert initial_topology_description([A, B]).topology_type == TopologyType.Unknown
    assert initial_topology_description([A], direct_connection=True).topology_type == TopologyType.Single
    td = initial_topology_description([A, B], replica_set_name="rs")
    assert td.topology_type == TopologyType.ReplicaSetNoPrimary and td.replica_set_name == "rs"
    lb = initial_topology_description([A], load_balanced=True)
    assert lb.servers[A].server_type == ServerType.LoadBalancer
    for kwargs in (
        {"direct_connection": True},
        {"load_balanced": True},
    ):
        with pytest.raises(ConfigurationError):
            initial_topology_description([A, B], **kwargs)
    with pytest.raises(ConfigurationError):
        initial_topology_description([A], load_balanced=True, replica_set_name="rs")


# -- error handling decisions ------------------------------------------------------------


def _rs_td():
    td = initial_topology_description([A], replica_set_name="rs")
    return updated_topology_description(td, _primary(A))


@pytest.mark.parametrize("code", [10107, 13435, 10058, 11602, 13436, 189])
def test_state_change_codes(code) -> None:
    d = error_handling_decision(_rs_td(), A, ErrorKind.COMMAND, code=code, max_wire_version=21)
    assert d.mark_unknown and d.request_check and not d.clear_pool and not d.stale


@pytest.mark.parametrize("code", [11600, 91])
def test_shutdown_codes_clear_pool(code) -> None:
    d = error_handling_decision(_rs_td(), A, ErrorKind.COMMAND, code=code, max_wire_version=21)
    assert d.mark_unknown and d.clear_pool and d.request_check


def test_pre_42_state_change_clears_pool() -> None:
    d = error_handling_decision(_rs_td(), A, ErrorKind.COMMAND, code=10107, max_wire_version=7)
    assert d.clear_pool


@pytest.mark.parametrize(
    "message, relevant",
    [("not master", True), ("node is recovering", True), ("not master or secondary", True), ("other", False)],
)
def test_state_change_messages_without_code(message, relevant) -> None:
    d = error_handling_decision(_rs_td(), A, ErrorKind.COMMAND, message=message, max_wire_version=21)
    assert d.mark_unknown is relevant


def test_code_wins_over_message() -> None:
    d = error_handling_decision(_rs_td(), A, ErrorKind.COMMAND, code=1, message="not master", max_wire_version=21)
    assert d.ignored


def test_network_errors_and_timeouts() -> None:
    td = _rs_td()
    net = error_handling_decision(td, A, ErrorKind.NETWORK)
    assert net.mark_unknown and net.clear_pool and net.cancel_check and not net.request_check
    assert error_handling_decision(td, A, ErrorKind.TIMEOUT).ignored
    before = error_handling_decision(td, A, ErrorKind.TIMEOUT, phase=ErrorPhase.BEFORE_HANDSHAKE)
    assert before.mark_unknown and before.clear_pool
    auth = error_handling_decision(td, A, ErrorKind.COMMAND, code=18, phase=ErrorPhase.BEFORE_HANDSHAKE)
    assert auth.mark_unknown and auth.clear_pool
    overloaded = error_handling_decision(
        td, A, ErrorKind.NETWORK, phase=ErrorPhase.BEFORE_HANDSHAKE, labels=["SystemOverloadedError"]
    )
    assert overloaded.ignored


def test_stale_errors() -> None:
    td = _rs_td()
    assert error_handling_decision(td, A, ErrorKind.NETWORK, connection_generation=0, pool_generation=1).stale
    pid = ObjectId()
    tv = {"processId": pid, "counter": 2}
    td2 = updated_topology_description(td, _primary(A, topologyVersion=tv))
    same = error_handling_decision(td2, A, ErrorKind.COMMAND, code=10107, topology_version=tv)
    assert same.stale
    newer = {"processId": pid, "counter": 3}
    d = error_handling_decision(td2, A, ErrorKind.COMMAND, code=10107, topology_version=newer)
    assert d.mark_unknown and d.topology_version == newer
    assert error_handling_decision(td, ("zz", 1), ErrorKind.NETWORK).ignored  # not in topology


def test_load_balanced_errors() -> None:
    td = initial_topology_description([A], load_balanced=True)
    sid = ObjectId()
    d = error_handling_decision(td, A, ErrorKind.NETWORK, service_id=sid)
    assert not d.mark_unknown and d.clear_pool and d.service_id == sid
    d = error_handling_decision(td, A, ErrorKind.COMMAND, code=91, service_id=sid, max_wire_version=21)
    assert not d.mark_unknown and d.clear_pool
    # Applying an Unknown description in load-balanced mode changes nothing.
    assert updated_topology_description(td, ServerDescription.unknown(A)) is td


def test_command_error_fields() -> None:
    assert command_error_fields({"ok": 1}) is None
    assert command_error_fields({"ok": 1, "writeErrors": [{"code": 10107}]}) is None
    assert command_error_fields({"ok": 0, "code": 91, "errmsg": "x"})[:2] == (91, "x")
    wce = {"ok": 1, "writeConcernError": {"code": 189, "errmsg": "stepped down"}}
    assert command_error_fields(wce)[:2] == (189, "stepped down")


def test_check_failure_decision() -> None:
    d = check_failure_decision(_primary(A), is_timeout=True)
    assert d.mark_unknown and d.clear_pool and d.interrupt_connections and d.check_immediately
    d = check_failure_decision(ServerDescription.unknown(A))
    assert not d.check_immediately and not d.interrupt_connections


# -- events --------------------------------------------------------------------------------


def test_events_for_new_primary_invalidate_old() -> None:
    tid = ObjectId()
    td = initial_topology_description([A, B, C], replica_set_name="rs")
    td = updated_topology_description(td, _primary(A, setVersion=1, electionId=ObjectId("0" * 23 + "1")))
    new = updated_topology_description(td, _primary(B, setVersion=1, electionId=ObjectId("0" * 23 + "2")))
    assert new.servers[A].server_type == ServerType.Unknown
    events = topology_events(td, new, tid, address=B)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ServerDescriptionChangedEvent",
        "ServerDescriptionChangedEvent",
        "TopologyDescriptionChangedEvent",
    ]
    assert events[0].server_address == B and events[1].server_address == A
    assert topology_events(new, new, tid) == []
    opening = opening_events(td, tid)
    assert isinstance(opening[0], monitoring.TopologyOpenedEvent)
    assert events[-1].new_description.server_descriptions()[B].server_type_name == "RSPrimary"


# -- selection -----------------------------------------------------------------------------


def _rs_full():
    td = initial_topology_description([A], replica_set_name="rs")
    td = updated_topology_description(td, _primary(A))
    td = updated_topology_description(td, _secondary(B, rtt=0.002, tags={"dc": "ny"}))
    return updated_topology_description(td, _secondary(C, rtt=0.1, tags={"dc": "sf"}))


def test_selection_basics() -> None:
    td = _rs_full()
    assert [s.address for s in select_servers(td, WRITABLE)] == [A]
    assert [s.address for s in select_servers(td, Primary())] == [A]
    assert [s.address for s in select_servers(td, Secondary())] == [B]
    assert {s.address for s in select_servers(td, Secondary(), 1000)} == {B, C}
    assert [s.address for s in select_servers(td, Secondary([{"dc": "sf"}]))] == [C]
    assert [s.address for s in select_servers(td, SecondaryPreferred([{"dc": "xx"}]))] == [A]
    assert [s.address for s in select_servers(td, Nearest(), deprioritized=[B])] == [A]
    assert [s.address for s in select_servers(td, address_selector(C))] == [C]
    assert td.has_writable_server() and td.has_readable_server(Secondary())
    lb = initial_topology_description([A], load_balanced=True)
    assert [s.address for s in select_servers(lb, WRITABLE)] == [A]
    assert select_servers(initial_topology_description([A, B]), Nearest()) == []


def test_choose_in_window() -> None:
    td = _rs_full()
    one = select_servers(td, WRITABLE)
    assert choose_in_window(one, {}) is one[0]
    both = select_servers(td, Nearest(), 1000)
    rng = random.Random(1)
    picks = {choose_in_window(both, {A: 0, B: 100, C: 100}, rng).address for _ in range(200)}
    assert A in picks
    with pytest.raises(ValueError):
        choose_in_window([], {})


# -- properties ----------------------------------------------------------------------------

_HOSTS = ["a:27017", "b:27017", "c:27017", "d:27017"]
_reply = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["primary", "secondary", "arbiter", "ghost", "mongos", "standalone"]),
            "hosts": st.lists(st.sampled_from(_HOSTS), min_size=1, max_size=4, unique=True),
            "setName": st.sampled_from(["rs", "rs", "other"]),
            "setVersion": st.integers(1, 3),
            "eid": st.integers(1, 3),
            "wire": st.sampled_from([9, 17, 21]),
        }
    ),
)


def _to_hello(r):
    if not r:
        return None
    kind = r["kind"]
    doc = _hello(maxWireVersion=r["wire"])
    if kind in ("primary", "secondary", "arbiter"):
        doc.update(setName=r["setName"], hosts=r["hosts"], setVersion=r["setVersion"])
        if kind == "primary":
            doc.update(isWritablePrimary=True, electionId=ObjectId(f"{r['eid']:024x}"))
        elif kind == "secondary":
            doc.update(secondary=True)
        else:
            doc.update(arbiterOnly=True)
    elif kind == "ghost":
        doc.update(isreplicaset=True)
    elif kind == "mongos":
        doc.update(msg="isdbgrid")
    return doc


@settings(max_examples=150, deadline=None)
@given(
    seeds=st.lists(st.sampled_from(_HOSTS), min_size=1, max_size=3, unique=True),
    rs=st.booleans(),
    steps=st.lists(st.tuples(st.sampled_from(_HOSTS), _reply), max_size=12),
)
def test_sdam_invariants(seeds, rs, steps) -> None:
    td = initial_topology_description(
        [parse_address(s) for s in seeds], replica_set_name="rs" if rs else None
    )
    for host, reply in steps:
        addr = parse_address(host)
        hello = _to_hello(reply)
        sd = ServerDescription.unknown(addr) if hello is None else ServerDescription.from_hello(addr, hello, 0.0)
        before = td
        td = updated_topology_description(td, sd)
        assert isinstance(td, TopologyDescription)
        if addr not in before.servers:
            assert td is before
        primaries = [s for s in td.servers.values() if s.server_type == ServerType.RSPrimary]
        assert len(primaries) <= 1
        if td.topology_type == TopologyType.ReplicaSetWithPrimary:
            assert primaries
        if td.topology_type == TopologyType.ReplicaSetNoPrimary:
            assert not primaries
        if td.topology_type == TopologyType.Sharded:
            # The server just checked is a mongos, Unknown, or removed (SDAM: a non-mongos is
            # removed from a Sharded topology when *it* is updated; other servers stay as they were).
            if addr in td.servers:
                assert td.servers[addr].server_type in (ServerType.Unknown, ServerType.Mongos)
        if td.topology_type == TopologyType.Single:
            assert len(td.servers) == 1
        if rs:
            assert td.replica_set_name == "rs"
            assert td.topology_type in (TopologyType.ReplicaSetNoPrimary, TopologyType.ReplicaSetWithPrimary)
        for a, s in td.servers.items():
            assert s.address == a

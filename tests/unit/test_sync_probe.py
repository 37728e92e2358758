"""amongo.topology.sync_probe: the blocking discovery behind the client's topology properties
(fake checks; one real check against a local socket that never answers / refuses)."""
from __future__ import annotations

import socket
import time
from typing import Any, Dict, List, Tuple

import bson
import pytest
from pymongo.errors import AutoReconnect, ConfigurationError, NetworkTimeout, OperationFailure
from pymongo.server_api import ServerApi

from amongo.topology import sdam
from amongo.topology.description import ServerType, TopologyDescription
from amongo.topology.sync_probe import (
    ProbeOptions,
    check_server,
    hello_command,
    resolve_srv_sync,
    run_coroutine_sync,
    run_discovery,
)
from amongo.wire import message as _msg

A = ("a.example", 27017)
B = ("b.example", 27017)
C = ("c.example", 27017)


def _rs_hello(me: Tuple[str, int], primary: bool) -> Dict[str, Any]:
    return {
        "ok": 1, "setName": "rs", "hosts": [f"{h}:{p}" for h, p in (A, B, C)],
        "isWritablePrimary": primary, "secondary": not primary, "minWireVersion": 0,
        "maxWireVersion": 21, "me": f"{me[0]}:{me[1]}", "setVersion": 1,
        **({"electionId": bson.ObjectId(), "primary": f"{me[0]}:{me[1]}"} if primary else {}),
    }


class Harness:
    def __init__(self, seeds: List[Tuple[str, int]], replies: Dict[Any, Any]) -> None:
        self.td: TopologyDescription = sdam.initial_topology_description(seeds, replica_set_name="rs")
        self.replies = replies
        self.checked: List[Any] = []
        self.failures: List[Any] = []

    def check(self, address: Any, options: Any, timeout: float) -> Any:
        self.checked.append(address)
        reply = self.replies.get(address)
        if isinstance(reply, BaseException):
            raise reply
        if reply is None:
            raise AutoReconnect(f"{address[0]}:{address[1]}: refused")
        return reply, 0.001

    def run(self, deadline: float, recheck: float = 0.05) -> bool:
        def on_success(sd: Any) -> None:
            self.td = sdam.updated_topology_description(self.td, sd)

        def on_failure(address: Any, previous: Any, error: BaseException) -> None:
            from amongo.topology.description import ServerDescription

            self.failures.append((address, error))
            self.td = sdam.updated_topology_description(self.td, ServerDescription.unknown(address, error))

        return run_discovery(
            description=lambda: self.td,
            done=lambda: self.td.has_writable_server(),
            on_success=on_success,
            on_failure=on_failure,
            options=ProbeOptions(connect_timeout=0.2),
            deadline=deadline,
            recheck_interval=recheck,
            check=self.check,
        )


def test_discovers_primary_through_learned_hosts() -> None:
    h = Harness([B], {B: _rs_hello(B, False), A: _rs_hello(A, True), C: _rs_hello(C, False)})
    assert h.run(time.monotonic() + 2)
    # B taught A and C; the search stops as soon as a primary is known.
    assert h.checked == [B, A]
    assert h.td.servers[A].server_type == ServerType.RSPrimary


def test_stops_at_deadline_and_reports_failures() -> None:
    h = Harness([A], {})
    start = time.monotonic()
    assert not h.run(start + 0.3, recheck=0.1)
    elapsed = time.monotonic() - start
    assert 0.25 < elapsed < 1.0
    # Rechecked once per interval, not in a busy loop.
    assert 2 <= len(h.checked) <= 5
    assert all(isinstance(e, AutoReconnect) for _, e in h.failures)


def test_later_rounds_recheck_known_servers() -> None:
    # No primary yet: B and C are secondaries; C becomes primary on its second check.
    replies: Dict[Any, Any] = {A: AutoReconnect("down"), B: _rs_hello(B, False), C: _rs_hello(C, False)}
    h = Harness([B], replies)
    orig = h.check

    def check(address: Any, options: Any, timeout: float) -> Any:
        if address == C and h.checked.count(C) >= 1:
            replies[C] = _rs_hello(C, True)
        return orig(address, options, timeout)

    h.check = check  # type: ignore[method-assign]
    assert h.run(time.monotonic() + 2)
    assert h.checked.count(C) == 2 and h.checked.count(B) == 2


def test_command_error_is_a_failure() -> None:
    h = Harness([A], {A: OperationFailure("down", 91)})
    assert not h.run(time.monotonic() + 0.15, recheck=0.1)
    assert isinstance(h.failures[0][1], OperationFailure)


def test_hello_command() -> None:
    cmd = hello_command(ProbeOptions(metadata={"driver": {"name": "amongo"}}))
    assert list(cmd)[:2] == ["isMaster", "helloOk"] and cmd["$db"] == "admin"
    assert cmd["client"] == {"driver": {"name": "amongo"}}
    cmd = hello_command(ProbeOptions(server_api=ServerApi("1", strict=True)))
    assert next(iter(cmd)) == "hello" and cmd["apiVersion"] == "1" and cmd["apiStrict"] is True
    assert "apiDeprecationErrors" not in cmd
    assert hello_command(ProbeOptions(load_balanced=True))["loadBalanced"] is True


def test_check_server_refused_and_timeout() -> None:
    # Refused: a port nobody listens on.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(AutoReconnect) as info:
        check_server(("127.0.0.1", port), ProbeOptions(), 0.5)
    assert not isinstance(info.value, NetworkTimeout)
    # A listener that never replies: the read times out.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        start = time.monotonic()
        with pytest.raises(NetworkTimeout):
            check_server(listener.getsockname(), ProbeOptions(), 0.2)
        assert time.monotonic() - start < 1.0
    finally:
        listener.close()


def test_check_server_reads_a_reply() -> None:
    # A single-shot fake server written with the wire helpers (a test thread; amongo itself
    # uses none).
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    reply = bson.encode({"ok": 1, "isWritablePrimary": True, "maxWireVersion": 21})

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            header = conn.recv(16)
            length, rid, _rto, _op = _msg.parse_header(header)
            body = b""
            while len(body) < length - 16:
                body += conn.recv(length - 16 - len(body))
            _flags, doc = _msg.unpack_reply(_op, header, body)
            assert "isMaster" in bson.decode(doc)
            conn.sendall(_msg.encode_op_msg(1, reply, response_to=rid))

    t = threading.Thread(target=serve)
    t.start()
    try:
        doc, rtt = check_server(listener.getsockname(), ProbeOptions(), 2.0)
    finally:
        t.join(5)
        listener.close()
    assert doc["isWritablePrimary"] is True and rtt >= 0


def test_run_coroutine_sync() -> None:
    async def immediate() -> int:
        return 7

    assert run_coroutine_sync(immediate()) == 7

    async def suspends() -> None:
        import asyncio

        await asyncio.sleep(0)

    with pytest.raises(ConfigurationError):
        run_coroutine_sync(suspends())


class _FakeRR:
    def __init__(self, target: str = "", port: int = 0, strings: Any = None) -> None:
        self.port = port
        self.strings = strings or []
        self._target = target

    @property
    def target(self) -> Any:
        class T:
            def __init__(self, t: str) -> None:
                self.t = t

            def to_text(self, omit_final_dot: bool = False) -> str:
                return self.t

        return T(self._target)


class _FakeDns:
    def __init__(self) -> None:
        self.queries: List[Any] = []

    def resolve(self, name: str, rdtype: str, **kw: Any) -> Any:
        self.queries.append((name, rdtype, kw.get("lifetime")))
        if rdtype == "SRV":
            return [_FakeRR("h1.test.example.com.", 27017), _FakeRR("h2.test.example.com", 27018)]
        return [_FakeRR(strings=[b"authSource=thedb"])]


def test_resolve_srv_sync() -> None:
    dns = _FakeDns()
    hosts, txt = resolve_srv_sync("test.example.com", lifetime=1.5, resolver=dns)
    assert hosts == [("h1.test.example.com", 27017), ("h2.test.example.com", 27018)]
    assert txt == {"authSource": "thedb"}
    assert dns.queries == [("_mongodb._tcp.test.example.com", "SRV", 1.5), ("test.example.com", "TXT", 1.5)]

    class Evil(_FakeDns):
        def resolve(self, name: str, rdtype: str, **kw: Any) -> Any:
            if rdtype == "SRV":
                return [_FakeRR("evil.other.com", 27017)]
            return []

    with pytest.raises(ConfigurationError):
        resolve_srv_sync("test.example.com", resolver=Evil())

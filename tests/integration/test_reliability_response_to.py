"""Defect 1 of issue 11: a reply must answer its request (``responseTo`` == requestID).

A fake server on 127.0.0.1 sends stale, duplicated or foreign frames. Each mismatch is a
ProtocolError (PyMongo's message) and closes the connection, which is never handed out
again; the replies of an exhaust / moreToCome stream keep their own rule (not checked).
"""
from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Dict, List

import bson
import pytest
from pymongo.errors import ProtocolError

from amongo.connection import Connection, ConnectionOptions
from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.topology import sync_probe
from amongo.topology.description import ServerType
from amongo.wire.message import MORE_TO_COME, decode_op_msg

from ._rel_server import HELLO, FakeServer, Peer, is_hello, reply_frame


async def _open(srv: FakeServer) -> Connection:
    return await Connection.open(srv.address, ConnectionOptions(connect_timeout=5.0))


async def test_stale_frame_is_a_protocol_error_and_closes() -> None:
    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "ping" in cmd:
            # a stale reply (answering an earlier request) arrives first
            await peer.send(reply_frame(rid - 1, {"ok": 1.0, "stale": True}) + reply_frame(rid, {"ok": 1.0}))
            return None
        return False

    async with FakeServer(handler) as srv:
        conn = await _open(srv)
        with pytest.raises(ProtocolError, match=r"Got response id \d+ but expected \d+"):
            await conn.command("admin", {"ping": 1})
        assert conn.closed


async def test_duplicated_frame_never_shifts_a_pooled_connection() -> None:
    """``find_one({_id: k})`` must never return document k-1: the duplicated reply of the
    first find is detected on the next request and that connection is thrown away."""
    duplicated: List[int] = []

    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "find" in cmd:
            k = cmd["filter"]["_id"]
            frame = reply_frame(rid, {"cursor": {"id": 0, "ns": "db.c", "firstBatch": [{"_id": k}]}, "ok": 1.0})
            if not duplicated:
                duplicated.append(k)
                frame += frame  # one reply, twice
            await peer.send(frame)
            return None
        return False

    async with FakeServer(handler) as srv:
        client = AsyncIOMotorClient(srv.uri, maxPoolSize=1, serverSelectionTimeoutMS=5000, retryReads=True)
        try:
            coll = client.db.c
            assert await coll.find_one({"_id": 1}) == {"_id": 1}
            outcomes = []
            for k in range(2, 8):
                try:
                    doc = await coll.find_one({"_id": k})
                except ProtocolError:
                    outcomes.append("error")
                else:
                    assert doc == {"_id": k}  # never the previous document
                    outcomes.append("ok")
            assert outcomes[0] == "error" and outcomes[1:] == ["ok"] * 5
            pool = client._topology.servers[srv.address].pool
            assert pool.total_connections == 1  # the shifted connection was discarded
        finally:
            client.close()


@pytest.mark.parametrize("matching", [False, True])
async def test_drained_reply_is_checked(matching: bool) -> None:
    """A request cancelled before its reply: the reply the pool drains later must answer it
    (a foreign one closes the connection, the right one keeps it)."""
    gate = asyncio.Event()

    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "slow" in cmd:
            await gate.wait()
            await peer.send(reply_frame(rid if matching else rid + 7, {"ok": 1.0}))
            return None
        return False

    async with FakeServer(handler) as srv:
        conn = await _open(srv)
        task = asyncio.ensure_future(conn.command("admin", {"slow": 1}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert conn.pending_reply
        gate.set()
        if matching:
            await asyncio.wait_for(conn.drain(), 5)
            assert not conn.closed and not conn.pending_reply
            assert (await conn.command("admin", {"ping": 1}))["ok"] == 1.0
            conn.close()
        else:
            with pytest.raises(ProtocolError, match="Got response id"):
                await asyncio.wait_for(conn.drain(), 5)
            assert conn.closed


async def test_exhaust_stream_first_reply_checked_later_replies_not() -> None:
    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if cmd.get("getMore") == 1:
            # first reply answers the request; the next answers the server's previous reply
            await peer.send(
                reply_frame(rid, {"n": 1, "ok": 1.0}, flags=MORE_TO_COME, request_id=50)
                + reply_frame(50, {"n": 2, "ok": 1.0}, request_id=51)
            )
            return None
        if cmd.get("getMore") == 2:
            await peer.send(reply_frame(rid + 1, {"n": 1, "ok": 1.0}, flags=MORE_TO_COME))
            return None
        return False

    async with FakeServer(handler) as srv:
        conn = await _open(srv)
        assert (await conn.command("db", {"getMore": 1, "collection": "c"}, exhaust_allowed=True))["n"] == 1
        assert (await conn.read_more())["n"] == 2
        assert not conn.pending_reply and not conn.closed
        with pytest.raises(ProtocolError):
            await conn.command("db", {"getMore": 2, "collection": "c"}, exhaust_allowed=True)
        assert conn.closed


async def test_monitor_survives_a_mismatched_hello() -> None:
    """The monitor's hello answered with a foreign responseTo: the check fails (server
    Unknown, ProtocolError), the monitor goes on, and the next good reply makes it known."""
    bad = {"n": 0}

    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if is_hello(cmd) and bad["n"] < 1 and peer.index == 0:
            bad["n"] += 1
            await peer.send(reply_frame(rid ^ 0x55, dict(HELLO)))
            return None
        return False

    async with FakeServer(handler) as srv:
        client = AsyncIOMotorClient(srv.uri, serverSelectionTimeoutMS=5000, heartbeatFrequencyMS=500)
        try:
            topology = client._topology
            for _ in range(200):
                sd = topology.description.servers.get(srv.address)
                if sd is not None and sd.error is not None:
                    break
                await asyncio.sleep(0.01)
            assert isinstance(sd.error, ProtocolError)
            assert (await client.admin.command("ping"))["ok"] == 1.0
            assert topology.description.servers[srv.address].server_type == ServerType.Standalone
            monitor = topology.servers[srv.address].monitor
            assert monitor is not None and not monitor._task.done()
        finally:
            client.close()


def _blocking_server(response_to_delta: int) -> socket.socket:
    """A one-shot blocking hello server in a thread (the sync probe blocks the loop)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def serve() -> None:
        conn, _ = lsock.accept()
        with conn:
            data = b""
            while len(data) < 4 or len(data) < int.from_bytes(data[:4], "little"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            rid = int.from_bytes(data[4:8], "little")
            _flags, section0, _ = decode_op_msg(data)
            assert is_hello(bson.decode(section0))
            conn.sendall(reply_frame(rid + response_to_delta, dict(HELLO)))

    threading.Thread(target=serve, daemon=True).start()
    return lsock


@pytest.mark.parametrize("delta", [1, 0])
def test_sync_probe_checks_response_to(delta: int) -> None:
    lsock = _blocking_server(delta)
    try:
        address = lsock.getsockname()[:2]
        opts = sync_probe.ProbeOptions(connect_timeout=5.0)
        if delta:
            with pytest.raises(ProtocolError, match="Got response id"):
                sync_probe.check_server(address, opts, 5.0)
        else:
            reply, _rtt = sync_probe.check_server(address, opts, 5.0)
            assert reply["ok"] == 1.0
    finally:
        lsock.close()


BAD_HOSTS = ["a" * 64 + ".example", "..", "a\x00b"]


@pytest.mark.parametrize("host", BAD_HOSTS, ids=["label-too-long", "empty-labels", "nul"])
async def test_unresolvable_host_name_is_auto_reconnect(host: str) -> None:
    """(defect 7) A host name the resolver refuses (a server's hosts list can name one) is
    a network error for the pool and the blocking probe, never a UnicodeError/ValueError."""
    from pymongo.errors import AutoReconnect

    with pytest.raises(AutoReconnect, match="invalid host name"):
        await Connection.open((host, 27017), ConnectionOptions(connect_timeout=2.0))
    with pytest.raises(AutoReconnect):
        sync_probe.check_server((host, 27017), sync_probe.ProbeOptions(connect_timeout=2.0), 2.0)

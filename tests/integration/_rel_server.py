"""A scriptable fake MongoDB server on 127.0.0.1 for the reliability regression tests.

It completes handshakes like a standalone server (or whatever ``hello`` document the test
sets) and hands every command to the test's handler, which decides what bytes go back: a
correct reply, a stale or duplicated frame, a hello with odd field types, garbage SCRAM
messages... Everything goes through real sockets.
"""
from __future__ import annotations

import asyncio
import struct
from typing import Any, Awaitable, Callable, Dict, List, Optional

import bson
from pymongo import monitoring

from amongo.wire.message import decode_op_msg

from .test_framing import HELLO  # the standalone hello the framing tests use
from .test_framing import reply_frame as _framing_reply

__all__ = ["HELLO", "reply_frame", "is_hello", "Peer", "FakeServer", "RecordingListener"]


def reply_frame(response_to: int, doc: Dict[str, Any], *, flags: int = 0, request_id: int = 1) -> bytes:
    """An OP_MSG reply frame answering *response_to*."""
    return _framing_reply(response_to, doc, flags=flags, reply_id=request_id)


def is_hello(cmd: Dict[str, Any]) -> bool:
    return "isMaster" in cmd or "hello" in cmd or "ismaster" in cmd


class Peer:
    """One accepted connection, as the handler sees it."""

    def __init__(self, server: "FakeServer", index: int, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.index = index
        self.writer = writer
        self.commands: List[Dict[str, Any]] = []
        #: the client closed (or reset) this connection
        self.closed = False
        #: set by the handler: e.g. whether this is a monitoring connection
        self.state: Dict[str, Any] = {}

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, response_to: int, doc: Dict[str, Any], **kw: Any) -> None:
        await self.send(reply_frame(response_to, doc, **kw))


#: handler(peer, request_id, command) -> None; returning False hands the command to the
#: default behaviour (hello answered with ``server.hello``, everything else ``{ok: 1}``).
Handler = Callable[[Peer, int, Dict[str, Any]], Awaitable[Optional[bool]]]


class RecordingListener(
    monitoring.CommandListener,
    monitoring.ServerListener,
    monitoring.ServerHeartbeatListener,
    monitoring.TopologyListener,
    monitoring.ConnectionPoolListener,
):
    """Records every event of every kind in :attr:`events`."""

    def __init__(self) -> None:
        self.events: List[Any] = []

    def __getattribute__(self, name: str) -> Any:
        if name in ("events", "_record") or name.startswith("__"):
            return object.__getattribute__(self, name)
        return object.__getattribute__(self, "_record")

    def _record(self, event: Any) -> None:
        self.events.append(event)


class FakeServer:
    """``async with FakeServer(handler) as srv:`` ... ``srv.uri``, ``srv.address``."""

    def __init__(self, handler: Optional[Handler] = None, hello: Optional[Dict[str, Any]] = None) -> None:
        self.handler = handler
        self.hello: Dict[str, Any] = {**HELLO, **(hello or {})}
        self.peers: List[Peer] = []
        self._server: Optional[asyncio.AbstractServer] = None
        self._tasks: List["asyncio.Task[Any]"] = []

    async def __aenter__(self) -> "FakeServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for peer in self.peers:
            peer.writer.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    @property
    def address(self) -> tuple:
        assert self._server is not None
        return tuple(self._server.sockets[0].getsockname()[:2])

    @property
    def uri(self) -> str:
        host, port = self.address
        return f"mongodb://{host}:{port}/"

    def commands(self, name: str) -> List[Dict[str, Any]]:
        return [c for p in self.peers for c in p.commands if name in c]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        peer = Peer(self, len(self.peers), writer)
        self.peers.append(peer)
        try:
            while True:
                header = await reader.readexactly(16)
                length, request_id, _rto, _op = struct.unpack("<iiii", header)
                body = await reader.readexactly(length - 16)
                flags, section0, _seqs = decode_op_msg(header + body)
                cmd = bson.decode(section0)
                peer.commands.append(cmd)
                handled = None
                if self.handler is not None:
                    handled = await self.handler(peer, request_id, cmd)
                if handled is False or self.handler is None:
                    if flags & 2:  # moreToCome: no reply
                        continue
                    if is_hello(cmd):
                        await peer.reply(request_id, dict(self.hello))
                    else:
                        await peer.reply(request_id, {"ok": 1.0})
        except (asyncio.IncompleteReadError, ConnectionError):
            peer.closed = True
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()

"""Shared pieces of the fuzz campaigns: a scriptable fake MongoDB server on a real socket,
hypothesis settings, the per-target case counters and a bounded runner.

The fake server frames messages with the test proxy's own code (``tests/proxy.py``), not
amongo's, so what amongo receives is built independently of what it parses.

Campaign size: ``AMONGO_FUZZ_EXAMPLES`` (a multiplier, default 1 = the bounded campaign of
``make test``; ``make fuzz`` runs a larger one). Each target's base number of examples is
scaled by it. Cases are deterministic (``derandomize``) unless ``AMONGO_FUZZ_RANDOM=1``.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import struct
import time
from collections import Counter
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

import bson
from hypothesis import HealthCheck, Phase, settings
from pymongo.errors import PyMongoError

from integration._rel_server import HELLO as _REL_HELLO
from proxy import OP_COMPRESSED, OP_MSG, Frame, build_msg, command_of, decompress, read_frame

#: cases tried per target (printed at the end of the session by tests/fuzz/conftest.py)
CASES: Counter = Counter()
#: the exceptions a user may see from an operation against a misbehaving server
OP_ERRORS = (PyMongoError,)

SCALE = float(os.environ.get("AMONGO_FUZZ_EXAMPLES", "1"))
RANDOM = os.environ.get("AMONGO_FUZZ_RANDOM") == "1"
#: per-case wall-clock bound (seconds): a case that takes longer is a hang
CASE_BOUND = float(os.environ.get("AMONGO_FUZZ_CASE_BOUND", "20"))


def fuzz_settings(base_examples: int) -> settings:
    """Hypothesis settings for a target of *base_examples* cases in the bounded campaign."""
    return settings(
        max_examples=max(1, int(base_examples * SCALE)),
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        print_blob=True,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )


#: a standalone's hello (the reliability tests' fake server answers the same)
HELLO: Dict[str, Any] = dict(_REL_HELLO)

_ids = itertools.count(0x7000000)


def reply(request_id: int, doc: Dict[str, Any], flags: int = 0) -> bytes:
    return Frame(next(_ids), request_id, OP_MSG, build_msg(doc, flags)).to_bytes()


def good_find_reply(doc: Dict[str, Any]) -> Dict[str, Any]:
    """The reply to ``find`` of the fake server: the document ``{_id: filter._id}``."""
    k = (doc.get("filter") or {}).get("_id")
    batch = [] if k is None else [{"_id": k, "v": f"value-{k}"}]
    return {"cursor": {"firstBatch": batch, "id": 0, "ns": f"{doc.get('$db')}.{doc.get('find')}"}, "ok": 1.0}


Handler = Callable[["FakeConn", Frame, str, Dict[str, Any]], Awaitable[None]]


class FakeConn:
    def __init__(self, server: "FakeServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.requests = 0

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, frame: Frame, doc: Dict[str, Any]) -> None:
        await self.send(reply(frame.request_id, doc))

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass


class FakeServer:
    """A MongoDB-ish server on 127.0.0.1: answers hello with :attr:`hello` (a document, or a
    callable ``(conn, request) -> document | bytes``), ``find`` with ``{_id: filter._id}`` and
    everything else with ``{ok: 1}``; :attr:`handlers` (command name, lower case -> coroutine
    ``(conn, frame, name, doc)``) override that per command, :attr:`once` for one request."""

    def __init__(self) -> None:
        self.hello: Any = dict(HELLO)
        self.handlers: Dict[str, Handler] = {}
        self.once: Dict[str, Handler] = {}
        self.conns: set = set()
        self.served: Counter = Counter()
        self._server: Optional[asyncio.base_events.Server] = None
        self.port = 0

    @property
    def address(self) -> Tuple[str, int]:
        return ("127.0.0.1", self.port)

    def uri(self, **options: Any) -> str:
        opts = {"directConnection": "true", **options}
        return f"mongodb://127.0.0.1:{self.port}/?" + "&".join(f"{k}={v}" for k, v in opts.items())

    async def start(self) -> "FakeServer":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for c in list(self.conns):
            c.close()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except asyncio.TimeoutError:
                pass

    def drop_connections(self) -> None:
        for c in list(self.conns):
            c.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = FakeConn(self, reader, writer)
        self.conns.add(conn)
        try:
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    return
                conn.requests += 1
                if frame.opcode == OP_COMPRESSED:
                    opcode, _size, cid = struct.unpack_from("<iiB", frame.body, 0)
                    frame = Frame(frame.request_id, frame.response_to, opcode, decompress(cid, frame.body[9:]))
                name, doc = command_of(frame.opcode, frame.body)
                key = name.lower()
                self.served[key] += 1
                handler = self.once.pop(key, None) or self.handlers.get(key)
                if handler is not None:
                    await handler(conn, frame, name, doc)
                elif key in ("hello", "ismaster"):
                    h = self.hello(conn, doc) if callable(self.hello) else self.hello
                    if isinstance(h, (bytes, bytearray)):
                        await conn.send(Frame(next(_ids), frame.request_id, OP_MSG,
                                              struct.pack("<I", 0) + b"\x00" + bytes(h)).to_bytes())
                    else:
                        await conn.reply(frame, h)
                elif key == "find":
                    await conn.reply(frame, good_find_reply(doc))
                else:
                    await conn.reply(frame, {"ok": 1.0})
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            conn.close()
            self.conns.discard(conn)


class LoopRunner:
    """One event loop for a whole module's cases (hypothesis calls the test synchronously)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Awaitable[Any], bound: float = CASE_BOUND) -> Any:
        """Run *coro*; more than *bound* seconds is a hang (AssertionError)."""
        async def bounded() -> Any:
            try:
                return await asyncio.wait_for(coro, bound)
            except asyncio.TimeoutError:
                raise AssertionError(f"case hung for more than {bound}s") from None

        return self.loop.run_until_complete(bounded())

    def close(self) -> None:
        loop = self.loop
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


class StallWatch:
    """Measures the longest gap between ticks of a task that wakes every 10 ms: how long the
    event loop was blocked while it ran."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._task: Optional[asyncio.Task] = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            last = now

    async def __aenter__(self) -> "StallWatch":
        self._task = asyncio.ensure_future(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


def assert_user_error(exc: BaseException, allowed: tuple = OP_ERRORS) -> None:
    """*exc* must be one of the documented types (re-raised otherwise, with its traceback)."""
    if not isinstance(exc, allowed):
        raise AssertionError(f"undocumented exception {type(exc).__name__}: {exc!r}") from exc


def raw_doc(elements: list) -> bytes:
    """A BSON document from ``(name, value)`` pairs in order, duplicates kept."""
    body = b"".join(bson.encode({name: value})[4:-1] for name, value in elements)
    return struct.pack("<i", len(body) + 5) + body + b"\x00"

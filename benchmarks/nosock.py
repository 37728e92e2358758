"""Client work per op with no socket and no server:
``python -m benchmarks.nosock DRIVER WORKLOAD N [CONCURRENCY]``.

Connects *DRIVER* (``amongo``: the Motor API, ``amongo-async``: ``amongo.AsyncMongoClient``,
or ``raw``) to a replay server, runs warm-up ops there with *CONCURRENCY* tasks (default 1;
so the pool holds the connections the measured ops use), then replaces each pooled
connection's transport with a fake one that answers every request on the next loop iteration
with a canned reply (the synthetic replay's shape: a tweet for find_one, ``n: 1`` for
insert_one, both with ``$clusterTime``/``operationTime``), runs 300 more warm-up ops and *N*
ops (spread over *CONCURRENCY* tasks, each running N/CONCURRENCY ops in turn, as
``benchmarks.inproc --concurrency`` does) and prints the CPU per op. With no kernel and no server in the measurement, it is the driver's own
work; under callgrind it gives instructions per op, which on a shared machine are the only
figures reproducible to ~0.5 % (CPU time moves by tens of percent)::

    ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
             python -m benchmarks.nosock "$1" "$2" "$3" 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*'; }
    echo $(( ($(ir amongo find_one 2200) - $(ir amongo find_one 200)) / 2000 ))   # instructions/op
    # 1000 tasks (the two APIs side by side: issue 17's amongo-async question)
    for d in amongo amongo-async; do
      echo $d $(( ($(ir $d find_one 22000 1000) - $(ir $d find_one 2000 1000)) / 20000 )); done

(Another tree's amongo: ``PYTHONPATH=/other/tree``; the fake transport reads the connection's
private ``_transport``/``_protocol`` and the pool's ``_idle``, as of 2026-11.)
"""
from __future__ import annotations

import asyncio
import struct
import sys
import time
from typing import Any, Callable, Dict

import bson
from bson import Int64, Timestamp

from . import data
from .servers import ReplayProcess
from .workloads import DB, run_ops

_CT = {"clusterTime": Timestamp(1795558055, 4), "signature": {"hash": b"\x00" * 20, "keyId": Int64(0)}}


def _frame(doc: Dict[str, Any]) -> bytes:
    b = bson.encode(doc)
    return struct.pack("<iiiiIB", 21 + len(b), 0, 0, 2013, 0, 0) + b


_REPLIES = {
    b"find": _frame({"cursor": {"firstBatch": [dict(data.load("tweet"), _id=5)], "id": Int64(0),
                                "ns": f"{DB}.bench_tweet"},
                     "ok": 1.0, "$clusterTime": _CT, "operationTime": _CT["clusterTime"]}),
    b"inse": _frame({"n": 1, "ok": 1.0, "$clusterTime": _CT, "operationTime": _CT["clusterTime"]}),
}


class FakeTransport:
    """Answers each OP_MSG written (find / insert) with its canned reply, responseTo patched."""

    def __init__(self, real: Any, proto: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.real, self.proto, self.loop = real, proto, loop

    def write(self, data: Any) -> None:
        data = bytes(data)
        body = _REPLIES[data[26:30]]  # (the command name's first bytes, after its type and key)
        self.loop.call_soon(self._deliver, body[:8] + data[4:8] + body[12:])

    def _deliver(self, reply: bytes) -> None:
        buf = self.proto.get_buffer(len(reply))
        buf[:len(reply)] = reply
        self.proto.buffer_updated(len(reply))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def _amongo(uri: str, workload: str, api: str, concurrency: int) -> Callable[[int], Any]:
    if api == "amongo-async":
        from amongo import AsyncMongoClient as client_cls
    else:
        from amongo.motor_asyncio import AsyncIOMotorClient as client_cls  # type: ignore[assignment]

    client: Any = client_cls(uri, maxPoolSize=100)
    coll = client[DB].bench_tweet
    ic = client[DB].bench_insert_one
    small = data.load("small_doc")
    if workload == "find_one":
        op: Callable[[int], Any] = lambda i: coll.find_one({"_id": i % 100})  # noqa: E731
    else:
        op = lambda i: ic.insert_one(dict(small))  # noqa: E731
    await run_ops(op, max(concurrency, 1) * 2, concurrency)  # (against the replay server: connections)
    loop = asyncio.get_running_loop()
    for server in client._core.topology.servers.values():
        for conn in list(server.pool._idle):
            conn._transport = FakeTransport(conn._transport, conn._protocol, loop)
    return op


async def _raw(uri: str, workload: str, concurrency: int) -> Callable[[int], Any]:
    from .drivers.raw import RawAdapter

    a = RawAdapter()
    await a.connect(uri, 100)
    small = data.load("small_doc")
    if workload == "find_one":
        op: Callable[[int], Any] = lambda i: a.find_one("bench_tweet", {"_id": i % 100})  # noqa: E731
    else:
        op = lambda i: a.insert_one("bench_insert_one", dict(small))  # noqa: E731
    await run_ops(op, max(concurrency, 1) * 2, concurrency)
    loop = asyncio.get_running_loop()
    for c in a._all:
        c.transport = FakeTransport(c.transport, c.proto, loop)
    return op


async def _run(uri: str, driver: str, workload: str, n: int, concurrency: int) -> float:
    if driver == "raw":
        op = await _raw(uri, workload, concurrency)
    else:
        op = await _amongo(uri, workload, driver, concurrency)
    await run_ops(op, max(300, concurrency), concurrency)
    c0 = time.process_time()
    done = await run_ops(op, n, concurrency)
    return (time.process_time() - c0) / max(done, 1)


def main() -> int:
    driver, workload, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    if driver not in ("amongo", "amongo-async", "raw"):
        raise SystemExit(f"unknown driver {driver!r} (amongo, amongo-async, raw)")
    with ReplayProcess(None) as rp:
        per_op = asyncio.run(_run(rp.uri, driver, workload, n, concurrency))
    print(f"{driver} {workload} c={concurrency}: {per_op * 1e6:.2f} us CPU/op (no socket)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

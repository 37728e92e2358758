"""Cursor fetch modes against a server with real per-batch latency (SecantusDB).

``python -m benchmarks.cursors [--docs 10000] [--batch-size 1000] [--rounds 9] [--uri URI]``

Reads *docs* small documents with ``find({}, batch_size=...)`` in four modes — plain getMores,
``read_ahead()``, ``cursor_type=CursorType.EXHAUST`` (one getMore, the server streams the
rest with moreToCome) and both — and two ways of consuming: ``to_list()`` and ``async for``
with some work per document (``bson.encode`` of it, standing in for the application's
processing). Rounds are interleaved (each round runs every mode once, in a rotated order);
the table shows the median wall time and client CPU time per find, and each mode's wall
time relative to plain getMores. Starts its own SecantusDB unless ``--uri`` is given.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import bson
from pymongo import CursorType

import amongo

MODES: Tuple[str, ...] = ("getMore", "read_ahead", "exhaust", "exhaust+read_ahead")


def _cursor(coll: Any, mode: str, batch_size: int) -> Any:
    kwargs: Dict[str, Any] = {"batch_size": batch_size}
    if mode.startswith("exhaust"):
        kwargs["cursor_type"] = CursorType.EXHAUST
    cursor = coll.find({}, **kwargs)
    if mode.endswith("read_ahead"):
        cursor.read_ahead()
    return cursor


async def _to_list(coll: Any, mode: str, batch_size: int) -> int:
    return len(await _cursor(coll, mode, batch_size).to_list(None))


async def _process(coll: Any, mode: str, batch_size: int) -> int:
    n = 0
    encode = bson.encode
    async for doc in _cursor(coll, mode, batch_size):
        encode(doc)  # (the application's work per document)
        n += 1
    return n


CONSUMERS: Dict[str, Callable[[Any, str, int], Any]] = {"to_list": _to_list, "async for + work": _process}


async def run(uri: str, docs: int, batch_size: int, rounds: int) -> List[Tuple[str, str, float, float]]:
    client: Any = amongo.AsyncMongoClient(uri)
    try:
        coll = client.amongo_bench.cursors
        await coll.drop()
        for start in range(0, docs, 5000):
            await coll.insert_many([{"_id": i, "x": i, "s": "abcdefgh"} for i in range(start, min(docs, start + 5000))])
        times: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
        for consumer_name, consume in CONSUMERS.items():
            for mode in MODES:  # warm-up
                assert await consume(coll, mode, batch_size) == docs
            for r in range(rounds):
                order = MODES[r % len(MODES):] + MODES[:r % len(MODES)]
                for mode in order:
                    wall0, cpu0 = time.perf_counter(), time.process_time()
                    n = await consume(coll, mode, batch_size)
                    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                    assert n == docs
                    times.setdefault((consumer_name, mode), []).append((wall, cpu))
        rows = []
        for (consumer_name, mode), samples in times.items():
            rows.append((consumer_name, mode, statistics.median(s[0] for s in samples),
                         statistics.median(s[1] for s in samples)))
        await coll.drop()
        return rows
    finally:
        await client.close()


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cursors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--uri", default=None, help="a running deployment (default: start SecantusDB)")
    args = parser.parse_args(argv)
    server = None
    uri = args.uri
    if uri is None:
        from benchmarks.servers import SecantusServer

        server = SecantusServer().start()
        uri = server.uri
    try:
        rows = asyncio.run(run(uri, args.docs, args.batch_size, args.rounds))
    finally:
        if server is not None:
            server.stop()
    print(f"find of {args.docs} documents, batch_size={args.batch_size}, {args.rounds} interleaved rounds "
          f"(median per find), Python {sys.version.split()[0]}")
    print(f"{'consumer':<18} {'mode':<20} {'wall ms':>9} {'client CPU ms':>14} {'wall vs getMore':>16}")
    base = {c: w for c, m, w, _ in rows if m == "getMore"}
    for consumer_name, mode, wall, cpu in rows:
        print(f"{consumer_name:<18} {mode:<20} {wall * 1000:>9.1f} {cpu * 1000:>14.1f} {wall / base[consumer_name]:>15.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

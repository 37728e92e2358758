"""Cursor fetch modes against a server with real per-batch latency (SecantusDB).

``python -m benchmarks.cursors [--docs 10000] [--batch-size 1000] [--rounds 9] [--work-us 20]
[--latency-ms 0] [--uri URI]``

Reads *docs* small documents with ``find({}, batch_size=...)`` in four modes — plain getMores,
``read_ahead()``, ``cursor_type=CursorType.EXHAUST`` (one getMore, the server streams the
rest with moreToCome) and both — and three ways of consuming: ``to_list()``, ``async for``
with ``bson.encode`` of each document, and ``async for`` with ``--work-us`` microseconds of CPU
per document (the application's processing, which read-ahead overlaps with the server's). Rounds are interleaved (each round runs every mode once, in a rotated order);
the table shows the median wall time and client CPU time per find, and each mode's wall
time relative to plain getMores. Starts its own SecantusDB unless ``--uri`` is given;
``--latency-ms`` puts a proxy process in front of it that delays every byte by half that in
each direction (a network round trip; no bandwidth limit).
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


def _spin_consumer(micros: int) -> Callable[[Any, str, int], Any]:
    async def consume(coll: Any, mode: str, batch_size: int) -> int:
        n = 0
        clock = time.perf_counter
        pause = micros / 1e6
        async for _doc in _cursor(coll, mode, batch_size):
            until = clock() + pause  # (the application's work: *micros* of CPU per document)
            while clock() < until:
                pass
            n += 1
        return n

    return consume


CONSUMERS: Dict[str, Callable[[Any, str, int], Any]] = {"to_list": _to_list, "async for + encode": _process}


async def run(uri: str, docs: int, batch_size: int, rounds: int,
              consumers: Dict[str, Callable[[Any, str, int], Any]]) -> List[Tuple[str, str, float, float]]:
    client: Any = amongo.AsyncMongoClient(uri)
    try:
        coll = client.amongo_bench.cursors
        await coll.drop()
        for start in range(0, docs, 5000):
            await coll.insert_many([{"_id": i, "x": i, "s": "abcdefgh"} for i in range(start, min(docs, start + 5000))])
        times: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
        for consumer_name, consume in consumers.items():
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


# -- a latency proxy (its own process: ``python -m benchmarks.cursors --proxy TARGET_PORT MS``) ----


async def _delayed_pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy *reader* to *writer*, each chunk delivered *delay* seconds after it arrived (order
    kept, no bandwidth limit: a network with that one-way latency)."""
    loop = asyncio.get_running_loop()
    queue: "asyncio.Queue[Tuple[float, bytes]]" = asyncio.Queue()

    async def deliver() -> None:
        while True:
            at, data = await queue.get()
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(1 << 16)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
        writer.close()


async def _proxy(target_port: int, latency_ms: float) -> None:
    one_way = latency_ms / 2000.0

    async def handle(creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_delayed_pipe(creader, swriter, one_way), _delayed_pipe(sreader, cwriter, one_way),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("PROXY_PORT", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def _start_proxy(target_uri: str, latency_ms: float) -> Tuple[Any, str]:
    import subprocess
    from urllib.parse import urlparse

    port = urlparse(target_uri.replace("mongodb://", "http://")).port
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.cursors", "--proxy", str(port), str(latency_ms)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PROXY_PORT"):
        proc.kill()
        raise RuntimeError(f"latency proxy did not start: {line!r}")
    return proc, f"mongodb://127.0.0.1:{int(line.split()[1])}/?directConnection=true"


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cursors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--uri", default=None, help="a running deployment (default: start SecantusDB)")
    parser.add_argument("--work-us", type=int, default=20,
                        help="also consume with this much CPU work per document (0: skip)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="add this round-trip latency (a proxy process in front of the server)")
    parser.add_argument("--proxy", nargs=2, metavar=("TARGET_PORT", "MS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.proxy:
        asyncio.run(_proxy(int(args.proxy[0]), float(args.proxy[1])))
        return 0
    consumers = dict(CONSUMERS)
    if args.work_us:
        consumers[f"async for + {args.work_us} us"] = _spin_consumer(args.work_us)
    server = None
    uri = args.uri
    if uri is None:
        from benchmarks.servers import SecantusServer

        server = SecantusServer().start()
        uri = server.uri
    proxy = None
    try:
        if args.latency_ms:
            proxy, uri = _start_proxy(uri, args.latency_ms)
        rows = asyncio.run(run(uri, args.docs, args.batch_size, args.rounds, consumers))
    finally:
        if proxy is not None:
            proxy.kill()
            proxy.wait()
        if server is not None:
            server.stop()
    print(f"find of {args.docs} documents, batch_size={args.batch_size}, {args.rounds} interleaved rounds "
          f"(median per find), +{args.latency_ms:g} ms round trip, Python {sys.version.split()[0]}")
    print(f"{'consumer':<20} {'mode':<20} {'wall ms':>9} {'client CPU ms':>14} {'wall vs getMore':>16}")
    base = {c: w for c, m, w, _ in rows if m == "getMore"}
    for consumer_name, mode, wall, cpu in rows:
        print(f"{consumer_name:<20} {mode:<20} {wall * 1000:>9.1f} {cpu * 1000:>14.1f} {wall / base[consumer_name]:>15.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

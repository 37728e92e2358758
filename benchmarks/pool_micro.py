"""Pool hot-path micro-benchmark: the cost of one check-out + check-in, in µs.

``python -m benchmarks.pool_micro [--ops N] [--repeat R] [--pymongo]``

Pools compared (all driven by fake, in-memory connections, so only pool code is timed):

* ``amongo``    - ``amongo.pool.Pool`` (CMAP), with and without a CMAP listener;
* ``old``       - the placeholder pool it replaced (``benchmarks/_old_pool.py``, from 418cdfc);
* ``pymongo``   - (``--pymongo``) PyMongo's async pool, ``pymongo.asynchronous.pool.Pool``,
  over real connections to a SecantusDB started for the run (its check-out does a little
  socket bookkeeping, so it is not a pure in-memory figure).

Scenarios: 1 task doing check-out/check-in back to back; 100 tasks each doing
check-out → ``await asyncio.sleep(0)`` (one loop turn holding the connection, as an
operation would) → check-in, with ``maxPoolSize`` 100 (no waiting) and 10 (90 tasks always
queued: the waiter path). The "loop floor" row is the same loop without a pool (just the
``sleep(0)``), to subtract. Figures are the best of ``--repeat`` runs, µs per pair.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from pymongo import monitoring

from amongo.monitoring import EventListeners
from amongo.pool import Pool as NewPool
from amongo.pool import PoolOptions as NewOptions
from benchmarks._old_pool import Pool as OldPool
from benchmarks._old_pool import PoolOptions as OldOptions

ADDRESS = ("localhost", 27017)


class FakeConnection:
    __slots__ = ("id", "address", "generation", "service_id", "closed", "pending_reply", "last_checkin")

    def __init__(self, conn_id: int, generation: int) -> None:
        self.id = conn_id
        self.address = ADDRESS
        self.generation = generation
        self.service_id = None
        self.closed = False
        self.pending_reply = False
        self.last_checkin = 0.0

    def close(self) -> None:
        self.closed = True

    async def drain(self) -> None:
        self.pending_reply = False


_ids = [0]


async def new_connect(generation: int, conn_id: int) -> FakeConnection:
    return FakeConnection(conn_id, generation)


async def old_connect(generation: int) -> FakeConnection:
    _ids[0] += 1
    return FakeConnection(_ids[0], generation)


class NullPoolListener(monitoring.ConnectionPoolListener):
    def _ignore(self, event: Any) -> None:
        pass

    pool_created = pool_ready = pool_cleared = pool_closed = _ignore
    connection_created = connection_ready = connection_closed = _ignore
    connection_check_out_started = connection_check_out_failed = _ignore
    connection_checked_out = connection_checked_in = _ignore


# A pool adapter: (checkout coroutine function, checkin function, close coroutine function)
Adapter = Tuple[Callable[[], Any], Callable[[Any], None], Callable[[], Any]]


def make_new(max_size: int, listener: bool = False) -> Adapter:
    listeners = EventListeners([NullPoolListener()]) if listener else None
    pool = NewPool(ADDRESS, NewOptions(max_pool_size=max_size), new_connect, listeners)
    return pool.checkout, pool.checkin, pool.close


def make_old(max_size: int) -> Adapter:
    pool = OldPool(ADDRESS, OldOptions(max_pool_size=max_size), old_connect)

    async def close() -> None:
        pass

    return pool.checkout, pool.checkin, close


async def _serial(adapter: Adapter, ops: int) -> float:
    checkout, checkin, close = adapter
    checkin(await checkout())  # warm: one connection exists
    start = time.perf_counter()
    for _ in range(ops):
        checkin(await checkout())
    took = time.perf_counter() - start
    await close()
    return took / ops * 1e6


async def _concurrent(adapter: Optional[Adapter], ops: int, tasks: int, max_size: int = 100) -> float:
    per_task = max(1, ops // tasks)
    sleep = asyncio.sleep
    if adapter is None:

        async def worker() -> None:
            for _ in range(per_task):
                await sleep(0)

    else:
        checkout, checkin, _close = adapter

        async def worker() -> None:
            for _ in range(per_task):
                conn = await checkout()
                await sleep(0)
                checkin(conn)

        # Warm: open the connections first.
        conns = await asyncio.gather(*(checkout() for _ in range(min(tasks, max_size))), return_exceptions=True)
        for c in conns:
            if not isinstance(c, BaseException):
                checkin(c)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    took = time.perf_counter() - start
    if adapter is not None:
        await adapter[2]()
    return took / (per_task * tasks) * 1e6


# ----------------------------------------------------------------------------- pymongo


class _PyMongoPool:
    """PyMongo's async pool over real connections (optional)."""

    def __init__(self, address: Tuple[str, int]) -> None:
        self.address = address

    def make(self, max_size: int) -> Adapter:
        from pymongo.asynchronous.pool import Pool as PMPool
        from pymongo.pool_options import PoolOptions as PMOptions

        pool = PMPool(self.address, PMOptions(max_pool_size=max_size), is_sdam=False)
        state = {"ready": False}
        # pool.checkout() is an async context manager: drive it by hand.
        live: Dict[int, Any] = {}

        async def checkout() -> Any:
            if not state["ready"]:
                state["ready"] = True
                await pool.ready()  # an SDAM-less pool starts paused
            cm = pool.checkout()
            conn = await cm.__aenter__()
            live[id(conn)] = cm
            return conn

        def checkin(conn: Any) -> None:
            cm = live.pop(id(conn))
            # __aexit__ of the checkout context is a coroutine; run its synchronous part.
            coro = cm.__aexit__(None, None, None)
            try:
                coro.send(None)
            except StopIteration:
                pass
            else:  # pragma: no cover - it awaited: finish it as a task
                asyncio.ensure_future(_finish(coro))

        async def close() -> None:
            await pool.close()

        return checkout, checkin, close


async def _finish(coro: Any) -> None:
    try:
        while True:
            coro.send(None)
            await asyncio.sleep(0)
    except StopIteration:
        pass


# ----------------------------------------------------------------------------- main


async def run(ops: int, repeat: int, pm: Optional[_PyMongoPool]) -> List[Tuple[str, List[str]]]:
    makers: List[Tuple[str, Callable[[int], Adapter]]] = [
        ("amongo (CMAP pool)", lambda n: make_new(n)),
        ("amongo + CMAP listener", lambda n: make_new(n, listener=True)),
        ("old placeholder pool", make_old),
    ]
    if pm is not None:
        makers.append(("pymongo async pool", pm.make))
    rows: List[Tuple[str, List[str]]] = []

    async def best(fn: Callable[[], Any]) -> float:
        return min([await fn() for _ in range(repeat)])

    floor = await best(lambda: _concurrent(None, ops, 100))
    rows.append(("loop floor (sleep(0) only)", ["-", f"{floor:.2f}", f"{floor:.2f}"]))
    for name, make in makers:
        n_ops = ops if "pymongo" not in name else max(1000, ops // 10)
        one = await best(lambda: _serial(make(100), n_ops))
        c100 = await best(lambda: _concurrent(make(100), n_ops, 100))
        c100_10 = await best(lambda: _concurrent(make(10), n_ops, 100, 10))
        rows.append((name, [f"{one:.2f}", f"{c100:.2f}", f"{c100_10:.2f}"]))
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.pool_micro", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=200_000, help="check-out/check-in pairs per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell (best is reported)")
    ap.add_argument("--pymongo", action="store_true",
                    help="also PyMongo's async pool (starts a SecantusDB for real connections)")
    args = ap.parse_args(argv)
    pm = None
    server = None
    if args.pymongo:
        sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tests"))
        from servers import start_server  # type: ignore[import-not-found]

        server = start_server("secantus")
        pm = _PyMongoPool(server.address)
    try:
        rows = asyncio.run(run(args.ops, args.repeat, pm))
    finally:
        if server is not None:
            server.stop()
    head = ["pool", "1 task", "100 tasks, maxPoolSize 100", "100 tasks, maxPoolSize 10"]
    widths = [max(len(head[0]), *(len(r[0]) for r in rows))] + [len(h) for h in head[1:]]
    print(f"check-out + check-in, µs per pair (best of {args.repeat}, {args.ops} pairs; "
          f"100-task columns include one sleep(0) per pair: see the loop floor row)")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for name, cells in rows:
        print("  ".join([name.ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells, widths[1:])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

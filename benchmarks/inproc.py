"""Drivers side by side in ONE process: ``python -m benchmarks.inproc WORKLOAD [options]``.

For A/B questions the harness answers too coarsely ("did this change make find 10k cheaper?",
"how far is amongo from raw on find_one?"): every driver runs the same workload against one
replay server, in the same process and event loop, alternating in short rounds, and the
minimum and median client CPU (``time.process_time()``) and wall time per op are printed.
Machine drift hits every driver alike; what separate processes add (cold caches, a different
heap) is left out, so ratios here are the drivers' own.

``--floor`` (with ``find``) adds a pseudo-driver to the rotation, ``floor``: the part every
driver must pay, decoding a first batch and a getMore reply like the recorded ones with bson's
C decoder and dropping the previous result, no I/O. (It runs in the same rounds because its
cost depends on the process's heap: the garbage collector runs while 10,000 dicts are built.)

Examples (the numbers in the README's issue-3 notes came from these)::

    python -m benchmarks.inproc find --drivers amongo,pymongo,raw --floor
    python -m benchmarks.inproc find_one --drivers amongo,raw --loop uvloop --ops 3000
    python -m benchmarks.inproc find_one --drivers amongo,raw --ops 20000 --concurrency 1000
    python -m benchmarks.inproc find_one --drivers amongo,amongo-async --ops 3000
    python -m benchmarks.inproc find_one --drivers amongo,mongojet,raw --ops 3000

``--marks`` calls ``os.getppid()`` before and after each measured round and prints each
round's driver: under callgrind with ``--dump-before=getppid`` every call ends a dump, so
dump ``2k`` (``ir.PID.2``, ``ir.PID.4``...) holds the instructions of round *k* (in the
printed order) and nothing else, a figure the machine's load does not move (CPU time on a
shared machine moves by tens of percent; a round's instructions by about 1 %)::

    valgrind --tool=callgrind --dump-before=getppid --callgrind-out-file=/tmp/ir.%p \
        python -m benchmarks.inproc find_one --drivers amongo,amongo-async \
        --concurrency 1000 --ops 5000 --rounds 4 --marks
    for i in 2 4 6 8 10 12 14 16; do grep -h totals /tmp/ir.*.$i; done

After the per-driver lines come each driver's CPU-per-op ratios to ``floor``, ``raw`` and
``mongojet`` (those that ran); with ``--floor``, the amongo APIs' issue-17 target (find 10k
to_list CPU per op <= 1.05x the decode floor) is printed PASS/FAIL. mongojet's CPU includes
its tokio threads (``process_time`` is the whole process's); they idle while the other
drivers' rounds run.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any, Dict, List, Optional, Tuple

from .drivers import get_adapter
from .servers import ReplayProcess
from .workloads import WORKLOADS, run_ops


async def _round(op: Any, ops: int, concurrency: int) -> Tuple[float, float]:
    """One round: (wall, cpu) seconds per op."""
    c0, t0 = time.process_time(), time.perf_counter()
    ops = await run_ops(op, ops, concurrency)
    return (time.perf_counter() - t0) / ops, (time.process_time() - c0) / ops


def _floor_op() -> Any:
    """find's decode-and-free floor as an op."""
    import bson

    from .data import load
    from .workloads import N_MANY

    small = load("small_doc")
    docs = [dict(small, i=i, _id=bson.ObjectId()) for i in range(N_MANY)]
    first = bson.encode({"cursor": {"firstBatch": docs[:101], "id": 5, "ns": "a.b"}, "ok": 1.0})
    more = bson.encode({"cursor": {"nextBatch": docs[101:], "id": 0, "ns": "a.b"}, "ok": 1.0})
    del docs
    held: List[Any] = [None]

    async def op(i: int) -> Any:
        batch = bson.decode(first)["cursor"]["firstBatch"]
        batch.extend(bson.decode(memoryview(more))["cursor"]["nextBatch"])
        held[0] = batch  # (the previous result is freed here, as a caller's would be)
        return batch

    return op


async def run(workload: str, drivers: List[str], rounds: int, ops: int, concurrency: int,
              uri: str, marks: bool = False) -> Dict[str, List[Tuple[float, float]]]:
    wl = WORKLOADS[workload]
    ops_by: Dict[str, Any] = {}
    adapters = []
    for d in drivers:
        if d == "floor":
            ops_by[d] = _floor_op()
            continue
        a = get_adapter(d)
        await a.connect(uri, 100)
        adapters.append(a)
        await wl.setup(a)
        ops_by[d] = wl.make_op(a)
        await _round(ops_by[d], max(1, ops // 10), concurrency)  # warm-up
    res: Dict[str, List[Tuple[float, float]]] = {d: [] for d in drivers}
    try:
        for r in range(rounds):
            for k in range(len(drivers)):
                d = drivers[(r + k) % len(drivers)]
                if marks:
                    os.getppid()  # (a callgrind --dump-before mark: the round starts)
                res[d].append(await _round(ops_by[d], ops, concurrency))
                if marks:
                    os.getppid()
                    print(f"mark: round {r} {d}", flush=True)
    finally:
        for a in adapters:
            await a.close()
    return res


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.inproc", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=[w for w, x in WORKLOADS.items() if not x.fixed_concurrency])
    ap.add_argument("--drivers", default="amongo,pymongo,raw")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--ops", type=int, default=None, help="ops per round (default by workload)")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--synthetic", action="store_true", help="replay synthesized replies")
    ap.add_argument("--floor", action="store_true", help="(find) also time decode + free alone")
    ap.add_argument("--marks", action="store_true",
                    help="os.getppid() around each round (callgrind --dump-before=getppid)")
    args = ap.parse_args(argv)
    drivers = [d for d in args.drivers.split(",") if d]
    if args.floor and args.workload == "find":
        drivers.append("floor")
    ops = args.ops or (5 if args.workload in ("find", "insert_many") else 2000)
    from .harness import store_path

    store = None if args.synthetic else store_path()
    if store is not None and not os.path.exists(store):
        store = None  # no recording yet (run python -m benchmarks --quick once): synthesize
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with ReplayProcess(store) as rp:
        # (asyncio.run lets the clients' cancelled monitor tasks finish before the loop closes)
        res = asyncio.run(run(args.workload, drivers, args.rounds, ops, args.concurrency, rp.uri,
                               args.marks))
    unit, scale = ("ms", 1e3) if args.workload in ("find", "insert_many") else ("us", 1e6)
    print(f"{args.workload} c={args.concurrency} {args.loop}, {args.rounds} rounds of {ops} ops, "
          f"per op ({unit}):")
    for d in drivers:
        walls = [w for w, _ in res[d]]
        cpus = [c for _, c in res[d]]
        print(f"  {d:12} wall min {min(walls) * scale:9.2f} med {statistics.median(walls) * scale:9.2f}"
              f"   cpu min {min(cpus) * scale:9.2f} med {statistics.median(cpus) * scale:9.2f}")
    ratios = format_ratios(res)
    if ratios:
        print(ratios)
    return 0


#: The references each other driver's CPU per op is divided by, when they ran.
REFERENCES = ("floor", "raw", "mongojet")


def format_ratios(res: Dict[str, List[Tuple[float, float]]]) -> str:
    """Each driver's median CPU per op over each reference's (``floor``, ``raw``, ``mongojet``)
    in the same rounds, and, with ``--floor``, issue 17's target for the amongo APIs: find 10k
    to_list CPU per op <= :data:`~benchmarks.harness.FLOOR_CPU` x the decode floor."""
    from .drivers import AMONGO_APIS
    from .harness import FLOOR_CPU

    med = {d: statistics.median(c for _, c in rs) for d, rs in res.items() if rs}
    lines = ["cpu/op ratios (median over median, same rounds; lower is better):"]
    for d, cpu in med.items():
        parts = [f"/{ref}: x{cpu / med[ref]:.2f}" for ref in REFERENCES
                 if ref in med and ref != d and med[ref] > 0]
        if d in AMONGO_APIS and "floor" in med:
            ratio = cpu / med["floor"]
            parts.append(f"target <= {FLOOR_CPU}x floor: {'PASS' if ratio <= FLOOR_CPU else 'FAIL'}")
        if parts:
            lines.append(f"  {d:12} " + "; ".join(parts))
    return "\n".join(lines) if len(lines) > 1 else ""


if __name__ == "__main__":
    raise SystemExit(main())

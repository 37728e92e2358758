"""Python calls per operation: ``python -m benchmarks.calls [WORKLOAD ...] [--drivers ...]``.

Runs each single-document workload (find_one, insert_one, hello) against the replay server
under :mod:`cProfile`, one task (or ``--concurrency N`` tasks, each running its share of the
ops in turn, as ``benchmarks.inproc --concurrency`` does), and prints the function calls (primitive and C calls
included, as cProfile counts them) per operation, with the top functions by calls. CPU time
on a shared machine is noisy; the number of calls is not, so this is the before/after figure
for hot-path work (README, "Hot path").

    python -m benchmarks.calls find_one insert_one --drivers amongo,amongo-async,raw
    python -m benchmarks.calls find_one --top 40
    python -m benchmarks.calls find_one --drivers amongo,amongo-async --concurrency 1000 --ops 20000
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
from typing import Any, List, Optional

from .drivers import get_adapter
from .servers import ReplayProcess
from .workloads import WORKLOADS, run_ops


async def _count(driver: str, workload: str, ops: int, uri: str, top: int, concurrency: int = 1) -> float:
    wl = WORKLOADS[workload]
    a = get_adapter(driver)
    await a.connect(uri, 100)
    try:
        await wl.setup(a)
        op = wl.make_op(a)
        await run_ops(op, max(200, 2 * concurrency), concurrency)  # warm-up (connections, caches)
        prof = cProfile.Profile()
        prof.enable()
        ops = await run_ops(op, ops, concurrency)
        prof.disable()
    finally:
        await a.close()
    st = pstats.Stats(prof)
    total = sum(v[1] for v in st.stats.values())  # type: ignore[attr-defined]
    if top:
        rows = sorted(st.stats.items(), key=lambda kv: -kv[1][1])[:top]  # type: ignore[attr-defined]
        for (fn, line, name), v in rows:
            print(f"    {v[1] / ops:7.2f}  {fn.rsplit('/', 2)[-2:] if '/' in fn else fn}:{line}({name})")
    return total / ops


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.calls", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="*", default=["find_one", "insert_one"])
    ap.add_argument("--drivers", default="amongo,amongo-async,raw")
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--top", type=int, default=0, help="also list the N most-called functions")
    ap.add_argument("--concurrency", type=int, default=1, help="tasks running the ops (default 1)")
    args = ap.parse_args(argv)
    with ReplayProcess(None) as rp:
        for w in args.workloads:
            for d in [d for d in args.drivers.split(",") if d]:
                n = asyncio.run(_count(d, w, args.ops, rp.uri, args.top, args.concurrency))
                print(f"{w:12} {d:14} {n:7.1f} calls/op" + (f" (c={args.concurrency})" if args.concurrency > 1 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

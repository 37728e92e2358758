"""Python calls per operation: ``python -m benchmarks.calls [WORKLOAD ...] [--drivers ...]``.

Runs each single-document workload (find_one, insert_one, hello) against the replay server
under :mod:`cProfile`, one task, and prints the function calls (primitive and C calls
included, as cProfile counts them) per operation, with the top functions by calls. CPU time
on a shared machine is noisy; the number of calls is not, so this is the before/after figure
for hot-path work (README, "Hot path").

    python -m benchmarks.calls find_one insert_one --drivers amongo,amongo-async,raw
    python -m benchmarks.calls find_one --top 40
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
from typing import Any, List, Optional

from .drivers import get_adapter
from .servers import ReplayProcess
from .workloads import WORKLOADS


async def _count(driver: str, workload: str, ops: int, uri: str, top: int) -> float:
    wl = WORKLOADS[workload]
    a = get_adapter(driver)
    await a.connect(uri, 100)
    try:
        await wl.setup(a)
        op = wl.make_op(a)
        for i in range(200):  # warm-up (connections, caches)
            await op(i)
        prof = cProfile.Profile()
        prof.enable()
        for i in range(ops):
            await op(i)
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
    args = ap.parse_args(argv)
    with ReplayProcess(None) as rp:
        for w in args.workloads:
            for d in [d for d in args.drivers.split(",") if d]:
                n = asyncio.run(_count(d, w, args.ops, rp.uri, args.top))
                print(f"{w:12} {d:14} {n:7.1f} calls/op")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Python bytecodes executed per operation, by function: ``python -m benchmarks.bytecodes DRIVER WORKLOAD [N]``.

The deterministic profile behind the hot-path work: with the fake transport of
:mod:`benchmarks.nosock` (no kernel, no server), every bytecode the interpreter executes in a
Python function during *N* operations is counted (``sys.settrace`` opcode events) and divided
by *N*. Unlike CPU time it does not move with the machine's load, and unlike callgrind's
instruction total it says *where* (C functions count as the one call bytecode that calls
them). Use it to compare drivers and trees function by function::

    python -m benchmarks.bytecodes amongo find_one
    python -m benchmarks.bytecodes raw insert_one --top 20
    python -m benchmarks.bytecodes amongo insert_one --lines _command   # per line of one function
    python -m benchmarks.bytecodes amongo find_one 20000 --concurrency 1000  # 1000 tasks, 100 connections
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import linecache
import sys
from types import FrameType
from typing import Any, Callable, Counter, Optional, Tuple

from . import nosock
from .servers import ReplayProcess
from .workloads import run_ops

Key = Tuple[str, Any]


def _tracer(counts: "Counter[Key]", lines_of: Optional[str]) -> Callable[..., Any]:
    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if lines_of is not None and code.co_name != lines_of:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        parts = code.co_filename.rsplit("/", 2)
        name = f"{'/'.join(parts[-2:])}:{code.co_name}"

        def on_opcode(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[(code.co_filename, frame.f_lineno) if lines_of is not None else (name, None)] += 1
            return on_opcode

        return on_opcode

    return on_call


async def _run(uri: str, driver: str, workload: str, n: int, counts: "Counter[Key]", lines_of: Optional[str],
               concurrency: int) -> int:
    if driver == "raw":
        op = await nosock._raw(uri, workload, concurrency)
    else:
        op = await nosock._amongo(uri, workload, driver, concurrency)
    await run_ops(op, max(300, concurrency), concurrency)  # (warm: pools, caches, first-use paths)
    sys.settrace(_tracer(counts, lines_of))
    try:
        return await run_ops(op, n, concurrency)
    finally:
        sys.settrace(None)


def main(argv: Optional[list] = None) -> int:  # type: ignore[type-arg]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("driver", choices=["amongo", "amongo-async", "raw"])
    ap.add_argument("workload", choices=["find_one", "insert_one"])
    ap.add_argument("n", nargs="?", type=int, default=200)
    ap.add_argument("--top", type=int, default=40, help="functions to list")
    ap.add_argument("--lines", metavar="FUNCTION", help="count by line of this function instead")
    ap.add_argument("--concurrency", type=int, default=1, help="tasks running the N operations (N/tasks each)")
    args = ap.parse_args(argv)
    counts: Counter[Key] = collections.Counter()
    with ReplayProcess(None) as rp:
        n = asyncio.run(_run(rp.uri, args.driver, args.workload, args.n, counts, args.lines, args.concurrency))
    total = sum(counts.values()) / n
    if args.lines:
        for (fn, line), v in sorted(counts.items(), key=lambda kv: kv[0][1] or 0):
            print(f"{v / n:7.1f} {line or 0:5d} {linecache.getline(fn, line or 0).rstrip()[:100]}")
        print(f"{args.driver} {args.workload} {args.lines}: {total:.0f} bytecodes/op")
        return 0
    print(f"{args.driver} {args.workload}: {total:.0f} bytecodes/op")
    for (name, _), v in counts.most_common(args.top):
        print(f"{v / n:8.1f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

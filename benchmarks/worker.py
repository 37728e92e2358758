"""Measurements in a fresh process, one driver on one event loop.

``python -m benchmarks.worker '<json spec>'``: connect, set up, warm up, do ``runs`` runs and
print one line ``RESULT {json}`` (the medians).

``python -m benchmarks.worker --serve '<json spec>'``: connect, set up, warm up, print
``READY``, then do one run per ``RUN`` line read on stdin (answering ``RUN {json}``) until
``STOP`` (answering ``RESULT {json}`` with the peak RSS). The harness keeps one such worker per
driver and loop and sends ``RUN`` to each in turn, so that every driver's runs are interleaved
with its peers': on a machine whose speed drifts (shared VMs), runs measured minutes apart
are not comparable, runs measured side by side are.

CPU time is this process's ``time.process_time()`` over the measured runs only (set-up and
connect excluded); peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` at the end (it includes
set-up).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import resource
import statistics
import sys
import time
import traceback
from typing import Any, Dict, List


async def measure(op: Any, concurrency: int, total_ops: int, max_seconds: float) -> Dict[str, float]:
    """Run up to *total_ops* ops over *concurrency* tasks (stop starting new ones after
    *max_seconds*, but every task runs at least one op). Returns the figures of this run."""
    counter = itertools.count()
    lat: List[float] = []
    perf = time.perf_counter
    deadline = perf() + max_seconds

    async def task() -> None:
        first = True
        while True:
            i = next(counter)
            if i >= total_ops and not first:
                return
            first = False
            t0 = perf()
            await op(i)
            t1 = perf()
            lat.append(t1 - t0)
            if t1 > deadline:
                return

    cpu0 = time.process_time()
    t0 = perf()
    await asyncio.gather(*[task() for _ in range(concurrency)])
    wall = perf() - t0
    cpu = time.process_time() - cpu0
    lat.sort()
    n = len(lat)
    return {
        "ops": n,
        "ops_per_s": n / wall,
        "cpu_us_per_op": cpu / n * 1e6,
        "p50_ms": lat[n // 2] * 1e3,
        "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1e3,
    }


def _adapter(driver: str, wl: Any) -> Any:
    """The driver's adapter, or :class:`~benchmarks.drivers.Unavailable` when the driver has
    no such operation (mongojet's bulk_write): the row says so, the run goes on."""
    from .drivers import Unavailable, get_adapter

    adapter = get_adapter(driver)
    why = wl.unsupported(adapter)
    if why:
        raise Unavailable(f"unsupported: {why}")
    return adapter


async def run(spec: Dict[str, Any]) -> Dict[str, Any]:
    from .workloads import WORKLOADS

    wl = WORKLOADS[spec["workload"]]
    adapter = _adapter(spec["driver"], wl)
    await adapter.connect(spec["uri"], spec.get("max_pool_size", 100))
    try:
        await wl.setup(adapter)
        op = wl.make_op(adapter)
        conc = spec["concurrency"]
        await measure(op, conc, spec["warmup_ops"], spec["warmup_seconds"])
        runs = [await measure(op, conc, spec["ops"], spec["seconds"]) for _ in range(spec["runs"])]
    finally:
        await adapter.close()
    doc_bytes = wl.doc_bytes()
    out: Dict[str, Any] = {k: statistics.median(r[k] for r in runs)
                           for k in ("ops_per_s", "cpu_us_per_op", "p50_ms", "p99_ms")}
    out["mb_per_s"] = out["ops_per_s"] * doc_bytes / 1e6
    out["ops_measured"] = sum(r["ops"] for r in runs)
    out["runs"] = len(runs)
    return out


async def serve(spec: Dict[str, Any]) -> Dict[str, Any]:
    from .workloads import WORKLOADS

    wl = WORKLOADS[spec["workload"]]
    adapter = _adapter(spec["driver"], wl)
    await adapter.connect(spec["uri"], spec.get("max_pool_size", 100))
    doc_bytes = wl.doc_bytes()
    try:
        await wl.setup(adapter)
        op = wl.make_op(adapter)
        conc = spec["concurrency"]
        await measure(op, conc, spec["warmup_ops"], spec["warmup_seconds"])
        print("READY", flush=True)
        # Read commands without blocking the loop: between runs the driver's monitors keep
        # running as in any idle application (a blocked loop would time their checks out).
        loop = asyncio.get_running_loop()
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        while True:
            line = (await commands.readline()).decode().strip()
            if line != "RUN":
                break
            r = await measure(op, conc, spec["ops"], spec["seconds"])
            r["mb_per_s"] = r["ops_per_s"] * doc_bytes / 1e6
            print("RUN " + json.dumps(r), flush=True)
    finally:
        await adapter.close()
    return {}


def main() -> None:
    serving = sys.argv[1] == "--serve"
    spec = json.loads(sys.argv[2] if serving else sys.argv[1])
    try:
        if spec["loop"] == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        from .drivers import Unavailable

        try:
            result = loop.run_until_complete(serve(spec) if serving else run(spec))
        except Unavailable as exc:
            result = {"unavailable": str(exc)}
        finally:
            # As asyncio.run does: let tasks the drivers cancelled on close (monitors) finish.
            pending = asyncio.all_tasks(loop)
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
        if "unavailable" not in result:
            result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except ImportError as exc:
        result = {"unavailable": repr(exc)}
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"[:300],
                  "traceback": traceback.format_exc()[-2000:]}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

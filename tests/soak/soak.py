"""Soak campaign: a bounded mixed workload through the fault-injecting proxy, with a server restart.

Usage::

    python tests/soak/soak.py --duration 600          # what `make soak` runs (10 minutes)
    python tests/soak/soak.py --duration 30 --json out.json

It starts its own SecantusDB replica set (``tests/servers.py``) and the test proxy
(``tests/proxy.py``, on its own thread and loop) in front of it, injecting seeded random faults
(dropped, stalled, chunked, duplicated, stale, reordered, reset, corrupted and truncated
replies, closed connections) into the application's commands and the monitors' checks. One
amongo client (never recreated) runs, for ``--duration`` seconds, workers doing a mix of
find_one (each checks it got *its* document), inserts (each acknowledged one is remembered),
cursors (getMore batches), transactions, aggregations, counts, operations cancelled at a
random moment and operations under a tiny ``pymongo.timeout()``, plus a change stream reader.
The server is restarted (SIGTERM, start again on the same data) at the middle of the run.

Every ``--interval`` seconds it samples the process's RSS, open file descriptors and asyncio
tasks. It fails (exit status 1) when:

* an acknowledged write is missing at the end (checked on a direct connection, no proxy);
* a reply reached the wrong request (a find_one got another document, a cursor other documents);
* an operation raised anything but a ``pymongo.errors`` exception (or CancelledError for a
  cancelled one);
* RSS, file descriptors or tasks grow without bound: the median of the last third of the
  samples exceeds the median of the middle third by more than a slack (RSS: 25% + 32 MB; fds
  and tasks: +40), i.e. they kept growing after the workload reached its steady state.

It prints the figures (and writes them as JSON with ``--json``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

import pymongo  # noqa: E402
from pymongo.errors import PyMongoError  # noqa: E402
from pymongo.write_concern import WriteConcern  # noqa: E402

from amongo.motor_asyncio import AsyncIOMotorClient  # noqa: E402
from proxy import Proxy  # noqa: E402
from servers import Server  # noqa: E402

N_DOCS = 200
#: faults injected into application commands (and, at a lower rate, into monitor checks)
APP_FAULTS = ["close", "close_after_reply", "truncate", "chunked", "duplicate", "stale", "reorder",
              "reset", "corrupt", "corrupt_length", "corrupt_opcode", "corrupt_checksum", "delay"]
#: an operation taking longer is a hang (the client's timeouts are all far shorter)
OP_BOUND = 120
SLOW_FAULTS = ["stall", "drop"]  # cost a socket timeout each: rarer
OP_KINDS = {"find_one": 30, "insert": 20, "cursor": 8, "transaction": 8, "aggregate": 5, "count": 5,
            "cancelled": 12, "timeout": 12}


def await_chain(task: "asyncio.Task[Any]") -> str:
    """Where a stuck task waits: its coroutine's await chain, innermost last."""
    lines = []
    obj: Any = task.get_coro()
    for _ in range(50):
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        nxt = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
        if nxt is None:
            lines.append(f"  awaiting {obj!r}"[:300])
            break
        obj = nxt
    return "\n".join(lines)


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.ops: Counter = Counter()
        self.errors: Counter = Counter()
        self.unexpected: List[str] = []
        self.wrong: List[str] = []
        self.acked: Set[str] = set()
        self.attempted: Set[str] = set()
        self.stream_events = 0
        self.stream_foreign: List[Any] = []
        self.samples: List[Dict[str, float]] = []
        self.restarts: List[float] = []
        self.stop_at = 0.0
        self.t0 = 0.0
        self.mix = dict(OP_KINDS)
        if args.mix:
            self.mix = {k: float(v) for k, v in (item.split("=") for item in args.mix.split(","))}
            unknown = set(self.mix) - set(OP_KINDS)
            if unknown:
                raise SystemExit(f"--mix: unknown operation kinds {sorted(unknown)}; known: {sorted(OP_KINDS)}")

    # -- outcome bookkeeping ------------------------------------------------------------------
    def failed(self, kind: str, exc: BaseException) -> None:
        if isinstance(exc, PyMongoError):
            self.errors[type(exc).__name__] += 1
        else:
            import traceback

            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-12:])
            self.unexpected.append(f"{kind}: {type(exc).__name__}: {exc!r}\n{tb}"[:4000])

    # -- workload ----------------------------------------------------------------------------
    async def worker(self, wid: int) -> None:
        rng = random.Random(self.args.seed * 1000 + wid)
        kinds = list(self.mix)
        weights = [self.mix[k] for k in kinds]
        i = 0
        loop = asyncio.get_running_loop()
        while loop.time() < self.stop_at:
            kind = rng.choices(kinds, weights)[0]
            i += 1
            self.ops[kind] += 1
            task = asyncio.ensure_future(self.one(kind, rng, wid, i))
            done, _ = await asyncio.wait({task}, timeout=OP_BOUND)
            if not done:
                self.unexpected.append(f"{kind}: hung for {OP_BOUND} s at\n{await_chain(task)}")
                task.cancel()
                await asyncio.wait({task}, timeout=10)
                continue
            try:
                task.result()
            except Exception as exc:  # noqa: BLE001 - classified
                self.failed(kind, exc)

    async def one(self, kind: str, rng: random.Random, wid: int, i: int) -> None:
        ro, acked, txn = self.ro, self.acked_coll, self.txn_coll
        if kind == "find_one":
            k = rng.randrange(N_DOCS)
            self.check_doc(k, await ro.find_one({"_id": k}))
        elif kind == "insert":
            _id = f"w{wid}-{i}"
            self.attempted.add(_id)
            await acked.insert_one({"_id": _id, "w": wid, "i": i})
            self.acked.add(_id)
        elif kind == "cursor":
            lo = rng.randrange(N_DOCS - 60)
            docs = await ro.find({"_id": {"$gte": lo, "$lt": lo + 50}}).sort("_id", 1).batch_size(7).to_list(None)
            if [d["_id"] for d in docs] != list(range(lo, lo + 50)) or any(d["v"] != f"value-{d['_id']}" for d in docs):
                self.wrong.append(f"cursor [{lo}, {lo + 50}) returned {[d.get('_id') for d in docs]}"[:300])
        elif kind == "transaction":
            ids = [f"t{wid}-{i}-a", f"t{wid}-{i}-b"]
            self.attempted.update(ids)
            async with await self.client.start_session() as s:
                async with s.start_transaction():
                    await txn.insert_one({"_id": ids[0]}, session=s)
                    await txn.insert_one({"_id": ids[1]}, session=s)
            self.acked.update(ids)
        elif kind == "aggregate":
            k = rng.randrange(N_DOCS)
            rows = await ro.aggregate([{"$match": {"_id": k}}, {"$project": {"v": 1}}]).to_list(None)
            if rows != [{"_id": k, "v": f"value-{k}"}]:
                self.wrong.append(f"aggregate for {k} returned {rows!r}"[:300])
        elif kind == "count":
            n = await ro.count_documents({"_id": {"$lt": 10}})
            if n != 10:
                self.wrong.append(f"count_documents returned {n}, not 10")
        elif kind == "cancelled":
            k = rng.randrange(N_DOCS)
            task = asyncio.ensure_future(ro.find_one({"_id": k}))
            await asyncio.sleep(rng.random() * 0.005)
            task.cancel()
            try:
                self.check_doc(k, await task)
            except asyncio.CancelledError:
                pass
        elif kind == "timeout":
            k = rng.randrange(N_DOCS)
            with pymongo.timeout(rng.choice([0.002, 0.01, 0.05, 0.5])):
                self.check_doc(k, await ro.find_one({"_id": k}))

    def check_doc(self, k: int, doc: Any) -> None:
        if doc is None or doc.get("_id") != k or doc.get("v") != f"value-{k}":
            self.wrong.append(f"find_one({{_id: {k}}}) returned {doc!r}"[:300])

    async def change_stream(self) -> None:
        loop = asyncio.get_running_loop()
        token = None
        while loop.time() < self.stop_at:
            stream = self.acked_coll.watch(resume_after=token, max_await_time_ms=500)
            try:
                while loop.time() < self.stop_at:
                    change = await asyncio.wait_for(stream.try_next(), 60)
                    if stream.resume_token is not None:
                        token = stream.resume_token
                    if change is not None:
                        self.stream_events += 1
                        _id = change.get("documentKey", {}).get("_id")
                        if _id not in self.attempted:
                            self.stream_foreign.append(_id)
            except asyncio.TimeoutError:
                self.unexpected.append("change stream try_next hung for 60 s")
            except Exception as exc:  # noqa: BLE001 - classified
                self.failed("change_stream", exc)
                self.ops["change_stream_reopen"] += 1
                await asyncio.sleep(0.2)
            finally:
                try:
                    await asyncio.wait_for(stream.close(), 30)
                except Exception:  # noqa: BLE001
                    pass

    async def sampler(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.samples.append({
                "t": round(loop.time() - self.t0, 1),
                "rss_mb": round(rss_bytes() / 2 ** 20, 1),
                "fds": open_fds(),
                "tasks": len(asyncio.all_tasks()),
            })
            if loop.time() >= self.stop_at:
                return
            await asyncio.sleep(self.args.interval)

    async def trace_growth(self) -> None:
        import tracemalloc

        import gc

        tracemalloc.start(8)
        await asyncio.sleep(self.args.duration / 3)
        gc.collect()  # (cycles awaiting collection are not a leak)
        first = tracemalloc.take_snapshot()
        await asyncio.sleep(max(0.0, self.stop_at - asyncio.get_running_loop().time() - 1))
        gc.collect()
        last = tracemalloc.take_snapshot()
        tracemalloc.stop()
        print("memory growth from a third of the run to its end, by allocation site:")
        for stat in last.compare_to(first, "traceback")[:8]:
            print(f"  {stat.size_diff / 1024:+.0f} KiB in {stat.count_diff:+d} blocks")
            for line in stat.traceback.format()[-8:]:
                print("    " + line)

    async def restarter(self, server: Server) -> None:
        loop = asyncio.get_running_loop()
        for frac in self.args.restart_at:
            await asyncio.sleep(max(0.0, self.t0 + frac * self.args.duration - loop.time()))
            start = loop.time()
            # (the harness's own blocking call; amongo itself runs no threads)
            await loop.run_in_executor(None, server.restart)
            self.restarts.append(round(loop.time() - start, 1))

    # -- the run -----------------------------------------------------------------------------
    async def run(self, server: Server, proxy: Proxy) -> Dict[str, Any]:
        args = self.args
        direct = AsyncIOMotorClient(server.direct_uri, serverSelectionTimeoutMS=60000)
        await direct.soak.ro.drop()
        await direct.soak.acked.drop()
        await direct.soak.txn.drop()
        await direct.soak.ro.insert_many([{"_id": i, "v": f"value-{i}"} for i in range(N_DOCS)])
        await direct.soak.create_collection("txn")
        direct.close()

        self.client = AsyncIOMotorClient(
            proxy.uri(), socketTimeoutMS=3000, connectTimeoutMS=3000, serverSelectionTimeoutMS=60000,
            heartbeatFrequencyMS=1000, maxPoolSize=args.pool)
        db = self.client.soak
        self.ro = db.ro
        self.acked_coll = db.get_collection("acked", write_concern=WriteConcern(w=1, j=True))
        self.txn_coll = db.txn
        await self.ro.find_one({})  # connected before the clock starts

        # faults from now on
        app = lambda d: next(iter(d), "").lower() not in ("hello", "ismaster")  # noqa: E731
        monitor = lambda d: not app(d)  # noqa: E731
        proxy.chaos(APP_FAULTS, args.fault_rate, seed=args.seed, predicate=app, delay=0.2)
        proxy.chaos(SLOW_FAULTS, args.fault_rate / 10, seed=args.seed + 1, predicate=app)
        proxy.chaos(APP_FAULTS + SLOW_FAULTS, args.fault_rate / 2, seed=args.seed + 2, predicate=monitor,
                    delay=0.2)

        loop = asyncio.get_running_loop()
        self.t0 = loop.time()
        self.stop_at = self.t0 + args.duration
        sampler = asyncio.ensure_future(self.sampler())
        if args.tracemalloc:
            asyncio.ensure_future(self.trace_growth())
        restarter = asyncio.ensure_future(self.restarter(server))
        jobs = [asyncio.ensure_future(self.worker(w)) for w in range(args.workers)]
        jobs.append(asyncio.ensure_future(self.change_stream()))
        await asyncio.gather(*jobs)
        await restarter
        await sampler
        proxy.clear_rules()
        faults = dict(proxy.fault_counts())
        self.client.close()
        await asyncio.sleep(0.5)

        # every acknowledged write is there (read without the proxy)
        direct = AsyncIOMotorClient(server.direct_uri, serverSelectionTimeoutMS=60000)
        present = {d["_id"] async for d in direct.soak.acked.find({}, {"_id": 1})}
        present |= {d["_id"] async for d in direct.soak.txn.find({}, {"_id": 1})}
        direct.close()
        lost = sorted(self.acked - present)
        return self.report(faults, lost)

    def growth(self) -> Dict[str, Any]:
        s = self.samples
        n = len(s)
        if n < 6:
            return {"checked": False}
        mid = s[n // 3: 2 * n // 3]
        last = s[2 * n // 3:]
        out: Dict[str, Any] = {"checked": True}
        for key, ratio, slack in (("rss_mb", 1.25, 32), ("fds", 1.0, 40), ("tasks", 1.0, 40)):
            a = statistics.median(x[key] for x in mid)
            b = statistics.median(x[key] for x in last)
            out[key] = {"middle": a, "last": b, "limit": round(a * ratio + slack, 1), "ok": b <= a * ratio + slack}
        return out

    def report(self, faults: Dict[str, int], lost: List[str]) -> Dict[str, Any]:
        growth = self.growth()
        s = self.samples
        return {
            "duration_s": self.args.duration,
            "seed": self.args.seed,
            "workers": self.args.workers,
            "operations": dict(self.ops),
            "operations_total": sum(v for k, v in self.ops.items() if k != "change_stream_reopen"),
            "errors": dict(self.errors),
            "faults": faults,
            "faults_total": sum(faults.values()),
            "server_restarts_s": self.restarts,
            "acknowledged_writes": len(self.acked),
            "acknowledged_writes_lost": len(lost),
            "lost_sample": lost[:10],
            "wrong_replies": len(self.wrong),
            "wrong_sample": self.wrong[:10],
            "unexpected_exceptions": len(self.unexpected),
            "unexpected_sample": self.unexpected[:5],
            "change_stream_events": self.stream_events,
            "change_stream_foreign_ids": len(self.stream_foreign),
            "samples": len(s),
            "start": s[0] if s else None,
            "end": s[-1] if s else None,
            "peak": {k: max(x[k] for x in s) for k in ("rss_mb", "fds", "tasks")} if s else None,
            "growth": growth,
        }


def verdict(r: Dict[str, Any]) -> List[str]:
    problems = []
    if r["acknowledged_writes_lost"]:
        problems.append(f"{r['acknowledged_writes_lost']} acknowledged writes lost")
    if r["wrong_replies"]:
        problems.append(f"{r['wrong_replies']} wrong replies")
    if r["unexpected_exceptions"]:
        problems.append(f"{r['unexpected_exceptions']} non-pymongo exceptions")
    if r["change_stream_foreign_ids"]:
        problems.append(f"{r['change_stream_foreign_ids']} change events for documents never written")
    g = r["growth"]
    for key in ("rss_mb", "fds", "tasks"):
        if g.get("checked") and not g[key]["ok"]:
            problems.append(f"{key} kept growing: {g[key]}")
    if r["operations_total"] < 10:
        problems.append("almost no operations ran")
    return problems


def print_report(r: Dict[str, Any], problems: List[str]) -> None:
    p = print
    p(f"soak: {r['duration_s']} s, seed {r['seed']}, {r['workers']} workers, "
      f"server restarts (s to restart): {r['server_restarts_s']}")
    p(f"operations: {r['operations_total']}  " + ", ".join(f"{k} {v}" for k, v in sorted(r["operations"].items())))
    p(f"faults injected: {r['faults_total']}  " + ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())))
    p("errors raised (pymongo): " + (", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "none"))
    p(f"acknowledged writes: {r['acknowledged_writes']}, lost: {r['acknowledged_writes_lost']}")
    p(f"wrong replies: {r['wrong_replies']}, non-pymongo exceptions: {r['unexpected_exceptions']}, "
      f"change events: {r['change_stream_events']} (foreign: {r['change_stream_foreign_ids']})")
    if r["start"] and r["end"]:
        p(f"RSS MB  start {r['start']['rss_mb']}  end {r['end']['rss_mb']}  peak {r['peak']['rss_mb']}")
        p(f"fds     start {r['start']['fds']}  end {r['end']['fds']}  peak {r['peak']['fds']}")
        p(f"tasks   start {r['start']['tasks']}  end {r['end']['tasks']}  peak {r['peak']['tasks']}")
    g = r["growth"]
    if g.get("checked"):
        p("growth (median middle third -> last third, limit): "
          + "; ".join(f"{k} {g[k]['middle']} -> {g[k]['last']} (<= {g[k]['limit']})" for k in ("rss_mb", "fds", "tasks")))
    for key in ("lost_sample", "wrong_sample", "unexpected_sample"):
        if r[key]:
            for item in r[key]:
                p(f"{key}: {item}")
    p("RESULT: " + ("PASS" if not problems else "FAIL: " + "; ".join(problems)))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of workload (default 600)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--pool", type=int, default=8, help="maxPoolSize")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--fault-rate", type=float, default=0.02, help="share of commands given a fault")
    ap.add_argument("--restart-at", type=float, nargs="*", default=[0.5],
                    help="server restarts, as fractions of the duration (default: 0.5)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="print where memory grew between a third of the run and its end (slow)")
    ap.add_argument("--mix", help="operation weights, e.g. 'find_one=3,timeout=1' (default: all kinds)")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    server = Server("secantus").start()
    try:
        with Proxy(server.host, server.port) as proxy:  # its own thread and loop
            soak = Soak(args)
            result = asyncio.run(soak.run(server, proxy))
    finally:
        server.stop()
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    started = time.time()
    result = run(args)
    result["wall_s"] = round(time.time() - started, 1)
    problems = verdict(result)
    result["problems"] = problems
    print_report(result, problems)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Orchestration: servers, one worker subprocess per measurement, table, ratios, targets.

Public API (used by ``python -m benchmarks`` and the smoke test)::

    cfg = Config(drivers=["raw"], workloads=["find_one"], concurrency=[1], quick=True)
    results = run(cfg)                  # list[dict]; one per driver x loop x server x workload x c
    records = json_records(results)     # the --json records
    measure_one(uri, "raw", "asyncio", "replay", "find_one", 1, params)   # one cell
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .drivers import AMONGO_APIS, DRIVERS, PEERS
from .servers import ROOT, ReplayProcess, SecantusServer
from .workloads import WORKLOADS

LOOPS = ("asyncio", "uvloop")
SERVERS = ("secantus", "replay")
DEFAULT_CONCURRENCY = (1, 100, 1000)
QUICK_CONCURRENCY = (1, 1000)
HEAVY_MAX_CONCURRENCY = 100  # non-cheap workloads never run at 1000 tasks
#: SecantusDB's default concurrency: it serves ~2-5k commands/s and ~100 retryable writes/s,
#: so with more tasks every driver measures the server (its c=100/1000 rows are in no table,
#: chart or target, and its insert_one c=1000 cell alone took ~15 min of a 12-worker full run).
#: ``--secantus-concurrency 1,100,1000`` (or an explicit ``--concurrency``) measures them anyway.
SECANTUS_CONCURRENCY = (1,)
#: The PyMongo-style API (``amongo-async``) may cost at most this much client CPU per op of the
#: Motor API (``amongo``) over the same engine: a thin facade costs nothing measurable (the
#: bound is the interleaved runs' noise, not an allowance).
FACADE_CPU = 1.1
#: Issue 17: find 10k to_list may cost at most this much client CPU per op of the decode
#: floor (bson's C decoder on the same replies, no I/O), measured in one process by
#: ``python -m benchmarks.inproc find --floor`` (which prints the ratio and PASS/FAIL).
FLOOR_CPU = 1.05
DEFAULT_WORKLOADS = tuple(n for n, w in WORKLOADS.items() if not w.fixed_concurrency)
JSON_FIELDS = ("driver", "loop", "server", "workload", "concurrency", "ops_per_s", "mb_per_s",
               "cpu_us_per_op", "p50_ms", "p99_ms", "peak_rss_mb")


def store_path() -> str:
    """The recorded replay replies, one store per document source (the replies embed the
    documents)."""
    from .data import cache_dir, source

    return str(cache_dir() / f"replay-store-{source()}.bson")


@dataclass
class Params:
    """How much to run per measurement (one ``measure`` call = one run)."""

    ops: int
    seconds: float
    runs: int
    warmup_ops: int
    warmup_seconds: float


def params_for(workload: str, concurrency: int, quick: bool, runs: Optional[int] = None) -> Params:
    wl = WORKLOADS[workload]
    if wl.fixed_concurrency:  # memory mode: every task does about one op
        return Params(ops=concurrency, seconds=30.0, runs=runs or (1 if quick else 3),
                      warmup_ops=min(concurrency, 1000), warmup_seconds=2.0)
    # Runs are interleaved across drivers (see measure_interleaved), so a run can be short:
    # what it must be is long enough to hold many operations.
    if workload in ("find", "insert_many"):
        ops, seconds = (5, 0.5) if quick else (20, 2.0)
    elif wl.cheap:
        ops, seconds = (2000, 0.3) if quick else (20000, 1.0)
    else:
        ops, seconds = (200, 0.3) if quick else (2000, 1.0)
    ops = max(ops, concurrency)
    return Params(ops=ops, seconds=seconds, runs=runs or (3 if quick else 5),
                  warmup_ops=max(concurrency, ops // 10), warmup_seconds=seconds / 4)


def concurrencies_for(workload: str, requested: Sequence[int], server: str = "replay") -> List[int]:
    wl = WORKLOADS[workload]
    if wl.fixed_concurrency:
        return list(wl.fixed_concurrency)
    if wl.cheap:
        return list(requested)
    if server == "secantus":
        # SecantusDB is the bottleneck there (~20k documents/s): 100 concurrent 10k-document
        # inserts or finds would be a million documents per run and per driver.
        return [c for c in requested if c == 1] or [min(requested)]
    return [c for c in requested if c <= HEAVY_MAX_CONCURRENCY]


@dataclass
class Config:
    drivers: List[str] = field(default_factory=lambda: list(DRIVERS))
    loops: List[str] = field(default_factory=lambda: list(LOOPS))
    servers: Optional[List[str]] = None  # default: both; --quick: replay only
    workloads: List[str] = field(default_factory=lambda: list(DEFAULT_WORKLOADS))
    concurrency: Optional[List[int]] = None
    #: task counts against SecantusDB (default: ``concurrency`` when given, else
    #: :data:`SECANTUS_CONCURRENCY`); a ``--uri`` deployment uses ``concurrency``
    secantus_concurrency: Optional[List[int]] = None
    quick: bool = False
    runs: Optional[int] = None
    uri: Optional[str] = None  # a real deployment instead of SecantusDB (server name "uri")
    rerecord: bool = False
    synthetic: bool = False  # replay synthesized replies instead of a recording
    timeout: float = 300.0
    log: Callable[[str], None] = field(default=lambda s: print(s, file=sys.stderr, flush=True))


def measure_one(uri: str, driver: str, loop: str, server: str, workload: str, concurrency: int,
                params: Params, timeout: float = 300.0) -> Dict[str, Any]:
    """Run one measurement in a fresh subprocess; return a result row."""
    spec = dict(driver=driver, loop=loop, uri=uri, workload=workload, concurrency=concurrency,
                ops=params.ops, seconds=params.seconds, runs=params.runs,
                warmup_ops=params.warmup_ops, warmup_seconds=params.warmup_seconds,
                max_pool_size=100)
    row: Dict[str, Any] = dict(driver=driver, loop=loop, server=server, workload=workload,
                               concurrency=concurrency)
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(spec)],
                              cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        row["error"] = f"timed out after {timeout:.0f}s"
        return row
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        row["error"] = f"worker exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
        return row
    row.update(json.loads(lines[-1][len("RESULT "):]))
    return row


class _Worker:
    """A ``benchmarks.worker --serve`` process: one driver on one loop, set up and warm,
    doing one run per :meth:`run` call."""

    def __init__(self, spec: Dict[str, Any], timeout: float) -> None:
        self.timeout = timeout
        self._buf = b""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", "--serve", json.dumps(spec)],
            cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            bufsize=0)
        self.failure: Optional[Dict[str, Any]] = None  # {"unavailable"|"error": ...}

    def _line(self) -> Optional[str]:
        """The next stdout line, or None on EOF / timeout (the worker is then killed)."""
        import selectors

        deadline = time.monotonic() + self.timeout
        out = self.proc.stdout
        assert out is not None
        with selectors.DefaultSelector() as sel:
            sel.register(out, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.proc.kill()
                    self.failure = {"error": f"timed out after {self.timeout:.0f}s"}
                    return None
                chunk = os.read(out.fileno(), 65536)
                if not chunk:
                    return None
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def _expect(self, prefix: str) -> Optional[Dict[str, Any]]:
        while True:
            line = self._line()
            if line is None:
                if self.failure is None:
                    err = (self.proc.stderr.read() or b"").decode()[-300:] if self.proc.stderr else ""
                    self.failure = {"error": f"worker exited {self.proc.wait()}: {err.strip()}"}
                return None
            if line.startswith("RESULT "):  # the worker ended: unavailable driver or an error
                res = json.loads(line[len("RESULT "):])
                self.failure = {k: res[k] for k in ("unavailable", "error") if k in res} or {
                    "error": "worker ended early"}
                return None
            if line == prefix.strip() or line.startswith(prefix):
                return json.loads(line[len(prefix):]) if line.startswith(prefix + " ") else {}

    def ready(self) -> bool:
        return self._expect("READY") is not None

    def run(self) -> Optional[Dict[str, Any]]:
        if self.failure is not None:
            return None
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"RUN\n")
        return self._expect("RUN")

    def stop(self) -> Dict[str, Any]:
        """Stop the worker; its final record (peak RSS)."""
        res: Dict[str, Any] = {}
        if self.failure is None and self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"STOP\n")
                line = self._line()
                while line is not None and not line.startswith("RESULT "):
                    line = self._line()
                if line is not None:
                    res = json.loads(line[len("RESULT "):])
            except (BrokenPipeError, OSError):
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return res


def measure_interleaved(uri: str, combos: Sequence[Tuple[str, str]], server: str, workload: str,
                        concurrency: int, params: Params, timeout: float = 300.0,
                        log: Optional[Callable[[str], None]] = None) -> List[Dict[str, Any]]:
    """Measure every ``(driver, loop)`` of *combos* with interleaved runs: one warm worker
    process each, and ``params.runs`` rounds in which each worker does one run (the order
    rotates every round). Rows carry the medians over the rounds."""
    spec = dict(uri=uri, workload=workload, concurrency=concurrency, ops=params.ops,
                seconds=params.seconds, warmup_ops=params.warmup_ops,
                warmup_seconds=params.warmup_seconds, max_pool_size=100)
    workers: List[_Worker] = []
    if server == "replay":
        # The replay server keeps no data: the workers may set up and warm up all at once.
        workers = [_Worker(dict(spec, driver=d, loop=lp), timeout) for d, lp in combos]
        for w in workers:
            w.ready()  # (a failure is recorded on the worker)
    else:
        for driver, loop in combos:  # one set-up at a time: they share the collections
            w = _Worker(dict(spec, driver=driver, loop=loop), timeout)
            workers.append(w)
            w.ready()
    runs: List[List[Dict[str, Any]]] = [[] for _ in workers]
    n = len(workers)
    for rnd in range(params.runs):
        for k in range(n):
            i = (rnd + k) % n
            r = workers[i].run()
            if r is not None:
                runs[i].append(r)
    rows = []
    for (driver, loop), w, rs in zip(combos, workers, runs):
        final = w.stop()
        row: Dict[str, Any] = dict(driver=driver, loop=loop, server=server, workload=workload,
                                   concurrency=concurrency)
        if rs:
            row.update({k: statistics.median(r[k] for r in rs)
                        for k in ("ops_per_s", "mb_per_s", "cpu_us_per_op", "p50_ms", "p99_ms")})
            row["ops_measured"] = sum(r["ops"] for r in rs)
            row["runs"] = len(rs)
            row["peak_rss_mb"] = final.get("peak_rss_mb", 0.0)
            row["run_ops_per_s"] = [r["ops_per_s"] for r in rs]
        else:
            row.update(w.failure or {"error": "no run completed"})
        rows.append(row)
        if log is not None:
            log(f"  {server:8} {workload:18} c={concurrency:<5} {driver:12} {loop:7} " + _short(row))
    return rows


def _ensure_store(cfg: Config, secantus_uri: Optional[str]) -> Optional[str]:
    """Path of the recorded replay store, recording it first if needed (None: synthetic)."""
    if cfg.synthetic:
        return None
    path = store_path()
    if os.path.exists(path) and not cfg.rerecord:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    server = None
    try:
        uri = cfg.uri or secantus_uri
        if uri is None:
            cfg.log("recording replay replies: starting SecantusDB ...")
            server = SecantusServer().start()
            uri = server.uri
        cfg.log(f"recording replay replies from {uri} -> {path}")
        proc = subprocess.run([sys.executable, "-m", "benchmarks.replay", "record", "--uri", uri,
                               "--out", path], cwd=str(ROOT), capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip()[-500:])
        return path
    except Exception as exc:
        cfg.log(f"recording failed ({exc}); the replay server will synthesize replies")
        return None
    finally:
        if server is not None:
            server.stop()


def run(cfg: Config) -> List[Dict[str, Any]]:
    servers = cfg.servers or (["replay"] if cfg.quick else list(SERVERS))
    requested = cfg.concurrency or list(QUICK_CONCURRENCY if cfg.quick else DEFAULT_CONCURRENCY)
    results: List[Dict[str, Any]] = []
    secantus: Optional[SecantusServer] = None
    try:
        for server in servers:
            if server == "secantus":
                if cfg.uri:
                    uri, name = cfg.uri, "uri"
                else:
                    cfg.log("starting SecantusDB ...")
                    secantus = SecantusServer().start()
                    uri, name = secantus.uri, "secantus"
                cs = requested if name == "uri" else (
                    cfg.secantus_concurrency or cfg.concurrency or list(SECANTUS_CONCURRENCY))
                results += _run_server(cfg, uri, name, cs)
                if secantus is not None and "replay" in servers:
                    pass  # kept for recording below, stopped in finally
            elif server == "replay":
                store = _ensure_store(cfg, secantus.uri if secantus else None)
                if secantus is not None:
                    secantus.stop()
                    secantus = None
                cfg.log(f"starting replay server ({'recorded' if store else 'synthetic'}) ...")
                with ReplayProcess(store) as rp:
                    results += _run_server(cfg, rp.uri, "replay", requested)
            else:
                raise ValueError(f"unknown server {server!r}")
            if secantus is not None:
                secantus.stop()
                secantus = None
    finally:
        if secantus is not None:
            secantus.stop()
    return results


def _run_server(cfg: Config, uri: str, server: str, requested: Sequence[int]) -> List[Dict[str, Any]]:
    rows = []
    unavailable: Dict[str, str] = {}
    for workload in cfg.workloads:
        for c in concurrencies_for(workload, requested, server):
            params = params_for(workload, c, cfg.quick, cfg.runs)
            if not WORKLOADS[workload].fixed_concurrency:
                combos = [(d, lp) for d in cfg.drivers for lp in cfg.loops]
                got = measure_interleaved(uri, combos, server, workload, c, params, cfg.timeout,
                                          cfg.log)
                rows += got
                continue
            # Memory mode: one driver at a time (its peak RSS is the measurement).
            for driver in cfg.drivers:
                for loop in cfg.loops:
                    key = driver
                    if key in unavailable:
                        rows.append(dict(driver=driver, loop=loop, server=server,
                                         workload=workload, concurrency=c,
                                         unavailable=unavailable[key]))
                        continue
                    row = measure_one(uri, driver, loop, server, workload, c, params, cfg.timeout)
                    if "unavailable" in row:
                        unavailable[key] = row["unavailable"]
                    cfg.log(f"  {server:8} {workload:18} c={c:<5} {driver:12} {loop:7} "
                            + (_short(row)))
                    rows.append(row)
    return rows


def _short(row: Dict[str, Any]) -> str:
    if "ops_per_s" in row:
        return (f"{row['ops_per_s']:10.1f} ops/s {row['cpu_us_per_op']:9.1f} us/op "
                f"{row['peak_rss_mb']:6.1f} MB")
    return "unavailable: " + row["unavailable"] if "unavailable" in row else "ERROR: " + row.get(
        "error", "?")


def ok_rows(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [r for r in results if "ops_per_s" in r]


def json_records(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The --json records: exactly :data:`JSON_FIELDS`, measured rows only."""
    return [{k: r[k] for k in JSON_FIELDS} for r in ok_rows(results)]


def write_json(results: Sequence[Dict[str, Any]], path: str) -> None:
    with open(path, "w") as f:
        json.dump(json_records(results), f, indent=1)
        f.write("\n")


# -------------------------------------------------------------------------------------------
# Report
# -------------------------------------------------------------------------------------------
def _fmt(v: Optional[float], width: int, prec: int = 1) -> str:
    if v is None:
        return "-".rjust(width)
    if v >= 100_000:
        return f"{v:{width}.0f}"
    return f"{v:{width}.{prec}f}"


#: The table's ``x_<peer>`` columns (amongo rows' ops/s over the peer's) and their widths.
_XCOLS = tuple((p, max(7, len(p) + 2)) for p in PEERS)


def format_table(results: Sequence[Dict[str, Any]]) -> str:
    idx = _index(results)
    head = (f"{'server':8} {'workload':18} {'c':>5} {'driver':12} {'loop':7} {'ops/s':>10} "
            f"{'MB/s':>8} {'cpu_us/op':>10} {'p50_ms':>8} {'p99_ms':>8} {'rss_MB':>7}"
            + "".join(f" {'x_' + p:>{w}}" for p, w in _XCOLS))
    lines = [head, "-" * len(head)]
    for r in results:
        pre = f"{r['server']:8} {r['workload']:18} {r['concurrency']:>5} {r['driver']:12} {r['loop']:7} "
        if "ops_per_s" not in r:
            status = ("unavailable: " + r["unavailable"]) if "unavailable" in r else (
                "ERROR: " + r.get("error", "?"))
            lines.append(pre + status[:100])
            continue
        ratios = ""
        if r["driver"] in AMONGO_APIS:  # throughput ratios from the same run
            for peer, w in _XCOLS:
                p = idx.get((peer, r["loop"], r["server"], r["workload"], r["concurrency"]))
                ratios += " " + (_fmt(r["ops_per_s"] / p["ops_per_s"], w, 2) if p else "-".rjust(w))
        lines.append(pre + f"{_fmt(r['ops_per_s'], 10)} {_fmt(r['mb_per_s'], 8)} "
                     f"{_fmt(r['cpu_us_per_op'], 10)} {_fmt(r['p50_ms'], 8, 2)} "
                     f"{_fmt(r['p99_ms'], 8, 2)} {_fmt(r['peak_rss_mb'], 7)}" + ratios)
    return "\n".join(lines)


def _index(results: Sequence[Dict[str, Any]]) -> Dict[tuple, Dict[str, Any]]:
    return {(r["driver"], r["loop"], r["server"], r["workload"], r["concurrency"]): r
            for r in ok_rows(results)}


def format_ratios(results: Sequence[Dict[str, Any]]) -> str:
    """amongo/peer ratios of throughput and CPU per op, and amongo-uvloop/amongo-asyncio, for
    each amongo API (``amongo``: the Motor API; ``amongo-async``: the PyMongo-style API, also
    compared with ``amongo``: what the facade costs)."""
    idx = _index(results)
    lines = ["ratios (same run): throughput amongo/peer (higher is better); "
             "cpu/op amongo/peer (lower is better)"]
    any_row = False
    for (d, loop, server, wl, c), r in sorted(idx.items(), key=lambda kv: kv[0][1:]):
        if d not in AMONGO_APIS:
            continue
        parts = []
        peers = PEERS + (("amongo",) if d != "amongo" else ())
        for peer in peers:
            p = idx.get((peer, loop, server, wl, c))
            if p:
                parts.append(f"/{peer}: x{r['ops_per_s'] / p['ops_per_s']:.2f} thr, "
                             f"x{r['cpu_us_per_op'] / p['cpu_us_per_op']:.2f} cpu")
        if loop == "uvloop":
            a = idx.get((d, "asyncio", server, wl, c))
            if a:
                parts.append(f"uvloop/asyncio: x{r['ops_per_s'] / a['ops_per_s']:.2f} thr")
        if parts:
            any_row = True
            lines.append(f"  {server:8} {wl:18} c={c:<5} {loop:7} {d:12} " + "; ".join(parts))
    if not any_row:
        lines.append("  (no amongo rows measured)")
    return "\n".join(lines)


def _pick(idx: Dict[tuple, Dict[str, Any]], driver: str, loop: str, workload: str,
          c: int) -> Optional[Dict[str, Any]]:
    """Prefer the replay server (client-bound), then SecantusDB, then --uri."""
    for server in ("replay", "secantus", "uri"):
        r = idx.get((driver, loop, server, workload, c))
        if r is not None:
            return r
    return None


def evaluate_targets(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each target -> ``{"target", "status" (PASS|FAIL|n-a), "detail"}``; per loop measured."""
    idx = _index(results)
    loops = sorted({k[1] for k in idx}) or ["asyncio"]
    out: List[Dict[str, Any]] = []

    def check(name: str, a: Optional[Dict[str, Any]], b: Optional[Dict[str, Any]], fig: str,
              op: str, bound: float, server_note: str = "") -> None:
        if a is None or b is None:
            missing = "amongo" if a is None else "peer"
            out.append(dict(target=name, status="n-a", detail=f"no {missing} row"))
            return
        ratio = a[fig] / b[fig]
        ok = ratio <= bound if op == "<=" else ratio >= bound
        out.append(dict(target=name, status="PASS" if ok else "FAIL",
                        detail=f"ratio {ratio:.2f} (need {op} {bound}) [{a['server']}]"))

    # The same targets for each amongo API (the Motor API's names unprefixed); the
    # PyMongo-style API's only when it was measured.
    apis = [d for d in AMONGO_APIS if d == "amongo" or any(k[0] == d for k in idx)]
    for api in apis:
        pre = "" if api == "amongo" else f"{api} "
        for loop in loops:
            am = _pick(idx, api, loop, "find_one", 1)
            for peer, bound in (("pymongo", 0.5), ("motor", 0.33), ("raw", 1.3)):
                check(f"[{loop}] {pre}find_one c=1 cpu/op <= {bound}x {peer}", am,
                      _pick(idx, peer, loop, "find_one", 1), "cpu_us_per_op", "<=", bound)
            a = idx.get((api, loop, "replay", "insert_one", 1000))
            for peer, bound in (("pymongo", 2.0), ("motor", 3.0)):
                check(f"[{loop}] {pre}insert_one c=1000 replay ops/s >= {bound}x {peer}", a,
                      idx.get((peer, loop, "replay", "insert_one", 1000)), "ops_per_s", ">=", bound)
            for wl in ("find", "insert_many"):
                check(f"[{loop}] {pre}{wl} 10k c=1 MB/s >= 1.2x pymongo", _pick(idx, api, loop, wl, 1),
                      _pick(idx, "pymongo", loop, wl, 1), "mb_per_s", ">=", 1.2)
            check(f"[{loop}] {pre}peak RSS 10k concurrent find_one <= 0.8x pymongo",
                  _pick(idx, api, loop, "find_one_10k_tasks", 10_000),
                  _pick(idx, "pymongo", loop, "find_one_10k_tasks", 10_000), "peak_rss_mb", "<=",
                  0.8)
            # Issue 17: the distance to the floor (raw) and to mongojet (the Rust driver).
            for peer, bound in (("raw", 1.15), ("mongojet", 0.4)):
                check(f"[{loop}] {pre}find_one c=1 cpu/op <= {bound}x {peer}", am,
                      _pick(idx, peer, loop, "find_one", 1), "cpu_us_per_op", "<=", bound)
            for wl in ("insert_one", "find_one"):
                a = _pick(idx, api, loop, wl, 1000)
                for fig, op, peer, bound in (("ops_per_s", ">=", "raw", 0.85),
                                             ("ops_per_s", ">=", "mongojet", 1.5),
                                             ("cpu_us_per_op", "<=", "raw", 1.2),
                                             ("cpu_us_per_op", "<=", "mongojet", 0.5)):
                    what = "ops/s" if fig == "ops_per_s" else "cpu/op"
                    check(f"[{loop}] {pre}{wl} c=1000 {what} {op} {bound}x {peer}", a,
                          _pick(idx, peer, loop, wl, 1000), fig, op, bound)
            check(f"[{loop}] {pre}insert_many 10k c=1 cpu/op <= 1.1x raw",
                  _pick(idx, api, loop, "insert_many", 1), _pick(idx, "raw", loop, "insert_many", 1),
                  "cpu_us_per_op", "<=", 1.1)
            check(f"[{loop}] {pre}peak RSS 10k concurrent find_one <= 1.1x raw",
                  _pick(idx, api, loop, "find_one_10k_tasks", 10_000),
                  _pick(idx, "raw", loop, "find_one_10k_tasks", 10_000), "peak_rss_mb", "<=", 1.1)
            out.append(dict(target=f"[{loop}] {pre}find 10k to_list cpu/op <= {FLOOR_CPU}x decode floor",
                            status="n-a", detail=f"in-process: {inproc_floor_command(api, loop)}"))
            if api != "amongo":
                # A facade must not cost measurable CPU per op: the PyMongo-style API within
                # FACADE_CPU of the Motor API, over the same engine, same run.
                for wl in ("find_one", "insert_one"):
                    check(f"[{loop}] {pre}{wl} c=1 cpu/op <= {FACADE_CPU}x amongo",
                          _pick(idx, api, loop, wl, 1), _pick(idx, "amongo", loop, wl, 1),
                          "cpu_us_per_op", "<=", FACADE_CPU)
        # uvloop vs asyncio: find_one at the highest concurrency measured on both loops.
        cs = sorted({k[4] for k in idx if k[0] == api and k[3] == "find_one"}, reverse=True)
        pair = None
        for c in cs:
            u, a = _pick(idx, api, "uvloop", "find_one", c), _pick(idx, api, "asyncio",
                                                                   "find_one", c)
            if u and a and u["server"] == a["server"]:
                pair = (u, a, c)
                break
        if pair:
            check(f"{api} uvloop >= 1.2x asyncio (find_one c={pair[2]} ops/s)", pair[0], pair[1],
                  "ops_per_s", ">=", 1.2)
        else:
            out.append(dict(target=f"{api} uvloop >= 1.2x asyncio (find_one ops/s)", status="n-a",
                            detail=f"needs {api} find_one rows on both loops"))
    return out


def inproc_floor_command(api: str = "amongo", loop: str = "asyncio") -> str:
    """The command that measures the find-vs-decode-floor target of *api* on *loop*."""
    return (f"python -m benchmarks.inproc find --drivers {api} --floor"
            + (" --loop uvloop" if loop == "uvloop" else ""))


def format_targets(results: Sequence[Dict[str, Any]]) -> str:
    lines = ["targets"]
    for t in evaluate_targets(results):
        lines.append(f"  {t['status']:5} {t['target']:66} {t['detail']}")
    return "\n".join(lines)


def plot(results: Sequence[Dict[str, Any]], path: str) -> None:
    """The chart of *results* (amongo's ratio to each peer, one panel per workload): see
    :mod:`benchmarks.plot`."""
    from .plot import plot as _plot

    _plot(results, path)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)

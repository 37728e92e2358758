"""Smoke test of the benchmark harness: replay server + one tiny workload per driver."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from benchmarks import harness
from benchmarks.servers import ReplayProcess

TINY = harness.Params(ops=50, seconds=0.3, runs=1, warmup_ops=5, warmup_seconds=0.1)


@pytest.fixture(scope="module")
def replay():
    # Synthetic replies: hermetic, no SecantusDB recording needed.
    with ReplayProcess(None) as rp:
        yield rp


def _check(row, driver):
    assert "error" not in row, row
    assert "unavailable" not in row, row
    rec = harness.json_records([row])
    assert len(rec) == 1
    rec = rec[0]
    assert set(rec) == set(harness.JSON_FIELDS)
    assert rec["driver"] == driver
    assert (rec["loop"], rec["server"], rec["workload"], rec["concurrency"]) == (
        "asyncio", "replay", "find_one", 1)
    for k in ("ops_per_s", "mb_per_s", "cpu_us_per_op", "p50_ms", "p99_ms", "peak_rss_mb"):
        assert isinstance(rec[k], float) and rec[k] > 0, (k, rec)
    assert rec["p99_ms"] >= rec["p50_ms"]


@pytest.mark.parametrize("driver", ["raw", "motor", "pymongo", "amongo-async", "mongojet"])
def test_find_one_on_replay(replay, driver):
    # motor and mongojet come with the test extra (and bench): `make venv` installs them.
    if driver in ("motor", "mongojet") and importlib.util.find_spec(driver) is None:
        pytest.skip(f"{driver} is not installed (pip install -e .[test] or .[bench])")
    if driver == "pymongo":
        try:
            from pymongo import AsyncMongoClient  # noqa: F401
        except ImportError:
            pytest.skip("pymongo.AsyncMongoClient is not available (needs pymongo >= 4.9)")
    row = harness.measure_one(replay.uri, driver, "asyncio", "replay", "find_one", 1, TINY,
                              timeout=15)
    _check(row, driver)


def test_targets_and_table_render():
    rows = [dict(driver=d, loop="asyncio", server="replay", workload="find_one", concurrency=1,
                 ops_per_s=1000.0 * (i + 1), mb_per_s=1.0, cpu_us_per_op=100.0 / (i + 1),
                 p50_ms=1.0, p99_ms=2.0, peak_rss_mb=30.0)
            for i, d in enumerate(["pymongo", "motor", "raw", "amongo"])]
    table = harness.format_table(rows)
    assert "amongo" in table and "x_pymongo" in table
    status = {t["target"]: t["status"] for t in harness.evaluate_targets(rows)}
    assert status["[asyncio] find_one c=1 cpu/op <= 0.5x pymongo"] == "PASS"
    assert status["[asyncio] find 10k c=1 MB/s >= 1.2x pymongo"] == "n-a"
    assert not any("amongo-async" in t for t in status)  # (not measured: no targets of its own)


def test_amongo_async_row_targets_and_facade_ratio():
    """The PyMongo-style API is a driver row of its own with the Motor API's targets, plus the
    facade check against the Motor API (CPU per op within harness.FACADE_CPU)."""
    def row(d, wl, cpu):
        return dict(driver=d, loop="asyncio", server="replay", workload=wl, concurrency=1,
                    ops_per_s=1e6 / cpu, mb_per_s=1.0, cpu_us_per_op=cpu, p50_ms=1.0,
                    p99_ms=2.0, peak_rss_mb=30.0)

    rows = [row("pymongo", "find_one", 300.0), row("amongo", "find_one", 100.0),
            row("amongo-async", "find_one", 104.0), row("amongo", "insert_one", 100.0),
            row("amongo-async", "insert_one", 125.0)]
    table = harness.format_table(rows)
    line = next(ln for ln in table.splitlines() if "amongo-async" in ln and "find_one" in ln)
    assert line.split()[-4] == "2.88"  # x_pymongo: 300/104 (then x_motor, x_mongojet, x_raw)
    status = {t["target"]: t["status"] for t in harness.evaluate_targets(rows)}
    assert status["[asyncio] amongo-async find_one c=1 cpu/op <= 0.5x pymongo"] == "PASS"
    assert status[f"[asyncio] amongo-async find_one c=1 cpu/op <= {harness.FACADE_CPU}x amongo"] == "PASS"
    assert status[f"[asyncio] amongo-async insert_one c=1 cpu/op <= {harness.FACADE_CPU}x amongo"] == "FAIL"
    assert status["[asyncio] amongo-async find_one c=1 cpu/op <= 0.33x motor"] == "n-a"
    ratios = harness.format_ratios(rows)
    assert any("amongo-async" in ln and "/amongo: x0.96 thr, x1.04 cpu" in ln
               for ln in ratios.splitlines()), ratios


def test_mongojet_workloads_on_replay(replay):
    """mongojet (the Rust driver, which rejects a cursor id that is not an Int64) runs every
    workload it has an operation for against the replay server, cursors with getMore included;
    bulk_write, which mongojet 0.5.8 lacks, is an "unavailable" row, not a failed run."""
    if importlib.util.find_spec("mongojet") is None:
        pytest.skip("mongojet is not installed (pip install -e .[test] or .[bench])")
    tiny = harness.Params(ops=2, seconds=0.2, runs=1, warmup_ops=1, warmup_seconds=0.05)
    combos = [("mongojet", "asyncio"), ("mongojet", "uvloop")]
    for workload in ("hello", "insert_one", "find", "aggregate"):
        for row in harness.measure_interleaved(replay.uri, combos, "replay", workload, 1, tiny,
                                               timeout=30):
            assert "error" not in row and "unavailable" not in row, row
            assert row["ops_per_s"] > 0
    (row,) = harness.measure_interleaved(replay.uri, combos[:1], "replay", "bulk_write", 1, tiny,
                                         timeout=30)
    assert row.get("unavailable") == "unsupported: mongojet 0.5.8 has no bulk_write", row
    assert "unavailable: unsupported: mongojet 0.5.8 has no bulk_write" in harness.format_table([row])


def test_replay_cursor_ids_are_int64():
    """Every cursor reply carries its id as a BSON Int64 (type 0x12), even a recorded int32 0:
    the Rust driver (mongojet) refuses anything else."""
    import bson

    from benchmarks.replay import ReplayServer, Store

    def cursor_id_type(reply: bytes) -> int:
        cur = bson.decode(reply, codec_options=bson.CodecOptions())["cursor"]
        raw = bson.encode({"id": cur["id"]})  # Int64 survives a decode/encode, int32 does not
        return raw[4]

    store = Store(Store.synthetic().hello, {
        ("find", "c"): [{"cursor": {"firstBatch": [{"a": 1}], "id": 0, "ns": "db.c"}, "ok": 1.0}],
        ("find", "d"): [{"cursor": {"firstBatch": [], "id": 7, "ns": "db.d"}, "ok": 1.0},
                        {"cursor": {"nextBatch": [], "id": 0, "ns": "db.d"}, "ok": 1.0}]})
    server = ReplayServer(store)

    class Proto:
        def hello(self) -> bytes:
            return b""

    for coll in ("c", "d"):
        reply, _ = server.answer(bson.encode({"find": coll, "$db": "db"}), [], Proto())
        assert cursor_id_type(reply) == 0x12, coll
    (cid,) = server.cursors
    more, _ = server.answer(bson.encode({"getMore": bson.Int64(cid), "collection": "d",
                                         "$db": "db"}), [], Proto())
    assert cursor_id_type(more) == 0x12 and "nextBatch" in bson.decode(more)["cursor"]
    empty, _ = server.answer(bson.encode({"find": "other", "$db": "db"}), [], Proto())
    assert cursor_id_type(empty) == 0x12


def test_issue17_targets_against_raw_and_mongojet():
    """The issue-17 targets: computed from the run for each loop and each amongo API."""
    def row(d, wl, c, ops, cpu, rss=30.0):
        return dict(driver=d, loop="uvloop", server="replay", workload=wl, concurrency=c,
                    ops_per_s=ops, mb_per_s=1.0, cpu_us_per_op=cpu, p50_ms=1.0, p99_ms=2.0,
                    peak_rss_mb=rss)

    rows = [row("raw", "find_one", 1, 10000.0, 40.0), row("mongojet", "find_one", 1, 4000.0, 200.0),
            row("amongo", "find_one", 1, 9000.0, 45.0),
            row("amongo-async", "find_one", 1, 8000.0, 50.0),
            row("raw", "insert_one", 1000, 20000.0, 30.0),
            row("mongojet", "insert_one", 1000, 10000.0, 100.0),
            row("amongo", "insert_one", 1000, 18000.0, 35.0),
            row("raw", "find_one_10k_tasks", 10_000, 1.0, 1.0, rss=60.0),
            row("amongo", "find_one_10k_tasks", 10_000, 1.0, 1.0, rss=80.0)]
    status = {t["target"]: t["status"] for t in harness.evaluate_targets(rows)}
    assert status["[uvloop] find_one c=1 cpu/op <= 1.15x raw"] == "PASS"  # 45/40
    assert status["[uvloop] find_one c=1 cpu/op <= 0.4x mongojet"] == "PASS"  # 45/200
    assert status["[uvloop] amongo-async find_one c=1 cpu/op <= 1.15x raw"] == "FAIL"  # 50/40
    assert status["[uvloop] insert_one c=1000 ops/s >= 0.85x raw"] == "PASS"  # 0.9
    assert status["[uvloop] insert_one c=1000 ops/s >= 1.5x mongojet"] == "PASS"  # 1.8
    assert status["[uvloop] insert_one c=1000 cpu/op <= 1.2x raw"] == "PASS"  # 1.17
    assert status["[uvloop] insert_one c=1000 cpu/op <= 0.5x mongojet"] == "PASS"  # 0.35
    assert status["[uvloop] find_one c=1000 ops/s >= 0.85x raw"] == "n-a"
    assert status["[uvloop] peak RSS 10k concurrent find_one <= 1.1x raw"] == "FAIL"  # 1.33
    assert status["[uvloop] insert_many 10k c=1 cpu/op <= 1.1x raw"] == "n-a"
    floor = [t for t in harness.evaluate_targets(rows) if "decode floor" in t["target"]]
    assert floor and all(t["status"] == "n-a" and "benchmarks.inproc find" in t["detail"]
                         and "--floor" in t["detail"] for t in floor)
    table = harness.format_table(rows)
    header, _, first = table.splitlines()[:3]
    assert header.split()[-4:] == ["x_pymongo", "x_motor", "x_mongojet", "x_raw"]
    line = next(ln for ln in table.splitlines() if ln.split()[3:5] == ["amongo", "uvloop"])
    assert line.split()[-2:] == ["2.25", "0.90"]  # find_one c=1: 9000/4000, 9000/10000
    assert "/mongojet: x2.25 thr, x0.23 cpu" in harness.format_ratios(rows)


def test_replay_counts_documents_in_a_body_array_and_a_sequence():
    """The replay server answers inserts with the right ``n`` whether the documents come as a
    kind-1 sequence or as an array in the command body (amongo's insert_many), without decoding."""
    import bson

    from benchmarks.wire import count_array, count_docs

    for docs in ([], [{}], [{"a": 1}] * 3, [{"s": "y" * 50, "n": {"k": [1, 2]}}] * 1234):
        body = bson.encode({"insert": "c", "ordered": True, "documents": docs, "lsid": {"id": 1}})
        assert count_array(body, "documents") == len(docs)
        seq = memoryview(b"".join(bson.encode(d) for d in docs))
        assert count_docs(seq) == len(docs)
    assert count_array(bson.encode({"insert": "c"}), "documents") == 0


def test_interleaved_runs_on_replay(replay):
    """The default mode: one warm worker per driver and loop, runs taken in rotating rounds."""
    params = harness.Params(ops=50, seconds=0.3, runs=2, warmup_ops=5, warmup_seconds=0.1)
    combos = [("amongo", "asyncio"), ("raw", "asyncio")]
    rows = harness.measure_interleaved(replay.uri, combos, "replay", "find_one", 1, params,
                                       timeout=30)
    assert [(r["driver"], r["loop"]) for r in rows] == combos
    for row in rows:
        _check(row, row["driver"])
        assert row["runs"] == 2 and len(row["run_ops_per_s"]) == 2


def test_inproc_side_by_side(capsys):
    """``python -m benchmarks.inproc``: drivers alternating in one process (synthetic replay)."""
    from benchmarks import inproc

    drivers = ["amongo", "amongo-async", "raw"]
    if importlib.util.find_spec("mongojet") is not None:  # (the test and bench extras have it)
        drivers.append("mongojet")
    assert inproc.main(["find", "--drivers", ",".join(drivers), "--floor", "--rounds", "2",
                        "--ops", "1", "--synthetic"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in drivers + ["floor"]:
        line = next(ln for ln in lines if ln.split()[:1] == [name])
        assert float(line.split()[-1]) > 0, line
    # then the ratios, and the issue-17 floor target for each amongo API
    ratios = lines[lines.index(next(ln for ln in lines if ln.startswith("cpu/op ratios"))):]
    for api in ("amongo", "amongo-async"):
        line = next(ln for ln in ratios if ln.split()[:1] == [api])
        assert "/floor: x" in line and "/raw: x" in line, line
        assert "target <= 1.05x floor: PASS" in line or "target <= 1.05x floor: FAIL" in line


def test_bytecode_profile_counts_the_drivers_functions(capsys):
    # (the deterministic hot-path profile: the raw floor executes fewer bytecodes than the
    # driver, and the driver's executor appears by name)
    from benchmarks import bytecodes

    assert bytecodes.main(["amongo", "find_one", "20", "--top", "50"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("amongo find_one: ") and "engine/executor.py:_command" in out
    assert bytecodes.main(["raw", "find_one", "20"]) == 0
    raw = capsys.readouterr().out.splitlines()[0]
    assert int(raw.split()[2]) < int(first.split()[2])


def test_per_op_counters_run_with_many_tasks(capsys, monkeypatch):
    """The load-independent counters issue 17 compares the two APIs with: ``benchmarks.nosock``
    (fake transport) and ``benchmarks.calls`` with several tasks, and ``benchmarks.inproc
    --marks`` (the callgrind dump marks around each round)."""
    from benchmarks import calls, inproc, nosock

    monkeypatch.setattr(sys, "argv", ["nosock", "amongo-async", "find_one", "40", "10"])
    assert nosock.main() == 0
    assert "amongo-async find_one c=10:" in capsys.readouterr().out
    assert calls.main(["insert_one", "--drivers", "amongo,amongo-async", "--ops", "40",
                       "--concurrency", "10"]) == 0
    out = capsys.readouterr().out
    for api in ("amongo", "amongo-async"):
        line = next(ln for ln in out.splitlines() if ln.split()[:2] == ["insert_one", api])
        assert float(line.split()[2]) > 0 and line.endswith("(c=10)"), line
    assert inproc.main(["find_one", "--drivers", "amongo,amongo-async", "--rounds", "2",
                        "--ops", "20", "--concurrency", "5", "--synthetic", "--marks"]) == 0
    marks = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("mark: ")]
    assert marks == ["mark: round 0 amongo", "mark: round 0 amongo-async",
                     "mark: round 1 amongo-async", "mark: round 1 amongo"]

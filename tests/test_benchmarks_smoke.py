"""Smoke test of the benchmark harness: replay server + one tiny workload per driver."""
from __future__ import annotations

import importlib.util

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


@pytest.mark.parametrize("driver", ["raw", "motor", "pymongo", "amongo-async"])
def test_find_one_on_replay(replay, driver):
    if driver == "motor" and importlib.util.find_spec("motor") is None:
        pytest.skip("motor is not installed (pip install -e .[bench])")
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
    assert line.split()[-3] == "2.88"  # x_pymongo: 300/104
    status = {t["target"]: t["status"] for t in harness.evaluate_targets(rows)}
    assert status["[asyncio] amongo-async find_one c=1 cpu/op <= 0.5x pymongo"] == "PASS"
    assert status[f"[asyncio] amongo-async find_one c=1 cpu/op <= {harness.FACADE_CPU}x amongo"] == "PASS"
    assert status[f"[asyncio] amongo-async insert_one c=1 cpu/op <= {harness.FACADE_CPU}x amongo"] == "FAIL"
    assert status["[asyncio] amongo-async find_one c=1 cpu/op <= 0.33x motor"] == "n-a"
    ratios = harness.format_ratios(rows)
    assert any("amongo-async" in ln and "/amongo: x0.96 thr, x1.04 cpu" in ln
               for ln in ratios.splitlines()), ratios


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

    assert inproc.main(["find", "--drivers", "amongo,amongo-async,raw", "--floor", "--rounds", "2",
                        "--ops", "1", "--synthetic"]) == 0
    out = capsys.readouterr().out
    for name in ("amongo", "amongo-async", "raw", "floor"):
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
        assert float(line.split()[-1]) > 0, line

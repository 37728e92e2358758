"""``python -m benchmarks``: amongo vs Motor vs PyMongo async vs a raw asyncio floor."""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from . import harness
from .drivers import DRIVERS
from .workloads import WORKLOADS


def _list(s: str) -> List[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="< 2 min: replay server only, c=1,1000, 2 short runs")
    ap.add_argument("--drivers", type=_list, default=list(DRIVERS),
                    help=f"comma list of {','.join(DRIVERS)}")
    ap.add_argument("--loops", type=_list, default=list(harness.LOOPS), help="asyncio,uvloop")
    ap.add_argument("--servers", type=_list, default=None,
                    help="secantus,replay (default both; --quick: replay)")
    ap.add_argument("--workloads", type=_list, default=list(harness.DEFAULT_WORKLOADS),
                    help=f"comma list of {','.join(WORKLOADS)} or 'all' "
                         "(find_one_10k_tasks, the memory mode, only when named)")
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in _list(s)], default=None,
                    help="comma list of task counts (default 1,100,1000; --quick 1,1000; "
                         "non-single-document workloads run only at <= 100)")
    ap.add_argument("--secantus-concurrency", type=lambda s: [int(x) for x in _list(s)],
                    default=None,
                    help="task counts against SecantusDB (default: --concurrency if given, "
                         "else 1: the server is the bottleneck with more tasks)")
    ap.add_argument("--runs", type=int, default=None, help="measured runs per row (median)")
    ap.add_argument("--uri", default=None,
                    help="benchmark this deployment instead of starting SecantusDB "
                         "(rows get server 'uri'; also used to record the replay store)")
    ap.add_argument("--rerecord", action="store_true", help="record the replay store again")
    ap.add_argument("--synthetic", action="store_true",
                    help="replay synthesized replies (no recording, no SecantusDB needed)")
    ap.add_argument("--json", dest="json_path", default=None, help="write records to PATH")
    ap.add_argument("--plot", dest="plot_path", default=None, help="write a PNG chart to PATH")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per measurement")
    args = ap.parse_args(argv)

    workloads = list(WORKLOADS) if args.workloads == ["all"] else args.workloads
    for name, values, allowed in (("driver", args.drivers, DRIVERS),
                                  ("loop", args.loops, harness.LOOPS),
                                  ("server", args.servers or [], harness.SERVERS),
                                  ("workload", workloads, tuple(WORKLOADS))):
        bad = [v for v in values if v not in allowed]
        if bad:
            ap.error(f"unknown {name}(s) {bad}; choose from {', '.join(allowed)}")
    if "uvloop" in args.loops:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("uvloop not installed: skipping the uvloop rows", file=sys.stderr)
            args.loops = [x for x in args.loops if x != "uvloop"]

    cfg = harness.Config(drivers=args.drivers, loops=args.loops, servers=args.servers,
                         workloads=workloads, concurrency=args.concurrency,
                         secantus_concurrency=args.secantus_concurrency, quick=args.quick,
                         runs=args.runs, uri=args.uri, rerecord=args.rerecord,
                         synthetic=args.synthetic, timeout=args.timeout)
    t0 = time.monotonic()
    results = harness.run(cfg)
    print()
    print(harness.format_table(results))
    print()
    print(harness.format_ratios(results))
    print()
    print(harness.format_targets(results))
    print(f"\n{len(harness.ok_rows(results))} rows measured in {time.monotonic() - t0:.0f}s")
    if args.json_path:
        harness.write_json(results, args.json_path)
        print(f"wrote {args.json_path}")
    if args.plot_path:
        try:
            harness.plot(results, args.plot_path)
            print(f"wrote {args.plot_path}")
        except ImportError:
            print("--plot needs matplotlib (pip install -e .[bench])", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark chart: amongo's throughput relative to each peer, one panel per workload.

``python -m benchmarks.plot RESULTS.json OUT.png`` redraws it from a ``--json`` results file
(no benchmark is run); ``python -m benchmarks --plot OUT.png`` draws it after a run.

Each replay-server panel is one workload; bars are amongo's ops/s (its Motor API,
``amongo``) divided by PyMongo's, Motor's, mongojet's and raw's in the same run (solid:
asyncio, hatched: uvloop) at each concurrency the workload ran at, on a log axis centred on
parity (1.0, dashed); a black diamond on a bar is the same ratio for the PyMongo-style API
(``amongo-async``), when it was measured.  Against SecantusDB the server
is the bottleneck, so throughput ratios sit near 1; its panel shows client CPU per operation
instead, as the peer's over amongo's (also higher is better), at one task.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

PEERS = (("pymongo", "PyMongo", "#4C72B0"), ("motor", "Motor", "#DD8452"),
         ("mongojet", "mongojet", "#55A868"), ("raw", "raw floor", "#8C8C8C"))
#: The PyMongo-style API's ratios: a marker over the Motor API's bar for the same peer and loop.
ASYNC_API = "amongo-async"
LOOPS = (("asyncio", None), ("uvloop", "///"))
WORKLOAD_ORDER = ("hello", "find_one", "insert_one", "insert_many", "find", "aggregate", "bulk_write")
TITLES = {
    "hello": "hello (round trip)",
    "find_one": "find_one (tweet)",
    "insert_one": "insert_one (small doc)",
    "insert_many": "insert_many (10k small docs)",
    "find": "find (10k small docs)",
    "aggregate": "aggregate (100 docs)",
    "bulk_write": "bulk_write (20 mixed ops)",
}


def _rows(results: Sequence[Dict[str, Any]]) -> Dict[Tuple[str, str, str, str, int], Dict[str, Any]]:
    return {(r["driver"], r["loop"], r["server"], r["workload"], r["concurrency"]): r
            for r in results if "ops_per_s" in r}


def _ratio(idx: Dict[Tuple[str, str, str, str, int], Dict[str, Any]], key: Tuple[str, str, str, int],
           peer: str, metric: str, invert: bool = False, api: str = "amongo") -> Optional[float]:
    loop, server, wl, c = key
    a = idx.get((api, loop, server, wl, c))
    p = idx.get((peer, loop, server, wl, c))
    if not a or not p or not a.get(metric) or not p.get(metric):
        return None
    return p[metric] / a[metric] if invert else a[metric] / p[metric]


def _panel(ax: Any, idx: Dict[Tuple[str, str, str, str, int], Dict[str, Any]], groups: List[Tuple[str, str, int]],
           labels: List[str], metric: str, invert: bool, title: str) -> None:
    import matplotlib.ticker as mticker

    series = [(peer, color, loop, hatch) for peer, _n, color in PEERS for loop, hatch in LOOPS]
    width = 0.8 / len(series)
    values: List[float] = []
    for k, (peer, color, loop, hatch) in enumerate(series):
        xs, ys = [], []
        for i, (server, wl, c) in enumerate(groups):
            v = _ratio(idx, (loop, server, wl, c), peer, metric, invert)
            if v is not None:
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(v)
        values += ys
        ax.bar(xs, ys, width, color=color, hatch=hatch, edgecolor="white" if hatch is None else color,
               facecolor=color if hatch is None else "white", linewidth=0.8)
        # The PyMongo-style API (amongo-async) over the same peer: a marker on the bar's axis.
        mx, my = [], []
        for i, (server, wl, c) in enumerate(groups):
            v = _ratio(idx, (loop, server, wl, c), peer, metric, invert, api=ASYNC_API)
            if v is not None:
                mx.append(i - 0.4 + width * (k + 0.5))
                my.append(v)
        values += my
        if mx:
            ax.scatter(mx, my, marker="D", s=14, color="black", zorder=3, linewidths=0)
    ax.set_yscale("log", base=2)
    lo = min(values + [1.0]) / 1.25
    hi = max(values + [1.0]) * 1.25
    ax.set_ylim(lo, hi)
    steps = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4) if hi / lo <= 4.5 else (0.25, 0.5, 1, 2, 4, 8, 16)
    ticks = [t for t in steps if lo <= t <= hi]
    ax.yaxis.set_major_locator(mticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _p: f"{v:g}×"))
    ax.yaxis.set_minor_locator(mticker.NullLocator())
    ax.axhline(1.0, color="black", linewidth=0.9, linestyle="--")
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title(title, fontsize=9.5)


def plot(results: Sequence[Dict[str, Any]], path: str) -> None:
    """Draw the chart for *results* (the ``--json`` records) into the PNG *path*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    idx = _rows(results)
    if not any(k[0] == "amongo" for k in idx):
        raise ValueError("nothing to plot: no amongo rows")
    panels: List[Tuple[List[Tuple[str, str, int]], List[str], str, bool, str]] = []
    for wl in WORKLOAD_ORDER:
        cs = sorted({k[4] for k in idx if k[2] == "replay" and k[3] == wl and k[0] == "amongo"})
        if cs:
            panels.append(([("replay", wl, c) for c in cs], [f"{c} task{'s' if c > 1 else ''}" for c in cs],
                           "ops_per_s", False, f"replay · {TITLES.get(wl, wl)}: ops/s ratio"))
    sec = [wl for wl in WORKLOAD_ORDER if ("amongo", "asyncio", "secantus", wl, 1) in idx]
    if sec:
        panels.append(([("secantus", wl, 1) for wl in sec], [wl.replace("_", "_\n") for wl in sec],
                       "cpu_us_per_op", True, "SecantusDB, 1 task: client CPU/op, peer ÷ amongo"))
    if not panels:
        raise ValueError("nothing to plot: no amongo/peer pairs")
    ncols = 2 if len(panels) > 1 else 1
    nrows = (len(panels) + ncols - 1) // ncols
    fig = plt.figure(figsize=(9, 2.55 * nrows + 1.1))
    grid = fig.add_gridspec(nrows, ncols)
    for n, (groups, labels, metric, invert, title) in enumerate(panels):
        row, col = divmod(n, ncols)
        # An odd last panel spans the whole row: no empty slot.
        spec = grid[row, :] if (n == len(panels) - 1 and col == 0 and ncols > 1) else grid[row, col]
        _panel(fig.add_subplot(spec), idx, groups, labels, metric, invert, title)
    handles = [Patch(facecolor=color, edgecolor=color, label=f"vs {name}") for _p, name, color in PEERS]
    handles += [Patch(facecolor="#444444", label="asyncio"),
                Patch(facecolor="white", edgecolor="#444444", hatch="///", label="uvloop")]
    if any(k[0] == ASYNC_API for k in idx):
        handles.append(Line2D([], [], marker="D", markersize=4.5, color="black", linestyle="none",
                              label="amongo.AsyncMongoClient"))
    fig.legend(handles=handles, loc="upper center", ncol=(len(handles) + 1) // 2, fontsize=8.5,
               frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.suptitle("amongo ÷ peer, same run (bars: Motor API, ◆: PyMongo-style API; above 1× = "
                 "amongo better; log scale)", fontsize=10, y=0.955)
    fig.tight_layout(rect=(0, 0, 1, 0.945))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m benchmarks.plot RESULTS.json OUT.png", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        results = json.load(f)
    plot(results, argv[1])
    print(f"wrote {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

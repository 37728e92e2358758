"""Fuzz campaigns (hypothesis through fake servers on real sockets); see fuzzlib.py.

``make test`` runs the bounded, deterministic campaign; ``make fuzz`` a longer one
(``AMONGO_FUZZ_EXAMPLES`` scales every target). The cases tried per target are printed at the
end of the run.
"""
from __future__ import annotations

from typing import Any

import pytest

from fuzzlib import CASES, SCALE


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES:
        return
    tr = terminalreporter
    tr.section(f"fuzz cases per target (AMONGO_FUZZ_EXAMPLES={SCALE:g})")
    for target, n in sorted(CASES.items()):
        tr.write_line(f"{target:<28} {n:>7}")
    tr.write_line(f"{'total':<28} {sum(CASES.values()):>7}")


@pytest.fixture(scope="module")
def runner() -> Any:
    from fuzzlib import LoopRunner

    r = LoopRunner()
    yield r
    r.close()

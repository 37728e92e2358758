"""Per-suite passed / skipped / failed counts from a pytest JUnit XML report of the unified
suites (the table in tests/specs/README.md)::

    .venv/bin/python -m pytest tests/unified -q --junitxml=/tmp/unified.xml
    .venv/bin/python tests/unified/summary.py /tmp/unified.xml

With ``--skips`` it also lists every distinct skip reason with its count.
"""
from __future__ import annotations

import collections
import re
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

#: pytest function -> the server it runs against
SERVERS = {
    "test_unified": "SecantusDB",
    "test_unified_auth": "SecantusDB --auth",
    "test_unified_single": "SecantusDB --standalone",
    "test_invalid_file_rejected": "offline (schema)",
    "test_valid_file_accepted": "offline (schema)",
    "test_unified_nx": "nx-27017",
    "test_valid_fail": "SecantusDB (runner must fail)",
    "test_unified_csot": "SecantusDB",
}

MULTI_PART = (
    "unified-test-format/valid-pass", "unified-test-format/valid-fail", "unified-test-format/invalid",
    "read-write-concern/operation",
    "server-discovery-and-monitoring/unified", "server-selection/logging",
    "connection-monitoring-and-pooling/logging", "auth/unified",
)


def suite_of(test_id: str) -> str:
    for prefix in MULTI_PART:
        if test_id.startswith(prefix + "/"):
            return prefix
    return test_id.split("/", 1)[0]


def summarize(path: str) -> Tuple[Dict[Tuple[str, str], collections.Counter], collections.Counter]:
    rows: Dict[Tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    reasons: collections.Counter = collections.Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        m = re.match(r"(\w+)\[(.*)\]$", name)
        if not m:
            continue
        func, test_id = m.groups()
        if func not in SERVERS:
            continue
        suite = "every unified file used (accepted)" if func == "test_valid_file_accepted" else suite_of(test_id)
        key = (suite, SERVERS[func])
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            rows[key]["failed"] += 1
        elif skipped is not None and skipped.get("type") == "pytest.xfail":
            rows[key]["xfailed"] += 1  # tests/unified/known_failures.py: amongo gaps
        elif skipped is not None:
            rows[key]["skipped"] += 1
            reasons[(skipped.get("message") or "").replace("Skipped: ", "", 1)] += 1
        else:
            rows[key]["passed"] += 1
    return rows, reasons


def main(argv: List[str]) -> None:
    rows, reasons = summarize(argv[1])
    print("| suite | server | passed | skipped | failed | xfailed (amongo gap) | total |")
    print("|---|---|---|---|---|---|---|")
    totals: collections.Counter = collections.Counter()
    for (suite, server), c in sorted(rows.items()):
        total = sum(c.values())
        totals.update(c)
        print(f"| {suite} | {server} | {c['passed']} | {c['skipped']} | {c['failed']} | {c['xfailed']} | {total} |")
    print(f"| **all** | | {totals['passed']} | {totals['skipped']} | {totals['failed']} | {totals['xfailed']} | "
          f"{sum(totals.values())} |")
    if "--skips" in argv:
        print()
        for reason, n in reasons.most_common():
            print(f"{n:5d}  {reason}")


if __name__ == "__main__":
    main(sys.argv)

"""Run Beanie's own test suite, unchanged, with ``motor`` served by amongo (``make test-odm``).

::

    python tests/odm/run_beanie.py --python .venv-odm/bin/python [--driver amongo|motor]
        [--junitxml FILE] [-- PYTEST_ARGS...]

Downloads the Beanie sdist (its tests ship in it) with ``pip download --no-deps --no-binary
:all: beanie==VERSION`` into ``build/odm`` once, starts nx-27017 (``tests/servers.py``) on a
free port, and runs ``pytest tests`` in the unpacked sdist with the interpreter of
``--python`` (a venv with Beanie's test dependencies and amongo, see the Makefile) and
``-p amongo_as_motor``, the plugin that calls ``amongo.install_as_motor()`` before Beanie
imports motor (``--driver motor``: the real Motor 3.7.1, the baseline). Beanie's settings read
``MONGODB_DSN``, which points at the nx-27017 server. Run this script with the project's
``.venv`` interpreter (it has nx-27017).

Some of Beanie's tests fail on nx-27017 with any driver (server features it lacks), so the
exit status says whether every test that passes with Motor 3.7.1 (listed in
``beanie-1.30.0-motor-passed.txt``, written by ``--driver motor --write-baseline``) passed;
with explicit pytest arguments (a subset) it is pytest's own.

Beanie's pyproject adds ``--cov`` (pytest-cov is not installed here): ``-o addopts=`` drops it;
nothing else of Beanie's configuration changes (``filterwarnings = error`` included).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Set

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import Server  # noqa: E402


def beanie_dir(python: str, version: str, build: Path) -> Path:
    """The unpacked sdist, downloaded on first use."""
    target = build / f"beanie-{version}"
    if (target / "tests" / "conftest.py").exists():
        return target
    build.mkdir(parents=True, exist_ok=True)
    sdist = build / f"beanie-{version}.tar.gz"
    if not sdist.exists():
        subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"beanie=={version}", "-d", str(build)], check=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(build)  # noqa: S202 - PyPI sdist of a pinned version
    return target


#: Tests that pass with Motor 3.7.1 on nx-27017 (``--driver motor --write-baseline``); the
#: amongo run must pass every one of them.
BASELINE = HERE / "beanie-1.30.0-motor-passed.txt"
#: Tests whose outcome depends on the order nx-27017 returns distinct values in (they assert
#: a list order the server does not promise): reported, not required.
ORDER_DEPENDENT = {
    "tests/odm/documents/test_distinct.py::test_distinct_unique",
    "tests/odm/documents/test_distinct.py::test_distinct_different_value",
}


def passed_tests(junitxml: Path) -> Set[str]:
    """Node ids of the tests that passed, from pytest's JUnit XML."""
    passed = set()
    for case in ET.parse(junitxml).getroot().iter("testcase"):
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            continue
        parts = case.get("classname", "").split(".")
        # classname "tests.odm.test_x.TestA.TestB": the module path ends at the first Test* part
        idx = next((i for i, p in enumerate(parts) if p.startswith("Test")), len(parts))
        path = "/".join(parts[:idx]) + ".py"
        passed.add("::".join([path, *parts[idx:], case.get("name", "")]))
    return passed


def compare(junitxml: Path, write_baseline: bool) -> int:
    """Check the run against the baseline; 0 when every baseline test passed."""
    passed = passed_tests(junitxml)
    if write_baseline:
        BASELINE.write_text("".join(f"{t}\n" for t in sorted(passed)))
        print(f"baseline: {len(passed)} passing tests written to {BASELINE}")
        return 0
    wanted = {t for t in BASELINE.read_text().splitlines() if t} - ORDER_DEPENDENT
    missing = sorted(wanted - passed)
    extra = sorted(passed - wanted)
    print(f"\n{len(wanted) - len(missing)} of the {len(wanted)} tests that pass with Motor 3.7.1 pass "
          f"(+{len(extra)} more: {', '.join(extra) or 'none'}); {len(passed)} passed in all")
    for t in missing:
        print(f"  NOT PASSING: {t}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", required=True, help="interpreter of the venv with Beanie's test deps")
    ap.add_argument("--driver", choices=("amongo", "motor"), default="amongo")
    ap.add_argument("--beanie-version", default="1.30.0")
    ap.add_argument("--build", default=str(ROOT / "build" / "odm"))
    ap.add_argument("--write-baseline", action="store_true",
                    help=f"(with --driver motor) record the passing tests in {BASELINE.name}")
    ap.add_argument("--no-compare", action="store_true", help="exit with pytest's status instead")
    ap.add_argument("pytest_args", nargs="*", help="after --: pytest arguments (default: tests)")
    args = ap.parse_args(argv)
    args.python = os.path.abspath(args.python)  # (not resolve(): a venv's python is a symlink)

    src = beanie_dir(args.python, args.beanie_version, Path(args.build))
    server = Server("nx")
    server.start()
    try:
        env = dict(os.environ)
        env["MONGODB_DSN"] = f"mongodb://{server.address_str}/beanie_db"
        env["AMONGO_ODM_DRIVER"] = args.driver
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        cmd = [args.python, "-m", "pytest", "-p", "amongo_as_motor", "-p", "no:cacheprovider",
               "-o", "addopts=", "-q", "--timeout=120"]
        junitxml = Path(args.build).resolve() / f"beanie-{args.driver}.xml"
        cmd.append(f"--junitxml={junitxml}")
        cmd += args.pytest_args or ["tests"]
        print("$", " ".join(cmd), f"(in {src}, MONGODB_DSN={env['MONGODB_DSN']})", flush=True)
        rc = subprocess.run(cmd, cwd=src, env=env).returncode
        if args.no_compare or rc not in (0, 1) or args.pytest_args:
            return rc
        return compare(junitxml, args.write_baseline)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())

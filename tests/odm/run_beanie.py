"""Run Beanie's own test suite, unchanged, with its driver served by amongo (``make test-odm``).

::

    python tests/odm/run_beanie.py --python .venv-odm/bin/python [--driver amongo|motor]
        [-- PYTEST_ARGS...]
    python tests/odm/run_beanie.py --python .venv-odm2/bin/python --beanie-version 2.1.0
        [--driver amongo|pymongo] [-- PYTEST_ARGS...]

Beanie 1.x is built on Motor: its run uses the ``amongo_as_motor`` plugin. Beanie 2.x is built on
PyMongo's async API (``pymongo.AsyncMongoClient``): its run uses ``-p amongo_as_pymongo``, which
replaces ``pymongo.AsyncMongoClient`` with ``amongo.AsyncMongoClient`` (``--driver pymongo``: the
real PyMongo 4.20.1 client, the baseline). Each version has its own list of the tests that pass
with the real driver (``beanie-VERSION-DRIVER-passed.txt``).

Downloads the Beanie sdist (its tests ship in it) with ``pip download --no-deps --no-binary
:all: beanie==VERSION`` into ``build/odm`` once, starts nx-27017 (``tests/servers.py``) on a
free port, and runs ``pytest tests`` in the unpacked sdist with the interpreter of
``--python`` (a venv with Beanie's test dependencies and amongo, see the Makefile) and
``-p amongo_as_motor``, the plugin that calls ``amongo.install_as_motor()`` before Beanie
imports motor (``--driver motor``: the real Motor 3.7.1, the baseline). Beanie's settings read
``MONGODB_DSN``, which points at the nx-27017 server. Run this script with the project's
``.venv`` interpreter (it has nx-27017).

Some of Beanie's tests fail on nx-27017 with any driver (server features it lacks), so the
exit status says whether every test that passes with the real driver (listed in
``beanie-1.30.0-motor-passed.txt`` / ``beanie-2.1.0-pymongo-passed.txt``, written by
``--driver motor|pymongo --write-baseline``) passed; with explicit pytest arguments (a subset) it
is pytest's own.

nx-27017 rejects hyphens in collection names, and Beanie 2.1.0 names one collection
``vehicles-custom-class-id`` (tests/odm/models.py, asserted in
tests/odm/documents/test_inheritance.py): after unpacking, the harness renames it
``vehicles_custom_class_id`` in those two files (``PATCHES``), for every driver alike.

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
from typing import Dict, List, NamedTuple, Set, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import Server  # noqa: E402


class Profile(NamedTuple):
    """How one Beanie version is run: the driver it is built on and the plugin serving it."""

    reference: str  #: the real driver of the baseline run ("motor" or "pymongo")
    plugin: str  #: the pytest plugin (-p) that puts amongo in its place
    label: str  #: the real driver's name in messages


PROFILES: Dict[str, Profile] = {
    "1.30.0": Profile("motor", "amongo_as_motor", "Motor 3.7.1"),
    "2.1.0": Profile("pymongo", "amongo_as_pymongo", "PyMongo 4.20.1 (async)"),
}

#: Edits applied to the unpacked sdist, per version: (file, old text, new text). Only what
#: nx-27017 cannot run as shipped (a collection name with hyphens), the same for every driver.
PATCHES: Dict[str, List[Tuple[str, str, str]]] = {
    "2.1.0": [
        (f, '"vehicles-custom-class-id"', '"vehicles_custom_class_id"')
        for f in ("tests/odm/models.py", "tests/odm/documents/test_inheritance.py")
    ],
}


def apply_patches(target: Path, version: str) -> None:
    """Apply ``PATCHES[version]`` to the unpacked sdist (idempotent)."""
    for rel, old, new in PATCHES.get(version, []):
        path = target / rel
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))
        elif new not in text:
            raise RuntimeError(f"cannot patch {path}: neither {old!r} nor {new!r} is in it")


def beanie_dir(python: str, version: str, build: Path) -> Path:
    """The unpacked (and patched) sdist, downloaded on first use."""
    target = build / f"beanie-{version}"
    if (target / "tests" / "conftest.py").exists():
        apply_patches(target, version)
        return target
    build.mkdir(parents=True, exist_ok=True)
    sdist = build / f"beanie-{version}.tar.gz"
    if not sdist.exists():
        subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"beanie=={version}", "-d", str(build)], check=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(build)  # noqa: S202 - PyPI sdist of a pinned version
    apply_patches(target, version)
    return target


def baseline_file(version: str) -> Path:
    """Tests that pass with the real driver on nx-27017 (``--driver motor|pymongo
    --write-baseline``); the amongo run must pass every one of them."""
    return HERE / f"beanie-{version}-{PROFILES[version].reference}-passed.txt"


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


def compare(junitxml: Path, version: str, write_baseline: bool) -> int:
    """Check the run against the baseline; 0 when every baseline test passed."""
    passed = passed_tests(junitxml)
    baseline = baseline_file(version)
    if write_baseline:
        baseline.write_text("".join(f"{t}\n" for t in sorted(passed)))
        print(f"baseline: {len(passed)} passing tests written to {baseline}")
        return 0
    wanted = {t for t in baseline.read_text().splitlines() if t} - ORDER_DEPENDENT
    missing = sorted(wanted - passed)
    extra = sorted(passed - wanted)
    label = PROFILES[version].label
    print(f"\n{len(wanted) - len(missing)} of the {len(wanted)} tests that pass with {label} pass "
          f"(+{len(extra)} more: {', '.join(extra) or 'none'}); {len(passed)} passed in all")
    for t in missing:
        print(f"  NOT PASSING: {t}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", required=True, help="interpreter of the venv with Beanie's test deps")
    ap.add_argument("--driver", choices=("amongo", "motor", "pymongo"), default="amongo",
                    help="amongo, or the real driver the Beanie version is built on (the baseline)")
    ap.add_argument("--beanie-version", default="1.30.0", choices=sorted(PROFILES))
    ap.add_argument("--build", default=str(ROOT / "build" / "odm"))
    ap.add_argument("--write-baseline", action="store_true",
                    help="(with the real driver) record the passing tests in the baseline file")
    ap.add_argument("--no-compare", action="store_true", help="exit with pytest's status instead")
    ap.add_argument("pytest_args", nargs="*", help="after --: pytest arguments (default: tests)")
    args = ap.parse_args(argv)
    args.python = os.path.abspath(args.python)  # (not resolve(): a venv's python is a symlink)
    profile = PROFILES[args.beanie_version]
    if args.driver not in ("amongo", profile.reference):
        ap.error(f"Beanie {args.beanie_version} runs on --driver amongo or {profile.reference}")
    if args.write_baseline and args.driver == "amongo":
        ap.error("--write-baseline records the real driver's run")

    src = beanie_dir(args.python, args.beanie_version, Path(args.build))
    server = Server("nx")
    server.start()
    try:
        env = dict(os.environ)
        env["MONGODB_DSN"] = f"mongodb://{server.address_str}/beanie_db"
        env["AMONGO_ODM_DRIVER"] = args.driver
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        cmd = [args.python, "-m", "pytest", "-p", profile.plugin, "-p", "no:cacheprovider",
               "-o", "addopts=", "-q", "--timeout=120"]
        junitxml = Path(args.build).resolve() / f"beanie-{args.beanie_version}-{args.driver}.xml"
        cmd.append(f"--junitxml={junitxml}")
        cmd += args.pytest_args or ["tests"]
        print("$", " ".join(cmd), f"(in {src}, MONGODB_DSN={env['MONGODB_DSN']})", flush=True)
        rc = subprocess.run(cmd, cwd=src, env=env).returncode
        if args.no_compare or rc not in (0, 1) or args.pytest_args:
            return rc
        return compare(junitxml, args.beanie_version, args.write_baseline)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())

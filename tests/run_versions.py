"""``make test-versions``: the unit tests and a short integration smoke on every Python version
amongo declares (its ``Programming Language :: Python :: 3.X`` classifiers).

Each version gets its own venv (``.venvs/3.X``, reinstalled when pyproject.toml changes) made
from ``~/.pyenv/versions/3.X*/bin/python`` (or ``python3.X`` on PATH).  One SecantusDB replica
set, started here by the interpreter running this script, serves every version's smoke
(``MONGODB_URI``), so versions the test servers do not install on (3.9) are smoked too.

    python tests/run_versions.py [--versions 3.9,3.13] [--unit-only]

Prints one summary line per version; exits non-zero if any version fails or a declared
interpreter is missing.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

#: The integration smoke: CRUD, cursors, sessions/transactions, connections, logging.
SMOKE = [
    "tests/integration/test_crud.py",
    "tests/integration/test_sessions_transactions.py",
    "tests/integration/test_command_logging.py",
    "tests/integration/test_component_logging.py",
]


def declared_versions() -> List[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)


def interpreter(version: str) -> Optional[str]:
    found = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    if found:
        return found[-1]
    return shutil.which(f"python{version}")


def venv_for(version: str, python: str) -> Path:
    venv = ROOT / ".venvs" / version
    py = venv / "bin" / "python"
    stamp = venv / ".stamp"
    pyproject = ROOT / "pyproject.toml"
    if not py.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    if not stamp.exists() or stamp.stat().st_mtime < pyproject.stat().st_mtime:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"], check=True)
        stamp.touch()
    return py


def pytest_summary(output: str) -> str:
    lines = [l for l in output.strip().splitlines() if re.search(r"\d+ (passed|failed|error)", l)]
    return lines[-1].strip("= ") if lines else "(no pytest summary)"


def run(py: Path, args: List[str], env: Dict[str, str]) -> Tuple[int, str]:
    proc = subprocess.run(
        [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=300", *args],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-2000:])
    return proc.returncode, pytest_summary(proc.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", help="comma-separated subset of the declared versions")
    ap.add_argument("--unit-only", action="store_true", help="skip the integration smoke")
    ap.add_argument("--oldest-newest", action="store_true", help="only the oldest and newest declared versions")
    opts = ap.parse_args()
    versions = declared_versions()
    if not versions:
        print("no 'Programming Language :: Python :: 3.X' classifiers in pyproject.toml", file=sys.stderr)
        return 2
    if opts.oldest_newest:
        versions = sorted({versions[0], versions[-1]}, key=lambda v: tuple(map(int, v.split("."))))
    if opts.versions:
        wanted = opts.versions.split(",")
        unknown = [v for v in wanted if v not in versions]
        if unknown:
            print(f"not declared in pyproject.toml: {unknown} (declared: {versions})", file=sys.stderr)
            return 2
        versions = wanted
    server = None
    env = dict(os.environ)
    if not opts.unit_only and not env.get("MONGODB_URI"):
        from servers import start_server

        server = start_server("secantus")
        env["MONGODB_URI"] = server.uri
    results: List[Tuple[str, str, str, str]] = []
    failed = False
    try:
        for v in versions:
            python = interpreter(v)
            if python is None:
                results.append((v, "MISSING", "no interpreter", ""))
                failed = True
                continue
            t0 = time.monotonic()
            py = venv_for(v, python)
            full = subprocess.run([str(py), "-c", "import platform; print(platform.python_version())"],
                                  capture_output=True, text=True).stdout.strip()
            rc, unit = run(py, ["tests/unit"], {k: x for k, x in env.items() if k != "MONGODB_URI"})
            smoke = "(skipped)"
            if not opts.unit_only:
                rc2, smoke = run(py, SMOKE, env)
                rc = rc or rc2
            failed = failed or rc != 0
            results.append((v, full, f"unit: {unit}", f"smoke: {smoke}  [{time.monotonic() - t0:.0f} s]"))
            print(f"python {full}: unit: {unit}; smoke: {smoke}", flush=True)
    finally:
        if server is not None:
            server.stop()
    print("\nmake test-versions summary")
    for v, full, unit, smoke in results:
        print(f"  {v:5} {full:8} {unit:45} {smoke}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

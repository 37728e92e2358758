"""Type-checked Motor code keeps its document types on amongo: ``mypy --strict`` on a small
Motor-style application (``tests/typing/typed_app.py``, ``assert_type`` throughout) reports no
error, on ``tests/typing/typed_app_errors.py`` exactly the mistakes marked there, and
``tests/typing/motor_compat_app.py`` checks cleanly both on amongo and, imports switched, on
Motor 3.7.1's own stubs (motor is in the test extra); ``tests/typing/typed_pymongo_app.py``
(PyMongo's async API: ``amongo.AsyncMongoClient[User]``...) checks cleanly too."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
APP = Path("tests/typing/typed_app.py")
BAD = Path("tests/typing/typed_app_errors.py")
COMPAT = Path("tests/typing/motor_compat_app.py")
#: the same for amongo's PyMongo-style API (amongo.asynchronous)
PYMONGO_APP = Path("tests/typing/typed_pymongo_app.py")


def _expected_errors(path: Path) -> Set[Tuple[int, str]]:
    marks = set()
    for lineno, line in enumerate((ROOT / path).read_text().splitlines(), 1):
        m = re.search(r"# E: ([\w-]+)", line)
        if m:
            marks.add((lineno, m.group(1)))
    return marks


def _mypy(*paths: Path) -> Tuple[int, Dict[str, List[Tuple[int, str, str]]]]:
    # --follow-imports=silent: amongo's own modules are analysed for their types, but only
    # the application files' errors are reported (amongo's internal --strict findings are
    # tracked separately).
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
         "--show-error-codes", "--hide-error-context", *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 2: mypy itself failed
    errors: Dict[str, List[Tuple[int, str, str]]] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(.+?):(\d+): error: (.*)  \[([\w-]+)\]$", line)
        if m:
            errors.setdefault(m.group(1), []).append((int(m.group(2)), m.group(4), m.group(3)))
        else:
            assert ": note: " in line, f"unexpected mypy output: {line!r}\n{proc.stdout}"
    return proc.returncode, errors


def test_typed_app_checks_under_mypy_strict(tmp_path: Path) -> None:
    on_motor = tmp_path / "motor_compat_app_on_motor.py"
    source = (ROOT / COMPAT).read_text()
    assert "from amongo.motor_asyncio import" in source
    on_motor.write_text(source.replace("from amongo.motor_asyncio import", "from motor.motor_asyncio import"))

    rc, errors = _mypy(APP, BAD, COMPAT, on_motor, PYMONGO_APP)

    def show(path: str) -> str:
        return "\n".join(f"{path}:{n}: {msg} [{code}]" for n, code, msg in errors.get(path, []))

    for clean in (str(APP), str(COMPAT), str(on_motor), str(PYMONGO_APP)):
        assert clean not in errors, show(clean)
    found = {(n, code) for n, code, _ in errors.get(str(BAD), [])}
    assert found == _expected_errors(BAD), show(str(BAD))
    assert set(errors) == {str(BAD)}, errors
    assert rc == 1  # the deliberate mistakes


# ``mypy --strict amongo``: the layers below the engine are clean and stay clean; the rest of
# the package may not get worse than the count recorded here (0 since issue 12).
MAX_PACKAGE_ERRORS = 0
STRICT_CLEAN = (
    "amongo/wire/", "amongo/topology/", "amongo/connection.py", "amongo/protocol.py",
    "amongo/pool.py", "amongo/uri.py", "amongo/srv.py", "amongo/auth.py", "amongo/auth_aws.py",
    "amongo/auth_oidc.py", "amongo/credentials.py", "amongo/_http.py", "amongo/monitoring.py",
    "amongo/_logging.py", "amongo/_csot.py", "amongo/handshake.py", "amongo/_compat.py",
)


def test_package_checks_under_mypy_strict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-error-codes",
         "--hide-error-context", "amongo"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 2: mypy itself failed
    errors = [line for line in proc.stdout.splitlines() if ": error: " in line]
    lower = [line for line in errors if line.replace("\\", "/").startswith(STRICT_CLEAN)]
    assert not lower, "mypy --strict errors below the engine:\n" + "\n".join(lower)
    assert len(errors) <= MAX_PACKAGE_ERRORS, (
        f"mypy --strict amongo: {len(errors)} errors (at most {MAX_PACKAGE_ERRORS}):\n"
        + "\n".join(errors)
    )

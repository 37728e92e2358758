"""``make dist``'s check: the sdist and the wheel in DIR both contain the full LICENSE text and
declare the SPDX license expression."""
from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(dist: Path) -> int:
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    sdists = sorted(dist.glob("*.tar.gz"))
    wheels = sorted(dist.glob("*.whl"))
    if not sdists or not wheels:
        print(f"expected an sdist and a wheel in {dist}", file=sys.stderr)
        return 1
    problems = []
    with tarfile.open(sdists[-1]) as tf:
        names = [n for n in tf.getnames() if n.endswith("/LICENSE") and n.count("/") == 1]
        if not names or tf.extractfile(names[0]).read().decode() != license_text:  # type: ignore[union-attr]
            problems.append(f"{sdists[-1].name}: no top-level LICENSE with the full text")
        pkg_info = [n for n in tf.getnames() if n.endswith("/PKG-INFO") and n.count("/") == 1]
        if not pkg_info or b"License-Expression: Apache-2.0" not in tf.extractfile(pkg_info[0]).read():  # type: ignore[union-attr]
            problems.append(f"{sdists[-1].name}: PKG-INFO lacks License-Expression: Apache-2.0")
    with zipfile.ZipFile(wheels[-1]) as zf:
        lic = [n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        if not lic or zf.read(lic[0]).decode() != license_text:
            problems.append(f"{wheels[-1].name}: no dist-info/licenses/LICENSE with the full text")
        meta = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        if not meta or b"License-Expression: Apache-2.0" not in zf.read(meta[0]):
            problems.append(f"{wheels[-1].name}: METADATA lacks License-Expression: Apache-2.0")
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"ok: LICENSE and License-Expression in {sdists[-1].name} and {wheels[-1].name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")))

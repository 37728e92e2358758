"""Where the spec-test JSON lives: tests/specs, or AMONGO_SPECS_DIR when it is set."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, List, Tuple

HERE = Path(__file__).resolve().parent


def specs_dir() -> Path:
    """The root of the spec-test data (same layout as ``tests/specs``)."""
    env = os.environ.get("AMONGO_SPECS_DIR")
    return Path(env) if env else HERE / "specs"


def spec_files(*parts: str) -> List[Path]:
    """Sorted JSON files below ``specs_dir()/parts...`` (recursively)."""
    root = specs_dir().joinpath(*parts)
    if not root.is_dir():
        return []
    return sorted(root.rglob("*.json"))


def load(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def cases(*parts: str, key: str = "tests") -> Iterator[Tuple[str, Path, Any]]:
    """Yield ``(test_id, path, test)`` for every test in every file below *parts*."""
    root = specs_dir().joinpath(*parts)
    for path in spec_files(*parts):
        data = load(path)
        rel = path.relative_to(root).as_posix()
        tests = data.get(key) if isinstance(data, dict) else None
        if tests is None:
            yield rel, path, data
        else:
            for t in tests:
                yield f"{rel}::{t.get('description', '')}", path, t

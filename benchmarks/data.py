"""DriverBench documents, extracted at run time into a cache directory.

The archive is ``/work/shared/benchdata/single_and_multi_document.tgz`` (override with
``AMONGO_BENCH_ARCHIVE``); it is extracted into ``.bench-data/`` at the repository root
(override with ``AMONGO_BENCH_DATA``). Only the three JSON documents are extracted.
"""
from __future__ import annotations

import json
import os
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

import bson

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCHIVE = "/work/shared/benchdata/single_and_multi_document.tgz"
NAMES = ("tweet.json", "small_doc.json", "large_doc.json")


def cache_dir() -> Path:
    return Path(os.environ.get("AMONGO_BENCH_DATA", ROOT / ".bench-data"))


def ensure_extracted() -> Path:
    """Extract the DriverBench JSON files (once) and return the directory holding them."""
    out = cache_dir() / "single_and_multi_document"
    if all((out / n).exists() for n in NAMES):
        return out
    archive = os.environ.get("AMONGO_BENCH_ARCHIVE", DEFAULT_ARCHIVE)
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if base in NAMES and member.isfile():
                src = tar.extractfile(member)
                assert src is not None
                tmp = out / (base + ".tmp")
                tmp.write_bytes(src.read())
                tmp.replace(out / base)
    return out


@lru_cache(maxsize=None)
def load(name: str) -> Dict[str, Any]:
    """Return one DriverBench document (``tweet``, ``small_doc`` or ``large_doc``)."""
    path = ensure_extracted() / f"{name}.json"
    with open(path) as f:
        return json.load(f)


def bson_size(doc: Dict[str, Any]) -> int:
    return len(bson.encode(doc))

"""CMAP spec tests (connection-monitoring-and-pooling/cmap-format), run with a fake
connection factory: no sockets, no server.

Every ``"style": "unit"`` file runs here with :class:`tests.cmap_runner.Runner`. The
``"style": "integration"`` files run against a live server in
``tests/integration/test_cmap_integration.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from tests._specs import load
from tests.cmap_runner import FILES, Runner


def _ids(paths: List[Path]) -> List[str]:
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", FILES["unit"], ids=_ids(FILES["unit"]))
async def test_cmap_unit_file(path: Path) -> None:
    test = load(path)
    await Runner(test).run()


def test_cmap_spec_files_present() -> None:
    assert FILES["unit"], "no cmap-format unit files found (AMONGO_SPECS_DIR?)"
    assert FILES["integration"], "no cmap-format integration files found (AMONGO_SPECS_DIR?)"

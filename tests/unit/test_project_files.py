"""Files users read or install: the README's quickstart is examples/quickstart.py, the LICENSE
and license metadata, the generated benchmark documents, and the benchmark chart."""
from __future__ import annotations

import re
from pathlib import Path

import bson
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def test_readme_quickstart_is_the_example_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"`examples/quickstart\.py`[^\n]*\n\n```python\n(.*?)```\n", readme, re.S)
    assert m, "README has no quickstart block after the examples/quickstart.py mention"
    assert m.group(1) == (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")


def test_readme_install_says_not_on_pypi() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = readme[readme.index("## Install"):readme.index("## Quickstart")]
    assert "not on PyPI" in install and "pip install amongo-driver" not in install


def test_license_and_metadata() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 11000  # the full text
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "Apache-2\.0"$', pyproject, re.M)
    assert 'license-files = ["LICENSE"]' in pyproject
    assert not re.search(r"^license\s*=\s*\{", pyproject, re.M)  # no deprecated license table
    assert re.search(r'requires = \["setuptools>=(7[7-9]|[89]\d)', pyproject)
    for classifier in ("Typing :: Typed", "Framework :: AsyncIO", "Development Status ::"):
        assert f'"{classifier}' in pyproject
    versions = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    low = re.search(r'requires-python = ">=(3\.\d+)"', pyproject)
    assert low and versions and versions[0] == low.group(1)


def test_benchmark_documents_are_generated_in_repo(monkeypatch) -> None:
    monkeypatch.delenv("AMONGO_BENCH_ARCHIVE", raising=False)
    from benchmarks import data

    data.load.cache_clear()
    try:
        small, tweet = data.load("small_doc"), data.load("tweet")
        # DriverBench's small_doc.json and tweet.json encode to 250 and 1,531 BSON bytes.
        assert len(bson.encode(small)) == 250 and len(bson.encode(tweet)) == 1531
        assert data.generate_tweet() == tweet and data.generate_small_doc() == small  # deterministic
        assert data.source() == "generated"
    finally:
        data.load.cache_clear()
    for path in (ROOT / "benchmarks").rglob("*.py"):
        assert "/work/" not in path.read_text(encoding="utf-8"), f"{path} reads outside the repository"


def test_benchmark_chart_from_results(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib comes with the test and bench extras")
    import json

    from benchmarks.plot import plot

    results = json.loads((ROOT / "benchmarks" / "results" / "full-2026-11-25.json").read_text())
    out = tmp_path / "chart.png"
    plot(results, str(out))
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(head[16:20], "big")
    assert width == 900  # README width, not a scroll-wide strip
    with pytest.raises(ValueError):
        plot([r for r in results if r["driver"] != "amongo"], str(tmp_path / "none.png"))

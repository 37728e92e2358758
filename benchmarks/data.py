"""The benchmark documents: DriverBench's ``small_doc`` and ``tweet``, generated here.

By default the documents are **generated** (deterministically, seeded) with the shapes of the
MongoDB DriverBench data set's ``small_doc.json`` and ``tweet.json``: the same field names,
nesting, value types, string lengths and integer widths, hence the same sizes (250 and 1,531
bytes of BSON), so a fresh clone needs nothing from outside the repository.  To run on the original files instead, point ``AMONGO_BENCH_ARCHIVE`` at
DriverBench's ``single_and_multi_document.tgz``: the two JSON documents are extracted into
``.bench-data/`` at the repository root (override with ``AMONGO_BENCH_DATA``).
"""
from __future__ import annotations

import json
import os
import random
import string
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict

import bson

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("tweet.json", "small_doc.json")
_SEED = 20160817


def cache_dir() -> Path:
    return Path(os.environ.get("AMONGO_BENCH_DATA", ROOT / ".bench-data"))


def ensure_extracted(archive: str) -> Path:
    """Extract the DriverBench JSON files from *archive* (once) and return their directory."""
    out = cache_dir() / "single_and_multi_document"
    if all((out / n).exists() for n in NAMES):
        return out
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


def _generators(rng: random.Random) -> "tuple[Callable[[int], str], Callable[..., int]]":
    alnum = string.ascii_letters + string.digits

    def s(n: int) -> str:
        return "".join(rng.choice(alnum) for _ in range(n))

    def i(digits: int, neg: bool = False) -> int:
        value = rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10 ** digits - 1)
        return -value if neg else value

    return s, i


def generate_small_doc() -> Dict[str, Any]:
    """A document shaped like DriverBench's ``small_doc.json`` (13 fields: seven 8-character
    strings, six integers)."""
    s, i = _generators(random.Random(_SEED))
    doc: Dict[str, Any] = {s(8): s(8) for _ in range(7)}
    for digits in (8, 8, 8, 8, 7, 8):
        doc[s(8)] = i(digits)
    return doc


def generate_tweet() -> Dict[str, Any]:
    """A document shaped like DriverBench's ``tweet.json`` (a 2010 Twitter API status)."""
    s, i = _generators(random.Random(_SEED + 1))
    return {
        "text": s(37),
        "in_reply_to_status_id": i(11),
        "retweet_count": None,
        "contributors": None,
        "created_at": s(30),
        "geo": None,
        "source": s(3),
        "coordinates": None,
        "in_reply_to_screen_name": s(8),
        "truncated": False,
        "entities": {
            "user_mentions": [{"indices": [i(1), i(1)], "screen_name": s(8), "name": s(17), "id": i(8)}],
            "urls": [],
            "hashtags": [],
        },
        "retweeted": False,
        "place": None,
        "user": {
            "friends_count": i(3),
            "profile_sidebar_fill_color": s(6),
            "location": s(27),
            "verified": False,
            "follow_request_sent": None,
            "favourites_count": i(1),
            "profile_sidebar_border_color": s(6),
            "profile_image_url": s(94),
            "geo_enabled": False,
            "created_at": s(30),
            "description": s(89),
            "time_zone": s(27),
            "url": s(24),
            "screen_name": s(8),
            "notifications": None,
            "profile_background_color": s(6),
            "listed_count": i(1),
            "lang": s(2),
            "profile_background_image_url": s(69),
            "statuses_count": i(4),
            "following": None,
            "profile_text_color": s(6),
            "protected": False,
            "show_all_inline_media": False,
            "profile_background_tile": True,
            "name": s(13),
            "contributors_enabled": False,
            "profile_link_color": s(6),
            "followers_count": i(3),
            "id": i(8),
            "profile_use_background_image": True,
            "utc_offset": i(5, neg=True),
        },
        "favorited": False,
        "in_reply_to_user_id": i(8),
        "id": i(11),
    }


_GENERATED = {"small_doc": generate_small_doc, "tweet": generate_tweet}


def source() -> str:
    """``"generated"``, or ``"driverbench"`` when ``AMONGO_BENCH_ARCHIVE`` is set."""
    return "driverbench" if os.environ.get("AMONGO_BENCH_ARCHIVE") else "generated"


@lru_cache(maxsize=None)
def load(name: str) -> Dict[str, Any]:
    """Return one benchmark document (``tweet`` or ``small_doc``): generated, or from the
    DriverBench archive named by ``AMONGO_BENCH_ARCHIVE``."""
    if source() == "generated":
        return _GENERATED[name]()
    with open(ensure_extracted(os.environ["AMONGO_BENCH_ARCHIVE"]) / f"{name}.json") as f:
        return json.load(f)


def bson_size(doc: Dict[str, Any]) -> int:
    return len(bson.encode(doc))

"""Unified spec tests that fail because of amongo: driver work still to do, NOT skips.

Each entry is marked ``xfail(strict=False)`` with its reason, so the test still runs, its
failure stays visible ("xfailed") and a fix shows up as "xpassed". Keys are test ids or fnmatch
globs, as in ``skips.py``. Remove an entry with the fix that makes the tests pass.
"""
from __future__ import annotations

from typing import Dict

_CSOT = "client-side-operations-timeout"
_TXN = ("withTransaction runs under one timeoutMS deadline, but after the callback's first command times out "
        "the abortTransaction is not sent (the transaction counts as never started on the server)")
_TAILABLE = ("tailable awaitData cursors: getMores do not get the remaining timeoutMS when it is below "
             "maxAwaitTimeMS (cursors do not keep the timeoutMS they were created under)")
_GRIDFS = "GridFS upload/download/delete/drop do not run under one timeoutMS deadline as a whole"

AMONGO: Dict[str, str] = {
    f"{_CSOT}/convenient-transactions.json::withTransaction raises a client-side error if timeoutMS is "
    "overridden inside the callback": "a timeoutMS set on an operation inside a withTransaction callback is not "
                                      "rejected as a client-side error",
    f"{_CSOT}/convenient-transactions.json::timeoutMS is not refreshed for each operation in the callback": _TXN,
    f"{_CSOT}/sessions-*.json::timeoutMS applied to withTransaction": _TXN,
    f"{_CSOT}/gridfs-advanced.json::timeoutMS applied to drop as a whole, not individual parts": _GRIDFS,
    f"{_CSOT}/gridfs-delete.json::timeoutMS applied to entire delete, not individual parts": _GRIDFS,
    f"{_CSOT}/gridfs-download.json::timeoutMS applied to entire download, not individual parts": _GRIDFS,
    f"{_CSOT}/gridfs-upload.json::timeoutMS applied to upload as a whole, not individual parts": _GRIDFS,
    f"{_CSOT}/runCursorCommand.json::Tailable cursor awaitData iteration timeoutMS is refreshed for getMore - failure":
        _TAILABLE,
    f"{_CSOT}/tailable-awaitData.json::apply remaining timeoutMS if less than maxAwaitTimeMS": _TAILABLE,
}

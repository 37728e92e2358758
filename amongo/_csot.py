"""The operation deadline (client-side operation timeout).

The deadline set by :func:`pymongo.timeout` lives in a ContextVar, so it flows through every
``await`` without being passed around. amongo reads the same ContextVars, so
``with pymongo.timeout(1.0):`` bounds amongo operations exactly as it bounds PyMongo's.
"""
from __future__ import annotations

import time
from typing import Optional

from pymongo import _csot as _pm_csot

get_timeout = _pm_csot.get_timeout
get_deadline = _pm_csot.get_deadline
remaining = _pm_csot.remaining
_TimeoutContext = _pm_csot._TimeoutContext


def deadline_from(timeout: Optional[float]) -> Optional[float]:
    """Return the absolute monotonic deadline for *timeout* seconds from now (None = none)."""
    if timeout is None:
        return None
    return time.monotonic() + timeout

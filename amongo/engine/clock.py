"""Cluster-time comparison shared by the executor and sessions (pure)."""
from __future__ import annotations

from typing import Any, Callable

from bson.timestamp import Timestamp


def _ts_newer() -> Callable[[Any, Any], bool]:
    """``ts_newer(a, b)``: whether Timestamp *a* is later than *b* — ``a > b`` without
    Timestamp's Python ``__gt__`` and its four property calls (reads the slots directly;
    falls back to ``>`` if bson's Timestamp is laid out differently)."""
    try:
        get_time = Timestamp._Timestamp__time.__get__  # type: ignore[attr-defined]
        get_inc = Timestamp._Timestamp__inc.__get__  # type: ignore[attr-defined]
        a, b = Timestamp(5, 1), Timestamp(4, 9)
        if (get_time(a), get_inc(a)) != (5, 1) or (get_time(b), get_inc(b)) != (4, 9):
            raise ValueError("unexpected Timestamp layout")
    except Exception:  # pragma: no cover - depends on the installed bson
        return lambda a, b: bool(a > b)

    def ts_newer(a: Any, b: Any) -> bool:
        try:
            ta, tb = get_time(a), get_time(b)
        except TypeError:  # not Timestamps: let Timestamp decide (TypeError for bad values)
            return bool(a > b)
        return ta > tb or (ta == tb and get_inc(a) > get_inc(b))  # type: ignore[no-any-return]

    return ts_newer


ts_newer = _ts_newer()

"""The operation deadline (client-side operation timeout).

The deadline set by :func:`pymongo.timeout` lives in a ContextVar, so it flows through every
``await`` without being passed around. amongo reads the same ContextVars, so
``with pymongo.timeout(1.0):`` bounds amongo operations exactly as it bounds PyMongo's.
"""
from __future__ import annotations

import time
from typing import Any, MutableMapping, Optional, Tuple

from pymongo import _csot as _pm_csot

get_timeout = _pm_csot.get_timeout
#: the deadline's ContextVar (``TIMEOUT.get(None)`` is :func:`get_timeout` without its frame)
TIMEOUT = _pm_csot.TIMEOUT
get_deadline = _pm_csot.get_deadline
remaining = _pm_csot.remaining
_TimeoutContext = _pm_csot._TimeoutContext


def deadline_from(timeout: Optional[float]) -> Optional[float]:
    """Return the absolute monotonic deadline for *timeout* seconds from now (None = none)."""
    if timeout is None:
        return None
    return time.monotonic() + timeout


def is_timeout_error(exc: Optional[BaseException]) -> bool:
    """Whether *exc* is a PyMongo timeout error (``PyMongoError.timeout``)."""
    return exc is not None and bool(getattr(exc, "timeout", False))


def expired_error(last: Optional[BaseException]) -> Exception:
    """The error for an operation whose deadline passed between attempts: the last
    attempt's error when it was itself a timeout (a ``WaitQueueTimeoutError``,
    ``NetworkTimeout``, ``ServerSelectionTimeoutError``..., as PyMongo raises it), else an
    :class:`~pymongo.errors.ExecutionTimeout` (code 50)."""
    if is_timeout_error(last):
        return last  # type: ignore[return-value]
    from pymongo.errors import ExecutionTimeout

    msg = "operation timed out"
    return ExecutionTimeout(msg, 50, {"ok": 0, "errmsg": msg, "code": 50})


def apply_max_time(cmd: MutableMapping[str, Any], remaining_s: float, min_rtt: Optional[float]) -> None:
    """CSOT "Command Execution": set ``maxTimeMS`` to the remaining time minus the selected
    server's minimum RTT (a smaller explicit ``maxTimeMS`` is kept), or raise
    :class:`~pymongo.errors.ExecutionTimeout` without sending when the remaining time does not
    exceed the RTT. ``wtimeout`` is dropped from the write concern (timeoutMS replaces it)."""
    rtt = min_rtt or 0.0
    budget = remaining_s - rtt
    if budget <= 0:
        from pymongo.errors import ExecutionTimeout

        msg = (
            f"operation would exceed time limit, remaining timeout:{remaining_s:.5f} <= "
            f"network round trip time:{rtt:.5f}"
        )
        raise ExecutionTimeout(msg, 50, {"ok": 0, "errmsg": msg, "code": 50})
    max_time = int(budget * 1000)
    if max_time <= 0:
        max_time = 1
    current = cmd.get("maxTimeMS")
    if not current or current > max_time:
        cmd["maxTimeMS"] = max_time
    wc = cmd.get("writeConcern")
    if wc and "wtimeout" in wc:
        wc = dict(wc)
        del wc["wtimeout"]
        if wc:
            cmd["writeConcern"] = wc
        else:
            del cmd["writeConcern"]


def check_max_await(max_await_time_ms: Optional[int], timeout: Optional[float]) -> None:
    """CSOT "Tailable cursors" / "Change Streams": an awaitData cursor's ``maxAwaitTimeMS``
    must be below the operation's ``timeoutMS`` (*timeout*, seconds; None or 0 = no deadline),
    else every getMore would time out while the server waits: raise ``ValueError``."""
    if max_await_time_ms is not None and timeout and max_await_time_ms >= timeout * 1000:
        raise ValueError(
            f"maxAwaitTimeMS ({max_await_time_ms}) must be less than timeoutMS ({timeout * 1000:g})"
        )


class scope:
    """Run a block under the deadline *deadline* (monotonic seconds; ``inf``: none) with
    *timeout* (seconds) as its ``timeoutMS``, whatever deadline is in effect around it: the
    deadline kept by a GridFS stream for its lifetime, or a fresh one (:func:`fresh`)."""

    __slots__ = ("_timeout", "_deadline", "_tokens")

    def __init__(self, timeout: Optional[float], deadline: float) -> None:
        self._timeout = timeout
        self._deadline = deadline
        self._tokens: Optional[Any] = None

    def __enter__(self) -> None:
        self._tokens = (
            _pm_csot.TIMEOUT.set(self._timeout), _pm_csot.DEADLINE.set(self._deadline), _pm_csot.RTT.set(0.0),
        )

    def __exit__(self, *exc: Any) -> None:
        if self._tokens is not None:
            timeout_token, deadline_token, rtt_token = self._tokens
            _pm_csot.TIMEOUT.reset(timeout_token)
            _pm_csot.DEADLINE.reset(deadline_token)
            _pm_csot.RTT.reset(rtt_token)
            self._tokens = None


def fresh(timeout: Optional[float]) -> scope:
    """A block under a new deadline of *timeout* seconds from now, even when the deadline
    around it has passed (CSOT: withTransaction's abortTransaction gets a fresh timeoutMS;
    ``pymongo.timeout()`` would keep the earlier, expired deadline)."""
    return scope(timeout, time.monotonic() + timeout if timeout else float("inf"))


def kept(client_timeout: Optional[float]) -> Optional[Tuple[float, float]]:
    """``(timeout, deadline)`` to re-enter later with :class:`scope`: the deadline in effect
    now, else one of *client_timeout* seconds (the client's ``timeoutMS``) from now; None
    without either (a GridFS stream keeps the deadline it was opened under for its whole
    lifetime, CSOT "GridFS API")."""
    timeout = get_timeout()
    if timeout is None:
        if not client_timeout:
            return None
        return client_timeout, time.monotonic() + client_timeout
    return timeout, get_deadline()


class inherit:
    """Run a block under *timeout* (seconds, a deadline kept from when an object such as a
    cursor or change stream was created) unless a ``pymongo.timeout()`` is already in effect;
    None: no change. Each ``with`` starts a fresh deadline (CSOT: a cursor's getMore and
    close, a change stream's next, each get the full timeoutMS)."""

    __slots__ = ("_timeout", "_ctx")

    def __init__(self, timeout: Optional[float]) -> None:
        self._timeout = timeout
        self._ctx: Optional[Any] = None

    def __enter__(self) -> None:
        if self._timeout is not None and get_timeout() is None:
            self._ctx = _TimeoutContext(self._timeout)
            self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
            self._ctx = None

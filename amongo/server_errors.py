"""Server errors, in one place (pure: no I/O, no asyncio).

Every error-code set the driver's rules read (SDAM's "not writable primary", "node is
recovering" and "shutting down"; retryable reads and writes; resumable change-stream errors;
unknown transaction commit results), the mapping of a failed command reply to the
``pymongo.errors`` exception users catch, and the write-concern-error check.

Layer: imported by the connection, the pool, SDAM, the engine and the facades; imports only
``pymongo.errors``.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from pymongo.errors import (
    ConnectionFailure,
    CursorNotFound,
    DuplicateKeyError,
    ExecutionTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

__all__ = [
    "NOT_WRITABLE_PRIMARY_CODES",
    "RECOVERING_CODES",
    "SHUTDOWN_CODES",
    "NOT_PRIMARY_CODES",
    "RETRYABLE_CODES",
    "RETRYABLE_READ_CODES",
    "RETRYABLE_WRITE_CODES",
    "RESUMABLE_CODES",
    "UNKNOWN_COMMIT_CODES",
    "NOT_UNKNOWN_COMMIT_CODES",
    "REAUTHENTICATION_REQUIRED",
    "EXCEEDED_TIME_LIMIT",
    "CURSOR_NOT_FOUND",
    "DUPLICATE_KEY_CODES",
    "command_error",
    "check_write_concern_error",
    "write_concern_error",
    "write_concern_error_details",
    "is_resumable",
    "is_unknown_commit",
]

#: "not writable primary" error codes (SDAM).
NOT_WRITABLE_PRIMARY_CODES = frozenset((10107, 13435, 10058))
#: "node is recovering" error codes (SDAM).
RECOVERING_CODES = frozenset((11600, 11602, 13436, 189, 91))
#: "node is shutting down" codes (a subset of the recovering codes).
SHUTDOWN_CODES = frozenset((11600, 91))
#: State-change errors: the server is no longer (or not yet) usable for the operation.
NOT_PRIMARY_CODES = NOT_WRITABLE_PRIMARY_CODES | RECOVERING_CODES
#: Codes after which reads and writes are retried (retryable-reads/writes specs; for
#: writes only on servers older than 4.4, which do not label their errors).
RETRYABLE_CODES = frozenset((11600, 11602, 10107, 13435, 13436, 189, 91, 7, 6, 89, 9001, 262, 134))
RETRYABLE_READ_CODES = RETRYABLE_CODES
RETRYABLE_WRITE_CODES = RETRYABLE_CODES
#: Change-stream errors that are resumable on servers older than 4.4 (change-streams spec).
RESUMABLE_CODES = frozenset(
    (6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436, 63, 150, 234, 133, 43)
)
#: A commitTransaction failing with one of these may have committed (transactions spec).
UNKNOWN_COMMIT_CODES = frozenset((64, 50, 91, 189, 262, 6, 7, 89, 9001, 10107, 11600, 11602, 13435, 13436))
#: UnsatisfiableWriteConcern, UnknownReplWriteConcern: the commit certainly did not happen.
NOT_UNKNOWN_COMMIT_CODES = frozenset((100, 79))
#: ReauthenticationRequired (auth spec): authenticate the connection again and resend.
REAUTHENTICATION_REQUIRED = 391
EXCEEDED_TIME_LIMIT = 50
CURSOR_NOT_FOUND = 43
DUPLICATE_KEY_CODES = frozenset((11000, 11001, 12582))


def command_error(reply: Mapping[str, Any], max_wire_version: Optional[int] = None) -> OperationFailure:
    """The pymongo exception a failed command reply (``ok: 0``) maps to."""
    code = reply.get("code")
    errmsg = reply.get("errmsg", reply.get("$err", "Unknown command error"))
    if code in NOT_PRIMARY_CODES or (
        code is None and ("not master" in errmsg or "node is recovering" in errmsg)
    ):
        return NotPrimaryError(errmsg, reply)  # type: ignore[return-value]
    if code == EXCEEDED_TIME_LIMIT:
        return ExecutionTimeout(errmsg, code, reply, max_wire_version)
    if code == CURSOR_NOT_FOUND:
        return CursorNotFound(errmsg, code, reply, max_wire_version)
    if code in DUPLICATE_KEY_CODES:
        return DuplicateKeyError(errmsg, code, reply, max_wire_version)
    return OperationFailure(errmsg, code, reply, max_wire_version)


def write_concern_error_details(reply: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """A reply's ``writeConcernError`` document with the reply's error labels, or None."""
    wce = reply.get("writeConcernError")
    if not wce:
        return None
    details = dict(wce)
    labels = reply.get("errorLabels")
    if labels:
        details["errorLabels"] = list(labels)
    return details


def write_concern_error(reply: Mapping[str, Any]) -> Optional[WriteConcernError]:
    """The :class:`~pymongo.errors.WriteConcernError` a reply's ``writeConcernError`` maps to
    (with the reply's error labels), or None."""
    details = write_concern_error_details(reply)
    if details is None:
        return None
    return WriteConcernError(details.get("errmsg", "write concern error"), details.get("code"), details)


def check_write_concern_error(reply: Mapping[str, Any]) -> None:
    """Raise the reply's write-concern error, if it has one."""
    exc = write_concern_error(reply)
    if exc is not None:
        raise exc


def is_resumable(exc: BaseException, max_wire: int = 17) -> bool:
    """Whether a change stream resumes after *exc* (change-streams spec)."""
    if isinstance(exc, ConnectionFailure) and not isinstance(exc, OperationFailure):
        return True
    if isinstance(exc, CursorNotFound):
        return True
    if isinstance(exc, OperationFailure):
        if exc.has_error_label("ResumableChangeStreamError"):
            return True
        if max_wire < 9:
            return exc.code in RESUMABLE_CODES
    return False


def is_unknown_commit(exc: BaseException) -> bool:
    """Whether a failed commitTransaction gets the ``UnknownTransactionCommitResult`` label."""
    code = getattr(exc, "code", None)
    unknown = isinstance(exc, (ConnectionFailure, ServerSelectionTimeoutError, WriteConcernError)) or (
        isinstance(exc, OperationFailure)
        and (code in UNKNOWN_COMMIT_CODES or exc.has_error_label("RetryableWriteError"))
    )
    return unknown and code not in NOT_UNKNOWN_COMMIT_CODES

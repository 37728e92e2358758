"""OpenTelemetry tracing (the MongoDB OpenTelemetry specification).

Off by default. A client traces when its ``tracing={"enabled": True}`` option says so, or,
when the option leaves ``enabled`` out, when the environment variable
``OTEL_PYTHON_INSTRUMENTATION_MONGODB_ENABLED`` is ``true`` / ``1`` / ``yes`` (the client option
wins, as the spec requires; PyMongo names the option and the variable the same way). Tracing
needs the OpenTelemetry *API* (the ``otel`` extra: ``pip install '.[otel]'``); amongo never depends on the SDK
and never enables itself because an SDK happens to be installed.

What is traced, with the spec's attribute names:

- one span per driver operation (``find db.coll``, ``insert db.coll``, ``runCommand``'s command
  name with the database, ``commitTransaction admin``...), around server selection, checkout,
  every retry and reply decoding; operations in a transaction nest under a ``transaction``
  span started by ``start_transaction`` and ended by commit/abort;
- one span per command sent (``find``, ``getMore``...), nested in its operation's span, one
  per retry; sensitive commands (authentication, ``hello`` with speculative auth) get none.

``db.query.text`` (the command as relaxed Extended JSON without ``lsid``, ``$db``,
``$clusterTime`` and ``signature``) is added only when ``tracing={"query_text_max_length": N}``
or ``OTEL_PYTHON_INSTRUMENTATION_MONGODB_QUERY_TEXT_MAX_LENGTH`` is a positive integer; it is
truncated to N characters.

When tracing is disabled the client holds ``None``: the executor skips every hook with one
``is None`` test and ``opentelemetry`` is never imported.
"""
from __future__ import annotations

import contextlib
import os
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Dict, Iterator, Mapping, Optional

from bson import json_util
from pymongo.errors import ConfigurationError

from amongo._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from amongo.connection import Connection
    from amongo.engine.session import ClientSession

ENV_ENABLED = "OTEL_PYTHON_INSTRUMENTATION_MONGODB_ENABLED"
ENV_QUERY_TEXT_MAX_LENGTH = "OTEL_PYTHON_INSTRUMENTATION_MONGODB_QUERY_TEXT_MAX_LENGTH"
TRACER_NAME = "amongo"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_JSON_OPTIONS = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED)
# Left out of db.query.text (spec).
_QUERY_TEXT_OMIT = frozenset({"lsid", "$db", "$clusterTime", "signature"})
# Operation names that differ from their command's name (spec's covered-operations table).
_OPERATION_NAMES = {"drop": "dropCollection", "create": "createCollection"}
# Commands whose first value is a string that does not name a collection.
_NOT_COLLECTION = frozenset({"renameCollection", "explain", "saslStart", "saslContinue", "authenticate"})

#: The operation span of the operation running in this task (command spans nest in it).
_OPERATION: ContextVar[Any] = ContextVar("amongo_tracing_operation", default=None)


def _env_enabled() -> bool:
    raw = os.environ.get(ENV_ENABLED, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{ENV_ENABLED} must be true or false, not {raw!r}")


def _env_query_text_max_length() -> int:
    raw = os.environ.get(ENV_QUERY_TEXT_MAX_LENGTH, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{ENV_QUERY_TEXT_MAX_LENGTH} must be an integer, not {raw!r}") from None
    return max(0, value)


def from_options(options: Optional[Mapping[str, Any]]) -> Optional["Tracing"]:
    """The client's :class:`Tracing`, or None when tracing is disabled (no import then)."""
    options = options or {}
    enabled = options.get("enabled")
    if enabled is None:
        enabled = _env_enabled()
    if not enabled:
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigurationError(
            "tracing needs the OpenTelemetry API: install opentelemetry-api (amongo's otel extra)"
        ) from None
    length = options.get("query_text_max_length")
    if length is None:
        length = _env_query_text_max_length()
    provider = options.get("tracer_provider")
    tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=provider)
    return Tracing(tracer, length)


def _collection(name: str, dbname: str, cmd: Mapping[str, Any]) -> Optional[str]:
    """The collection *cmd* works on (None for admin commands, transactions, client bulkWrite
    and commands on no collection)."""
    if dbname == "admin":
        return None
    if name == "getMore":
        coll = cmd.get("collection")
        return coll if isinstance(coll, str) else None
    value = cmd.get(name)
    if isinstance(value, str) and name not in _NOT_COLLECTION and value:
        return value
    return None


def _cursor_id(name: str, cmd: Mapping[str, Any]) -> int:
    """The cursor id a getMore or killCursors sends (0: none)."""
    cursor_id = cmd.get(name) if name == "getMore" else (cmd.get("cursors") or [None])[0]
    return int(cursor_id) if isinstance(cursor_id, int) else 0


def _summary(name: str, dbname: str, coll: Optional[str]) -> str:
    return f"{name} {dbname}.{coll}" if coll else f"{name} {dbname}"


def _set_exception(span: Any, exc: BaseException, error_type: Optional[str] = None) -> None:
    """Record *exc* on *span*: the exception.* attributes, ``error.type`` (*error_type*, else
    the exception's class name) and an error status."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type or type(exc).__name__)
    span.set_attribute("exception.message", str(exc))
    span.set_attribute("exception.type", type(exc).__name__)
    span.set_attribute("exception.stacktrace", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    span.set_status(Status(StatusCode.ERROR, str(exc)))


@contextlib.contextmanager
def _running(span: Any) -> Iterator[None]:
    """*span* is this task's running operation until the block ends (then it ends, with the
    block's exception recorded)."""
    token = _OPERATION.set(span)
    try:
        yield
    except BaseException as exc:
        _set_exception(span, exc)
        raise
    finally:
        _OPERATION.reset(token)
        span.end()


class Tracing:
    """One client's tracer and settings (internal; see the module docstring)."""

    __slots__ = ("tracer", "query_text_max_length", "_kind", "_set_span_in_context")

    def __init__(self, tracer: Any, query_text_max_length: int) -> None:
        from opentelemetry.trace import SpanKind, set_span_in_context

        self.tracer = tracer
        self.query_text_max_length = query_text_max_length
        self._kind = SpanKind.CLIENT
        self._set_span_in_context = set_span_in_context

    # -- transactions --
    def start_transaction(self, session: "ClientSession") -> None:
        """Start the ``transaction`` span of *session*'s new transaction."""
        session._end_trace_span()
        session._trace_span = self.tracer.start_span(
            "transaction", kind=self._kind, attributes={"db.system.name": "mongodb"}
        )

    # -- operations --
    async def operation(
        self, coro: Awaitable[Dict[str, Any]], dbname: str, cmd: Mapping[str, Any],
        session: Optional["ClientSession"], is_txn_finish: bool,
    ) -> Dict[str, Any]:
        """Await *coro* (one executor operation) inside an operation span."""
        if _OPERATION.get() is not None:  # a command run on behalf of a running operation
            return await coro
        name = next(iter(cmd))
        span = self._start_operation(_OPERATION_NAMES.get(name, name), dbname, _collection(name, dbname, cmd),
                                     session, is_txn_finish)
        if name in ("getMore", "killCursors"):
            cursor_id = _cursor_id(name, cmd)
            if cursor_id:
                span.set_attribute("db.mongodb.cursor_id", cursor_id)
        with _running(span):
            return await coro

    @contextlib.asynccontextmanager
    async def scope(self, op_name: str, dbname: str, coll: Optional[str],
                    session: Optional["ClientSession"]) -> AsyncIterator[None]:
        """One operation span around an operation of several commands (the write batches of
        ``insert_many`` / ``bulk_write``): its commands' spans nest in it."""
        if _OPERATION.get() is not None:
            yield
            return
        with _running(self._start_operation(op_name, dbname, None if dbname == "admin" else coll, session, False)):
            yield

    def _start_operation(self, op_name: str, dbname: str, coll: Optional[str],
                         session: Optional["ClientSession"], is_txn_finish: bool) -> Any:
        summary = _summary(op_name, dbname, coll)
        attributes: Dict[str, Any] = {
            "db.system.name": "mongodb", "db.namespace": dbname,
            "db.operation.name": op_name, "db.operation.summary": summary,
        }
        if coll:
            attributes["db.collection.name"] = coll
        context = None
        txn_span = getattr(session, "_trace_span", None) if session is not None else None
        if txn_span is not None and (session.in_transaction or is_txn_finish):  # type: ignore[union-attr]
            context = self._set_span_in_context(txn_span)
        return self.tracer.start_span(summary, context=context, kind=self._kind, attributes=attributes)

    # -- commands --
    def start_command(self, name: str, dbname: str, cmd: Mapping[str, Any], conn: "Connection") -> Any:
        """Start the span of one command about to be sent (*cmd* as the started event has it)."""
        parent = _OPERATION.get()
        context = self._set_span_in_context(parent) if parent is not None else None
        coll = _collection(name, dbname, cmd)
        host, port = conn.address[0], conn.address[1]
        attributes: Dict[str, Any] = {
            "db.system.name": "mongodb", "db.namespace": dbname, "db.command.name": name,
            "db.query.summary": _summary(name, dbname, coll),
            "network.transport": "unix" if isinstance(host, str) and host.endswith(".sock") else "tcp",
            "server.address": host, "db.mongodb.driver_connection_id": conn.id,
        }
        if port is not None:
            attributes["server.port"] = port
        if coll:
            attributes["db.collection.name"] = coll
        if conn.server_connection_id is not None:
            attributes["db.mongodb.server_connection_id"] = conn.server_connection_id
        lsid = cmd.get("lsid")
        if lsid is not None:
            attributes["db.mongodb.lsid"] = json_util.dumps(lsid, json_options=_JSON_OPTIONS)
        txn_number = cmd.get("txnNumber")
        if txn_number is not None:
            attributes["db.mongodb.txn_number"] = int(txn_number)
        if name in ("getMore", "killCursors"):
            cursor_id = _cursor_id(name, cmd)
            if cursor_id:
                attributes["db.mongodb.cursor_id"] = cursor_id
        limit = self.query_text_max_length
        if limit > 0:
            text = json_util.dumps(
                {k: v for k, v in cmd.items() if k not in _QUERY_TEXT_OMIT}, json_options=_JSON_OPTIONS
            )
            if len(text) > limit:
                text = text[:limit] + "..."
            attributes["db.query.text"] = text
        return self.tracer.start_span(name, context=context, kind=self._kind, attributes=attributes)

    @staticmethod
    def command_succeeded(span: Any, reply: Mapping[str, Any]) -> None:
        """End a command's *span* after its reply (records the cursor id, if any)."""
        cursor = reply.get("cursor")
        if isinstance(cursor, Mapping) and "db.mongodb.cursor_id" not in (getattr(span, "attributes", None) or {}):
            cursor_id = cursor.get("id")
            if isinstance(cursor_id, int) and cursor_id:
                span.set_attribute("db.mongodb.cursor_id", int(cursor_id))
        span.end()

    @staticmethod
    def command_failed(span: Any, exc: BaseException) -> None:
        """End a command's *span* after the error *exc* (status code, exception event)."""
        code = getattr(exc, "code", None)
        if code is not None:
            span.set_attribute("db.response.status_code", str(code))
        _set_exception(span, exc, None if code is None else str(code))
        span.end()

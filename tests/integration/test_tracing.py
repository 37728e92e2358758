"""OpenTelemetry tracing (amongo/tracing.py): the OpenTelemetry spec's prose tests, the switches,
nesting under the application's span, errors, and nothing imported when tracing is off.
The spec's unified tests run in tests/unified (open-telemetry suite)."""
from __future__ import annotations

import subprocess
import sys
from typing import Any, Iterator, List, Tuple

import pytest
from pymongo.errors import ConfigurationError, OperationFailure

from amongo import tracing
from amongo.motor_asyncio import AsyncIOMotorClient

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402


@pytest.fixture
def otel() -> Iterator[Tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(tracing.ENV_ENABLED, raising=False)
    monkeypatch.delenv(tracing.ENV_QUERY_TEXT_MAX_LENGTH, raising=False)
    return monkeypatch


async def _find(uri: str, **kw: Any) -> None:
    client = AsyncIOMotorClient(uri, **kw)
    try:
        await client.otel_db.otel_coll.find_one({"x": 1})
    finally:
        client.close()


def _names(exporter: InMemorySpanExporter) -> List[str]:
    return [s.name for s in exporter.get_finished_spans()]


async def test_enabled_by_environment_variable(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    """Prose test 1: OTEL_PYTHON_INSTRUMENTATION_MONGODB_ENABLED switches tracing."""
    provider, exporter = otel
    no_otel_env.setenv(tracing.ENV_ENABLED, "false")
    await _find(secantus_rs.uri, tracing={"tracer_provider": provider})
    assert _names(exporter) == []
    no_otel_env.setenv(tracing.ENV_ENABLED, "true")
    await _find(secantus_rs.uri, tracing={"tracer_provider": provider})
    assert _names(exporter) == ["find", "find otel_db.otel_coll"]  # command span ends first


async def test_query_text_by_environment_variable(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    """Prose test 2: OTEL_PYTHON_INSTRUMENTATION_MONGODB_QUERY_TEXT_MAX_LENGTH adds db.query.text."""
    provider, exporter = otel
    no_otel_env.setenv(tracing.ENV_ENABLED, "true")
    no_otel_env.setenv(tracing.ENV_QUERY_TEXT_MAX_LENGTH, "1024")
    await _find(secantus_rs.uri, tracing={"tracer_provider": provider})
    (cmd,) = [s for s in exporter.get_finished_spans() if s.name == "find"]
    text = cmd.attributes["db.query.text"]
    assert '"find": "otel_coll"' in text and '"lsid"' not in text and '"$db"' not in text
    exporter.clear()
    no_otel_env.delenv(tracing.ENV_QUERY_TEXT_MAX_LENGTH)
    await _find(secantus_rs.uri, tracing={"tracer_provider": provider})
    (cmd,) = [s for s in exporter.get_finished_spans() if s.name == "find"]
    assert "db.query.text" not in cmd.attributes


async def test_client_option_overrides_environment(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    provider, exporter = otel
    no_otel_env.setenv(tracing.ENV_ENABLED, "true")
    await _find(secantus_rs.uri, tracing={"enabled": False, "tracer_provider": provider})
    assert _names(exporter) == []
    no_otel_env.setenv(tracing.ENV_ENABLED, "false")
    await _find(secantus_rs.uri, tracing={"enabled": True, "query_text_max_length": 10, "tracer_provider": provider})
    (cmd,) = [s for s in exporter.get_finished_spans() if s.name == "find"]
    assert cmd.attributes["db.query.text"] == '{"find": "...'  # truncated to 10 characters


async def test_spans_nest_under_the_application_span(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    provider, exporter = otel
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("request") as app:
        await _find(secantus_rs.uri, tracing={"enabled": True, "tracer_provider": provider})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    op, cmd = spans["find otel_db.otel_coll"], spans["find"]
    assert op.parent.span_id == app.get_span_context().span_id
    assert cmd.parent.span_id == op.context.span_id
    assert op.context.trace_id == cmd.context.trace_id == app.get_span_context().trace_id
    assert op.attributes["db.operation.name"] == "find" and cmd.attributes["db.command.name"] == "find"
    assert cmd.attributes["server.port"] == secantus_rs.port
    assert isinstance(cmd.attributes["db.mongodb.driver_connection_id"], int)


@pytest.mark.requires("fail_command")
async def test_server_error_recorded_on_both_spans(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    provider, exporter = otel
    client = AsyncIOMotorClient(secantus_rs.uri, retryReads=False,
                                tracing={"enabled": True, "tracer_provider": provider})
    admin = AsyncIOMotorClient(secantus_rs.uri)
    await admin.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1},
                               "data": {"failCommands": ["find"], "errorCode": 2}})
    try:
        with pytest.raises(OperationFailure):
            await client.otel_db.otel_coll.find_one({})
    finally:
        await admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        client.close()
        admin.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    cmd, op = spans["find"], spans["find otel_db.otel_coll"]
    assert cmd.attributes["db.response.status_code"] == "2"
    assert cmd.attributes["error.type"] == "2"  # the server's code on the command span
    assert op.attributes["error.type"] == "OperationFailure"  # the class on the operation's
    for span in (cmd, op):
        assert span.attributes["exception.type"] == "OperationFailure"
        assert "failCommand" in span.attributes["exception.message"]
        assert "Traceback" in span.attributes["exception.stacktrace"]
        assert not span.status.is_ok


@pytest.mark.requires("transactions")
async def test_transaction_span(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    provider, exporter = otel
    client = AsyncIOMotorClient(secantus_rs.uri, tracing={"enabled": True, "tracer_provider": provider})
    try:
        await client.otel_db.otel_txn.insert_one({})
        exporter.clear()
        async with await client.start_session() as s:
            async with s.start_transaction():
                await client.otel_db.otel_txn.insert_one({"a": 1}, session=s)
    finally:
        client.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    txn = spans["transaction"]
    assert dict(txn.attributes) == {"db.system.name": "mongodb"}
    assert spans["insert otel_db.otel_txn"].parent.span_id == txn.context.span_id
    assert spans["commitTransaction admin"].parent.span_id == txn.context.span_id
    txn_number = spans["insert"].attributes["db.mongodb.txn_number"]
    assert spans["commitTransaction"].attributes["db.mongodb.txn_number"] == txn_number


async def _three_docs(client: Any) -> Any:
    coll = client.otel_db.otel_cursor
    await coll.drop()
    await coll.insert_many([{"_id": i} for i in range(3)])
    return coll


async def test_getmore_records_the_cursor_id_it_sent(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    """Prose test 4: the getMore spans carry the id the driver sent (the reply's is 0)."""
    provider, exporter = otel
    client = AsyncIOMotorClient(secantus_rs.uri, tracing={"enabled": True, "tracer_provider": provider})
    try:
        coll = await _three_docs(client)
        cursor = coll.find({}, batch_size=2)
        await cursor.next()
        cursor_id = cursor.cursor_id
        assert cursor_id
        assert len(await cursor.to_list(None)) == 2
    finally:
        client.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["getMore otel_db.otel_cursor"].attributes["db.mongodb.cursor_id"] == cursor_id
    assert spans["getMore"].attributes["db.mongodb.cursor_id"] == cursor_id
    assert spans["find"].attributes["db.mongodb.cursor_id"] == cursor_id  # the cursor find opened


@pytest.mark.requires("transactions")
async def test_getmore_in_with_transaction_nests_under_the_transaction(secantus_rs: Any, otel: Any,
                                                                        no_otel_env: Any) -> None:
    """Prose test 3: find and its getMore inside with_transaction are siblings under the
    transaction span."""
    provider, exporter = otel
    client = AsyncIOMotorClient(secantus_rs.uri, tracing={"enabled": True, "tracer_provider": provider})
    try:
        coll = await _three_docs(client)
        exporter.clear()

        async def callback(session: Any) -> None:
            assert len(await coll.find({}, batch_size=2, session=session).to_list(None)) == 3

        async with await client.start_session() as s:
            await s.with_transaction(callback)
    finally:
        client.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    txn = spans["transaction"].context.span_id
    assert spans["find otel_db.otel_cursor"].parent.span_id == txn
    assert spans["getMore otel_db.otel_cursor"].parent.span_id == txn


async def test_bulk_write_is_one_operation(secantus_rs: Any, otel: Any, no_otel_env: Any) -> None:
    """A bulk_write of inserts and updates sends two commands: both nest in one operation span."""
    from pymongo import InsertOne, UpdateOne

    provider, exporter = otel
    client = AsyncIOMotorClient(secantus_rs.uri, tracing={"enabled": True, "tracer_provider": provider})
    try:
        await client.otel_db.otel_bulk.bulk_write([InsertOne({"a": 1}), UpdateOne({"a": 1}, {"$set": {"b": 1}})])
    finally:
        client.close()
    spans = exporter.get_finished_spans()
    (op,) = [s for s in spans if s.name == "bulkWrite otel_db.otel_bulk"]
    assert op.attributes["db.operation.name"] == "bulkWrite"
    nested = sorted(s.name for s in spans if s.parent is not None and s.parent.span_id == op.context.span_id)
    assert nested == ["insert", "update"]
    assert len(spans) == 3


def test_option_validation(no_otel_env: Any) -> None:
    with pytest.raises(ConfigurationError, match="Unknown tracing"):
        AsyncIOMotorClient("mongodb://localhost:1", connect=False, tracing={"enable": True})
    with pytest.raises(TypeError):
        AsyncIOMotorClient("mongodb://localhost:1", connect=False, tracing={"enabled": "yes"})
    with pytest.raises(ValueError):
        AsyncIOMotorClient("mongodb://localhost:1", connect=False, tracing={"query_text_max_length": -1})
    no_otel_env.setenv(tracing.ENV_ENABLED, "maybe")
    with pytest.raises(ConfigurationError, match=tracing.ENV_ENABLED):
        AsyncIOMotorClient("mongodb://localhost:1", connect=False)


def test_missing_api_is_a_configuration_error(no_otel_env: Any) -> None:
    no_otel_env.setitem(sys.modules, "opentelemetry", None)  # as if opentelemetry-api were absent
    with pytest.raises(ConfigurationError, match="otel extra"):
        AsyncIOMotorClient("mongodb://localhost:1", connect=False, tracing={"enabled": True})
    AsyncIOMotorClient("mongodb://localhost:1", connect=False)  # disabled: nothing needed


def test_disabled_tracing_imports_nothing() -> None:
    """Zero cost when off: no opentelemetry import, the executor's hook is None."""
    code = (
        "import sys, asyncio\n"
        "from amongo.motor_asyncio import AsyncIOMotorClient\n"
        "c = AsyncIOMotorClient('mongodb://localhost:1', connect=False)\n"
        "assert c._executor._tracing is None\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)

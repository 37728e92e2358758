"""OpenTelemetry: ``opentelemetry-instrumentation-pymongo`` registers a global
``pymongo.monitoring.CommandListener``; amongo publishes its command events to global listeners,
so the instrumentation traces amongo's commands with no amongo-specific code.

Runs in a subprocess: the instrumentor's listener stays registered in ``pymongo.monitoring``
for the life of the process (``uninstrument()`` only disables it), which would turn command
monitoring on for every later client of the test session."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the test extra installs opentelemetry-sdk")
pytest.importorskip("opentelemetry.instrumentation.pymongo")

SCRIPT = textwrap.dedent('''
    import asyncio, json, sys
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from pymongo.errors import OperationFailure

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    PymongoInstrumentor().instrument(tracer_provider=provider)

    from amongo.motor_asyncio import AsyncIOMotorClient

    async def main():
        client = AsyncIOMotorClient(sys.argv[1])
        try:
            coll = client.otel_test.things
            await coll.insert_one({"x": 1})
            await coll.find_one({"x": 1})
            try:
                await client.otel_test.command("amongoNoSuchCommand")
            except OperationFailure:
                pass
        finally:
            client.close()

    asyncio.run(main())
    print(json.dumps([
        {"name": s.name, "kind": s.kind.name, "status": s.status.status_code.name,
         "attributes": dict(s.attributes)}
        for s in exporter.get_finished_spans()
    ]))
''')


def test_instrumentation_traces_amongo_commands(secantus_rs) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, secantus_rs.uri],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    spans = json.loads(proc.stdout.strip().splitlines()[-1])
    by_name = {s["name"]: s for s in spans}
    assert {"otel_test.insert", "otel_test.find", "otel_test.amongoNoSuchCommand"} <= set(by_name), spans
    insert = by_name["otel_test.insert"]
    assert insert["kind"] == "CLIENT" and insert["status"] == "UNSET"
    attrs = insert["attributes"]
    assert attrs.get("db.system") == "mongodb" and attrs.get("db.name") == "otel_test"
    assert attrs.get("db.mongodb.collection") == "things"
    assert attrs.get("net.peer.name") == secantus_rs.host and attrs.get("net.peer.port") == secantus_rs.port
    assert by_name["otel_test.amongoNoSuchCommand"]["status"] == "ERROR"
    # the handshake and the monitors' hellos are not commands: no spans for them
    assert not any(s["name"].endswith((".hello", ".isMaster", ".ismaster")) for s in spans)

"""CMAP spec tests, ``"style": "integration"`` files, against a live server.

Each file runs with :class:`tests.cmap_runner.Runner` and a real connection factory:
``connect(generation, conn_id)`` opens and handshakes an :class:`amongo.connection.Connection`
with the file's ``poolOptions.appName`` (so the file's ``failPoint``, which is scoped to that
appName, applies only to the pool under test). The ``failPoint`` is set before the test
through a separate pymongo client and turned off afterwards; ``runOn`` is checked against the
server version.

Error handling mirrors the topology (``Topology._server_for``'s ``connect``): an error while
opening a connection is handed to an SDAM-like handler *inside* ``connect``, before the pool
publishes ConnectionClosed; for a pre-handshake network error or command error SDAM marks the
server Unknown and clears its pool (if the connection's generation is still current), which is
what ``pool-create-min-size-error`` expects (PoolCleared, then ConnectionClosed).

Runs on ``secantus_rs`` (SecantusDB, started with test commands enabled), or the
``MONGODB_URI`` deployment when set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from pymongo.errors import ConnectionFailure, OperationFailure

from amongo.connection import Connection, ConnectionOptions
from servers import Deployment, require
from tests._specs import load
from tests.cmap_runner import FILES, Runner

#: file stem -> reason, for files that cannot pass because of a server limitation (none).
SERVER_LIMITATIONS: Dict[str, str] = {}


def _ids(paths: List[Path]) -> List[str]:
    return [p.stem for p in paths]


def _version_tuple(v: str) -> Tuple[int, ...]:
    out: List[int] = []
    for part in v.split("-")[0].split("."):
        try:
            out.append(int(part))
        except ValueError:
            break
    while len(out) < 3:
        out.append(0)
    return tuple(out)


def _run_on_ok(run_on: Optional[List[Dict[str, Any]]], version: str, topology: str) -> Optional[str]:
    """``None`` if one ``runOn`` entry matches, else the reason to skip."""
    if not run_on:
        return None
    have = _version_tuple(version)
    reasons = []
    for req in run_on:
        lo = req.get("minServerVersion")
        hi = req.get("maxServerVersion")
        tops = req.get("topology") or req.get("topologies")
        if lo and have < _version_tuple(lo):
            reasons.append(f"server {version} < minServerVersion {lo}")
            continue
        if hi and have > _version_tuple(hi):
            reasons.append(f"server {version} > maxServerVersion {hi}")
            continue
        if tops and topology not in tops:
            reasons.append(f"topology {topology} not in {tops}")
            continue
        return None
    return "runOn: " + "; ".join(reasons)


def _connection_options(dep: Deployment, appname: Optional[str]) -> ConnectionOptions:
    """The connection options an amongo client for *dep* would use (credentials, TLS, API
    version from its URI), with *appname*. The client is never connected."""
    from amongo.client import MongoClient

    client = MongoClient(dep.uri, appname=appname, connect=False)
    try:
        return client._connection_options
    finally:
        client.close()


@pytest.fixture(scope="module")
def cmap_server(secantus_rs: Deployment) -> Dict[str, Any]:
    """The deployment, its primary's address, version and topology type (probed once)."""
    require(secantus_rs, "fail_command")
    client = secantus_rs.pymongo_client()
    try:
        version = client.admin.command("buildInfo")["version"]
        hello = client.admin.command("hello")
        primary = hello.get("primary") or f"{secantus_rs.host}:{secantus_rs.port}"
    finally:
        client.close()
    host, _, port = primary.rpartition(":")
    topology = "sharded" if hello.get("msg") == "isdbgrid" else (
        "replicaset" if hello.get("setName") else "single"
    )
    return {"dep": secantus_rs, "address": (host, int(port)), "version": version, "topology": topology}


@pytest.mark.parametrize("path", FILES["integration"], ids=_ids(FILES["integration"]))
async def test_cmap_integration_file(path: Path, cmap_server: Dict[str, Any]) -> None:
    test = load(path)
    if path.stem in SERVER_LIMITATIONS:
        pytest.skip(SERVER_LIMITATIONS[path.stem])
    reason = _run_on_ok(test.get("runOn"), cmap_server["version"], cmap_server["topology"])
    if reason:
        pytest.skip(reason)
    dep: Deployment = cmap_server["dep"]
    address = cmap_server["address"]
    appname = (test.get("poolOptions") or {}).get("appName")
    conn_opts = _connection_options(dep, appname)
    runner_box: List[Runner] = []

    def sdam_handle_connect_error(exc: BaseException, generation: int) -> None:
        # SDAM "Error handling", before the handshake completed: a network error or a
        # command error marks the server Unknown and clears its pool (stale errors ignored).
        pool = runner_box[0].pool
        if isinstance(exc, (ConnectionFailure, OperationFailure)) and generation == pool.generation:
            pool.clear()

    async def connect(generation: int, conn_id: int) -> Connection:
        try:
            return await Connection.open(address, conn_opts, conn_id, generation)
        except (ConnectionFailure, OperationFailure) as exc:
            sdam_handle_connect_error(exc, generation)
            raise

    fail_point = test.get("failPoint")
    admin_client = dep.pymongo_client(direct=True) if fail_point else None
    try:
        if fail_point:
            admin_client.admin.command(dict(fail_point))
        runner = Runner(test, connect=connect, address=address)
        runner_box.append(runner)
        await runner.run()
    finally:
        if admin_client is not None:
            try:
                admin_client.admin.command(
                    {"configureFailPoint": fail_point["configureFailPoint"], "mode": "off"}
                )
            finally:
                admin_client.close()

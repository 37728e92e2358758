"""A runner for the MongoDB unified test format, written against the Motor API.

``AMONGO_UNIFIED_DRIVER=motor`` runs it with ``motor.motor_asyncio``; the default (``amongo``)
runs it with ``amongo.motor_asyncio``. Everything goes through the public Motor API, plus
``pymongo.monitoring`` listeners passed as ``event_listeners=[...]``.

``AMONGO_UNIFIED_API=pymongo`` runs the tests' entities through amongo's PyMongo-style API
instead (``amongo.AsyncMongoClient``, ``amongo.asynchronous.gridfs.AsyncGridFSBucket``): the
operations whose awaitable-ness differs between the two APIs (``aggregate``, ``watch``,
``list_indexes``, ``start_session``, ``start_transaction``, ``close``) dispatch on the API, and
the operations only PyMongo's API has (GridFS ``deleteByName`` / ``renameByName``, the client's
``appendMetadata``) run there. The default is ``motor``.

Spec: github.com/mongodb/specifications source/unified-test-format/unified-test-format.md.
"""
from __future__ import annotations

import asyncio
import logging
import copy
import json
import importlib
import os
import re
import time
from typing import Any, Dict, List, Optional, Tuple

from bson import SON, Binary, ObjectId, json_util
from bson.codec_options import CodecOptions
from pymongo import monitoring
from pymongo.errors import (
    BulkWriteError,
    ClientBulkWriteException,
    NotPrimaryError,
    OperationFailure,
    PyMongoError,
)
from pymongo.operations import (
    DeleteMany,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    SearchIndexModel,
    UpdateMany,
    UpdateOne,
)
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference, make_read_preference, read_pref_mode_from_name
from pymongo.results import (
    BulkWriteResult,
    ClientBulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)
from pymongo.server_api import ServerApi
from pymongo.write_concern import WriteConcern

from .extra_ops import ExtraOperations
from .matching import MISSING, MatchError, Matcher, exact_equal
from .schema import validate

SUPPORTED_SCHEMA = (1, 28)

DRIVER_ENV = "AMONGO_UNIFIED_DRIVER"


_JSON_OPTIONS = json_util.JSONOptions(tz_aware=False, json_mode=json_util.JSONMode.CANONICAL)


def load_extended(raw: Any) -> Any:
    """Spec JSON (as ``_specs.load`` returns it) with extended JSON turned into BSON types."""
    return json_util.loads(json.dumps(raw), json_options=_JSON_OPTIONS)


def driver_name() -> str:
    return os.environ.get(DRIVER_ENV, "amongo") or "amongo"


API_ENV = "AMONGO_UNIFIED_API"

#: fail-point commands that change nothing on the server (a blocked one may run on unnoticed)
_READ_COMMANDS = frozenset({
    "find", "getMore", "aggregate", "count", "distinct", "listCollections", "listIndexes",
    "listDatabases", "hello", "isMaster", "ismaster", "ping", "killCursors", "explain", "dbStats",
})


def api_name() -> str:
    """``motor`` (the default) or ``pymongo``: which amongo API the entities use."""
    name = os.environ.get(API_ENV, "motor") or "motor"
    if name not in ("motor", "pymongo"):
        raise ValueError(f"{API_ENV} must be motor or pymongo, not {name!r}")
    if name == "pymongo" and driver_name() == "motor":
        raise ValueError(f"{API_ENV}=pymongo runs amongo's PyMongo-style API: not with {DRIVER_ENV}=motor")
    return name


#: what only PyMongo's API has: skipped with the Motor API, run with AMONGO_UNIFIED_API=pymongo
ONLY_IN_PYMONGO_API = {
    "deleteByName": "GridFSBucket.delete_by_name is PyMongo's (not in the Motor 3.7.1 API)",
    "renameByName": "GridFSBucket.rename_by_name is PyMongo's (not in the Motor 3.7.1 API)",
    "appendMetadata": "MongoClient.append_metadata is PyMongo's (not in the Motor 3.7.1 API)",
}


def driver_module() -> Any:
    """``motor.motor_asyncio`` or ``amongo.motor_asyncio`` (raises ImportError)."""
    if driver_name() == "motor":
        return importlib.import_module("motor.motor_asyncio")
    return importlib.import_module("amongo.motor_asyncio")


class Skip(Exception):
    """The test cannot run here (requirements, or a feature outside the Motor API)."""


class SchemaVersionError(Exception):
    pass


def check_schema_version(version: str) -> None:
    parts = tuple(int(p) for p in version.split("."))
    if parts[0] != SUPPORTED_SCHEMA[0] or parts[:2] > SUPPORTED_SCHEMA:
        raise SchemaVersionError(f"unsupported schemaVersion {version}")


# Operations and arguments that are not part of the Motor 3.7.1 / PyMongo API.
NOT_IN_MOTOR_API = {
    "count": "Collection.count() was removed in PyMongo 4 / Motor 3",
    "mapReduce": "mapReduce is not part of the Motor 3 API",
    "listIndexNames": "listIndexNames is an optional helper Motor does not have",
    "listCollectionObjects": "listCollectionObjects is an optional helper Motor does not have",
    "listDatabaseObjects": "listDatabaseObjects is an optional helper Motor does not have",
    "getSnapshotTime": "Motor does not expose a session's snapshot time",
}
ARGS_NOT_IN_MOTOR_API = {
    "rawData": "rawData is not part of the Motor 3.7.1 API",
}

SENSITIVE = {
    "authenticate", "saslstart", "saslcontinue", "getnonce", "createuser", "updateuser",
    "copydbgetnonce", "copydbsaslstart", "copydb",
}

# -- events ------------------------------------------------------------------------------

_CMAP_NAMES = {
    monitoring.PoolCreatedEvent: "poolCreatedEvent",
    monitoring.PoolReadyEvent: "poolReadyEvent",
    monitoring.PoolClearedEvent: "poolClearedEvent",
    monitoring.PoolClosedEvent: "poolClosedEvent",
    monitoring.ConnectionCreatedEvent: "connectionCreatedEvent",
    monitoring.ConnectionReadyEvent: "connectionReadyEvent",
    monitoring.ConnectionClosedEvent: "connectionClosedEvent",
    monitoring.ConnectionCheckOutStartedEvent: "connectionCheckOutStartedEvent",
    monitoring.ConnectionCheckOutFailedEvent: "connectionCheckOutFailedEvent",
    monitoring.ConnectionCheckedOutEvent: "connectionCheckedOutEvent",
    monitoring.ConnectionCheckedInEvent: "connectionCheckedInEvent",
}
_SDAM_NAMES = {
    monitoring.ServerDescriptionChangedEvent: "serverDescriptionChangedEvent",
    monitoring.TopologyDescriptionChangedEvent: "topologyDescriptionChangedEvent",
    monitoring.TopologyOpenedEvent: "topologyOpeningEvent",
    monitoring.TopologyClosedEvent: "topologyClosedEvent",
    monitoring.ServerHeartbeatStartedEvent: "serverHeartbeatStartedEvent",
    monitoring.ServerHeartbeatSucceededEvent: "serverHeartbeatSucceededEvent",
    monitoring.ServerHeartbeatFailedEvent: "serverHeartbeatFailedEvent",
}
_CMD_NAMES = {
    monitoring.CommandStartedEvent: "commandStartedEvent",
    monitoring.CommandSucceededEvent: "commandSucceededEvent",
    monitoring.CommandFailedEvent: "commandFailedEvent",
}
EVENT_NAMES = {**_CMAP_NAMES, **_SDAM_NAMES, **_CMD_NAMES}
EVENT_KIND = {**{v: "cmap" for v in _CMAP_NAMES.values()}, **{v: "sdam" for v in _SDAM_NAMES.values()},
              **{v: "command" for v in _CMD_NAMES.values()}}


class EventRecorder(monitoring.CommandListener, monitoring.ConnectionPoolListener,
                    monitoring.ServerListener, monitoring.TopologyListener,
                    monitoring.ServerHeartbeatListener):
    """Records one client's events (as ``(spec_name, event)``), filtered as the entity says."""

    def __init__(self, observe: List[str], ignore: List[str], sensitive: bool,
                 store: Dict[str, List[str]], entities: Dict[str, Any]) -> None:
        self.observe = set(observe)
        self.ignore = {c.lower() for c in ignore} | {"configurefailpoint"}
        self.sensitive = sensitive
        self.events: List[Tuple[str, Any]] = []
        self.started_events: List[Any] = []  # every command started event, unfiltered
        self.store = store  # entity id -> spec event names (CamelCase) to store as documents
        self.entities = entities
        self.ignored_requests: set = set()
        self.checked_out = 0
        self.open_connections = 0  # ready minus closed (awaitMinPoolSizeMS)

    # The same callback for every kind of event.
    def _record(self, event: Any) -> None:
        name = EVENT_NAMES.get(type(event))
        if name is None:
            return
        if name == "connectionReadyEvent":
            self.open_connections += 1
        elif name == "connectionClosedEvent":
            self.open_connections -= 1
        if name == "connectionCheckedOutEvent":
            self.checked_out += 1
        elif name == "connectionCheckedInEvent":
            self.checked_out -= 1
        if name in _CMD_NAMES.values():
            if name == "commandStartedEvent":
                self.started_events.append(event)
            cmd_name = event.command_name.lower()
            key = (event.request_id, getattr(event, "connection_id", None))
            ignored = cmd_name in self.ignore
            if not self.sensitive:
                if cmd_name in SENSITIVE:
                    ignored = True
                elif name == "commandStartedEvent" and cmd_name in ("hello", "ismaster") and (
                        "speculativeAuthenticate" in event.command or not event.command):
                    ignored = True
                elif name != "commandStartedEvent" and key in self.ignored_requests:
                    ignored = True
            if ignored:
                if name == "commandStartedEvent":
                    self.ignored_requests.add(key)
                return
        if name in self.observe:
            self.events.append((name, event))
        for entity_id, names in self.store.items():
            if name[0].upper() + name[1:] in names:
                self.entities[entity_id].append(_event_doc(name, event))

    started = succeeded = failed = _record
    pool_created = pool_ready = pool_cleared = pool_closed = _record
    connection_created = connection_ready = connection_closed = _record
    connection_check_out_started = connection_check_out_failed = _record
    connection_checked_out = connection_checked_in = _record
    description_changed = opened = closed = _record

    def count(self, expected: Dict[str, Any], matcher: Matcher) -> int:
        (name, spec), = expected.items()
        n = 0
        for ev_name, event in self.events:
            if ev_name == name:
                try:
                    match_event(name, spec, event, matcher)
                    n += 1
                except MatchError:
                    pass
        return n


def _event_doc(name: str, event: Any) -> Dict[str, Any]:
    doc: Dict[str, Any] = {"name": name[0].upper() + name[1:], "observedAt": time.time()}
    for attr in ("command_name", "request_id", "duration_micros", "connection_id"):
        if hasattr(event, attr):
            doc[attr] = getattr(event, attr)
    if hasattr(event, "address"):
        doc["address"] = "%s:%s" % tuple(event.address) if event.address else None
    return doc


def _reason(r: Any) -> str:
    return str(r)


def match_event(name: str, spec: Dict[str, Any], event: Any, matcher: Matcher) -> None:
    for key, value in spec.items():
        if key == "command":
            matcher.match(value, event.command, True, "command")
        elif key == "reply":
            matcher.match(value, event.reply, True, "reply")
        elif key == "commandName":
            matcher.match(value, event.command_name, False, key)
        elif key == "databaseName":
            matcher.match(value, event.database_name, False, key)
        elif key == "hasServiceId":
            if value != (getattr(event, "service_id", None) is not None):
                raise MatchError(f"hasServiceId {value}")
        elif key == "hasServerConnectionId":
            if value != (getattr(event, "server_connection_id", None) is not None):
                raise MatchError(f"hasServerConnectionId {value}")
        elif key == "interruptInUseConnections":
            if value != bool(getattr(event, "interrupt_connections", False)):
                raise MatchError(f"interruptInUseConnections {value}")
        elif key == "reason":
            if value != _reason(event.reason):
                raise MatchError(f"reason {event.reason!r} != {value!r}")
        elif key in ("previousDescription", "newDescription"):
            desc = event.previous_description if key == "previousDescription" else event.new_description
            for k, v in value.items():
                if k == "type":
                    actual = getattr(desc, "server_type_name", None) or desc.topology_type_name
                    if actual != v:
                        raise MatchError(f"{key}.type {actual} != {v}")
        elif key == "awaited":
            if value != bool(event.awaited):
                raise MatchError(f"awaited {value}")
        else:
            raise NotImplementedError(f"event field {key}")


# -- conversions -------------------------------------------------------------------------


def _snake(name: str) -> str:
    name = re.sub(r"MS$", "Ms", name)  # maxAwaitTimeMS -> max_await_time_ms
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def read_concern(doc: Optional[Dict[str, Any]]) -> Optional[ReadConcern]:
    return None if doc is None else ReadConcern(doc.get("level"))


def write_concern(doc: Optional[Dict[str, Any]]) -> Optional[WriteConcern]:
    if doc is None:
        return None
    kw: Dict[str, Any] = {}
    for k, v in doc.items():
        if k == "w":
            kw["w"] = v
        elif k == "journal" or k == "j":
            kw["j"] = v
        elif k in ("wtimeoutMS", "wtimeout"):
            kw["wtimeout"] = v
        else:
            raise NotImplementedError(f"writeConcern option {k}")
    return WriteConcern(**kw)


def read_preference(doc: Optional[Dict[str, Any]]) -> Any:
    if doc is None:
        return None
    mode = read_pref_mode_from_name(doc["mode"][0].lower() + doc["mode"][1:])
    kw: Dict[str, Any] = {"tag_sets": doc.get("tagSets")}
    if "maxStalenessSeconds" in doc:
        kw["max_staleness"] = doc["maxStalenessSeconds"]
    if "hedge" in doc:
        kw["hedge"] = doc["hedge"]
    return make_read_preference(mode, **kw)


def coll_db_options(doc: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    doc = doc or {}
    kw: Dict[str, Any] = {}
    for k, v in doc.items():
        if k == "readConcern":
            kw["read_concern"] = read_concern(v)
        elif k == "writeConcern":
            kw["write_concern"] = write_concern(v)
        elif k == "readPreference":
            kw["read_preference"] = read_preference(v)
        elif k == "timeoutMS":
            raise Skip("timeoutMS on a database/collection is not part of the Motor 3.7.1 / PyMongo 4.20 API (neither has the option)")
        else:
            raise NotImplementedError(k)
    return kw


def result_doc(result: Any) -> Any:
    if isinstance(result, InsertOneResult):
        return {"insertedId": result.inserted_id}
    if isinstance(result, InsertManyResult):
        return {"insertedIds": {str(i): v for i, v in enumerate(result.inserted_ids)}}
    if isinstance(result, UpdateResult):
        if not result.acknowledged:
            return {"acknowledged": False}
        doc = {"matchedCount": result.matched_count, "modifiedCount": result.modified_count,
               "upsertedCount": 0 if result.upserted_id is None else 1}
        if result.upserted_id is not None:
            doc["upsertedId"] = result.upserted_id
        return doc
    if isinstance(result, DeleteResult):
        if not result.acknowledged:
            return {"acknowledged": False}
        return {"deletedCount": result.deleted_count}
    if isinstance(result, BulkWriteResult):
        if not result.acknowledged:
            return {"acknowledged": False}
        return {"deletedCount": result.deleted_count, "insertedCount": result.inserted_count,
                "matchedCount": result.matched_count, "modifiedCount": result.modified_count,
                "upsertedCount": result.upserted_count,
                "upsertedIds": {str(k): v for k, v in result.upserted_ids.items()}}
    if isinstance(result, ClientBulkWriteResult):
        if not result.acknowledged:
            return {"acknowledged": False}
        doc = {"insertedCount": result.inserted_count, "upsertedCount": result.upserted_count,
               "matchedCount": result.matched_count, "modifiedCount": result.modified_count,
               "deletedCount": result.deleted_count}
        if result.has_verbose_results:
            doc["insertResults"] = {str(k): {"insertedId": v.inserted_id}
                                    for k, v in result.insert_results.items()}
            doc["updateResults"] = {str(k): {"matchedCount": v.matched_count, "modifiedCount": v.modified_count,
                                             **({"upsertedId": v.upserted_id} if v.upserted_id is not None else {})}
                                    for k, v in result.update_results.items()}
            doc["deleteResults"] = {str(k): {"deletedCount": v.deleted_count}
                                    for k, v in result.delete_results.items()}
        return doc
    return result


def _write_model(req: Dict[str, Any], client_bulk: bool = False) -> Any:
    (kind, a), = req.items()
    a = dict(a)
    kw: Dict[str, Any] = {}
    if client_bulk:
        kw["namespace"] = a.pop("namespace")
    for k in list(a):
        if k in ARGS_NOT_IN_MOTOR_API:
            raise Skip(ARGS_NOT_IN_MOTOR_API[k])
    opts = {"upsert": "upsert", "collation": "collation", "hint": "hint", "arrayFilters": "array_filters",
            "sort": "sort"}
    for k, v in a.items():
        if k in opts:
            kw[opts[k]] = v
    if kind == "insertOne":
        return InsertOne(a["document"], **kw)
    if kind == "updateOne":
        return UpdateOne(a["filter"], a["update"], **kw)
    if kind == "updateMany":
        return UpdateMany(a["filter"], a["update"], **kw)
    if kind == "replaceOne":
        return ReplaceOne(a["filter"], a["replacement"], **kw)
    if kind == "deleteOne":
        return DeleteOne(a["filter"], **kw)
    if kind == "deleteMany":
        return DeleteMany(a["filter"], **kw)
    raise NotImplementedError(kind)


# -- server info ------------------------------------------------------------------------


class ServerInfo:
    def __init__(self, version: Tuple[int, ...], topology: str, parameters: Dict[str, Any],
                 auth: bool) -> None:
        self.version = version
        self.topology = topology
        self.parameters = parameters
        self.auth = auth


def _version(s: str) -> Tuple[int, ...]:
    parts = [int(re.match(r"\d+", p).group()) for p in s.split(".")[:3]]  # type: ignore[union-attr]
    return tuple(parts + [0] * (3 - len(parts)))


async def server_info(client: Any, uri: str) -> ServerInfo:
    hello = await client.admin.command("hello")
    build = await client.admin.command("buildInfo")
    if hello.get("serviceId") is not None:  # (a load-balanced mongos also says isdbgrid)
        topology = "load-balanced"
    elif hello.get("msg") == "isdbgrid":
        topology = "sharded"
    elif "setName" in hello:
        topology = "replicaset"
    else:
        topology = "single"
    try:
        params = await client.admin.command("getParameter", "*")
    except OperationFailure:
        params = {}
    auth = "@" in uri.split("//", 1)[-1].split("/", 1)[0]
    return ServerInfo(_version(build["version"]), topology, params, auth)


def requirement_unmet(req: Dict[str, Any], info: ServerInfo) -> Optional[str]:
    """Why *req* is not met by the server (None when it is)."""
    if "minServerVersion" in req and info.version < _version(req["minServerVersion"]):
        return f"server older than {req['minServerVersion']}"
    if "maxServerVersion" in req and info.version > _version(req["maxServerVersion"]):
        return f"server newer than {req['maxServerVersion']}"
    if "topologies" in req:
        tops = set(req["topologies"])
        if "sharded-replicaset" in tops:
            tops.add("sharded")
        if info.topology not in tops:
            return f"topology {info.topology} not in {req['topologies']}"
    if req.get("serverless") == "require":
        return "requires serverless"
    if "auth" in req and req["auth"] != info.auth:
        return f"auth={req['auth']} required"
    if "authMechanism" in req:
        return f"authMechanism {req['authMechanism']} required"
    if req.get("csfle"):
        return "client-side field level encryption is not available"
    for name, value in req.get("serverParameters", {}).items():
        if name not in info.parameters:
            return f"server parameter {name} not available"
        actual = info.parameters[name]
        if isinstance(value, (int, float)) and isinstance(actual, (int, float)) and not isinstance(value, bool):
            if value != actual:
                return f"server parameter {name}={actual!r}, not {value!r}"
        elif actual != value:
            return f"server parameter {name}={actual!r}, not {value!r}"
    return None


def requirements_unmet(reqs: Optional[List[Dict[str, Any]]], info: ServerInfo) -> Optional[str]:
    if not reqs:
        return None
    reasons = [requirement_unmet(r, info) for r in reqs]
    if any(r is None for r in reasons):
        return None
    return "; ".join(r for r in reasons if r)


# -- the runner -------------------------------------------------------------------------


class UnifiedRunner(ExtraOperations):
    def __init__(self, uri: str, spec: Dict[str, Any], test: Dict[str, Any], info: ServerInfo,
                 multi_uri: Optional[str] = None) -> None:
        self.motor = driver_module()
        #: whether the entities use amongo's PyMongo-style API (AMONGO_UNIFIED_API=pymongo)
        self.pymongo_api = api_name() == "pymongo"
        self.uri = uri
        self.multi_uri = multi_uri or uri  # for useMultipleMongoses: true (load balancers)
        self.spec = spec
        self.test = test
        self.info = info
        self.entities: Dict[str, Any] = {}
        self.lsids: Dict[str, Any] = {}
        self.recorders: Dict[str, EventRecorder] = {}
        self.clients: List[Any] = []
        self.sessions: List[Any] = []
        self.failpoints: List[Tuple[Any, str]] = []
        self.matcher = Matcher(self.entities, self.lsids)
        self.log_clients: Dict[str, Dict[str, str]] = {}  # client id -> {component: level}
        self.log_capture = _LogCapture()
        self.internal: Any = None
        self.tracing: Dict[str, Any] = {}  # client id -> its in-memory span exporter
        self.callback_depth = 0  # > 0 while a withTransaction callback runs
        self.session_timeouts: Dict[int, float] = {}  # id(session) -> defaultTimeoutMS (s)
        self.tailable_cursors: set = set()  # id() of command cursors made with a tailable cursorType
        # blockTimeMS of a blockConnection fail point on a write command (see _settle_blocked_writes)
        self.blocked_write_ms = 0
        self.saw_timeout = False  # an operation raised a timeout error

    # -- lifecycle --
    async def run(self) -> None:
        check_schema_version(self.spec["schemaVersion"])
        if "skipReason" in self.test:
            raise Skip(self.test["skipReason"])
        why = requirements_unmet(self.spec.get("runOnRequirements"), self.info) or requirements_unmet(
            self.test.get("runOnRequirements"), self.info)
        if why:
            raise Skip(why)
        if "expectTracingMessages" in self.test and not _AMONGO_LOGS(self.motor):
            raise Skip("expectTracingMessages: Motor has no OpenTelemetry tracing")
        if "expectLogMessages" in self.test and not _AMONGO_LOGS(self.motor):
            raise Skip("expectLogMessages: Motor has no per-client log hooks for the runner")
        self.internal = self.motor.AsyncIOMotorClient(self.uri, retryWrites=False)
        try:
            await self._kill_sessions()
            await self._initial_data()
            await self._create_entities(self.spec.get("createEntities", []))
            for op in self.test["operations"]:
                await self.run_operation(op)
            await self._check_events()
            self._check_log_messages()
            check_tracing_messages(self.test.get("expectTracingMessages", []), self.tracing, self.matcher)
            await self._check_outcome()
        finally:
            await self._teardown()

    async def _kill_sessions(self) -> None:
        try:
            await self.internal.admin.command("killAllSessions", [])
        except OperationFailure:
            pass

    async def _teardown(self) -> None:
        self.log_capture.close()
        self._cancel_threads()
        for session in self.sessions:
            try:
                await session.end_session()
            except Exception:
                pass
        for entity in list(self.entities.values()):
            if type(entity).__name__.endswith("ChangeStream") or type(entity).__name__.endswith("Cursor"):
                try:
                    await entity.close()
                except Exception:
                    pass
        for client, name in self.failpoints:
            try:
                await client.admin.command({"configureFailPoint": name, "mode": "off"})
            except Exception:
                pass
        await self._settle_blocked_writes()
        await self._kill_sessions()
        _close_all(self.clients + [self.internal])

    async def _initial_data(self) -> None:
        majority = WriteConcern(w="majority")
        for data in self.spec.get("initialData", []):
            db = self.internal.get_database(data["databaseName"], write_concern=majority)
            await db.drop_collection(data["collectionName"])
            opts = dict(data.get("createOptions", {}))
            if data["documents"] or opts or True:
                await db.create_collection(data["collectionName"], **opts)
            if data["documents"]:
                await db[data["collectionName"]].insert_many(data["documents"])

    async def _check_outcome(self) -> None:
        for data in self.test.get("outcome", []):
            coll = self.internal.get_database(data["databaseName"]).get_collection(
                data["collectionName"], read_preference=ReadPreference.PRIMARY,
                read_concern=ReadConcern("local"))
            actual = await coll.find({}, sort=[("_id", 1)]).to_list(None)
            if not exact_equal(data["documents"], actual):
                raise AssertionError(f"outcome of {data['collectionName']}: {actual!r} != {data['documents']!r}")

    async def _check_events(self) -> None:
        for spec in self.test.get("expectEvents", []):
            rec = self.recorders[spec["client"]]
            kind = spec.get("eventType", "command")
            actual = [(n, e) for n, e in rec.events if EVENT_KIND[n] == kind]
            expected = spec["events"]
            if spec.get("ignoreExtraEvents"):
                actual = actual[: len(expected)]
            names = [n for n, _ in actual]
            if len(actual) != len(expected):
                raise AssertionError(f"expected {len(expected)} {kind} events, got {len(actual)}: "
                                     f"{self._describe(actual)}\nexpected: {expected}")
            for i, (exp, (name, event)) in enumerate(zip(expected, actual)):
                (exp_name, exp_spec), = exp.items()
                if exp_name != name:
                    raise AssertionError(f"event {i}: expected {exp_name}, got {name}: {names}")
                try:
                    match_event(name, exp_spec, event, self.matcher)
                except MatchError as e:
                    raise AssertionError(f"event {i} ({name}): {e}\nactual: {self._describe(actual)}") from None

    def _check_log_messages(self) -> None:
        for spec in self.test.get("expectLogMessages", []):
            client = self.entities[spec["client"]]
            wanted = self.log_clients.get(spec["client"], {})
            actual = [m for m in self.log_capture.messages(id(client)) if m[1] in wanted]
            ignore = spec.get("ignoreMessages", [])
            actual = [m for m in actual if not any(self._log_matches(i, m) for i in ignore)]
            expected = spec["messages"]
            if spec.get("ignoreExtraMessages"):
                actual = actual[: len(expected)]
            if len(actual) != len(expected):
                raise AssertionError(
                    f"expected {len(expected)} log messages, got {len(actual)}: "
                    f"{[m[2].get('message') for m in actual]}"
                )
            for i, (exp, act) in enumerate(zip(expected, actual)):
                level, component, data = act
                if exp.get("component") != component or exp.get("level") != level:
                    raise AssertionError(f"log message {i}: expected {exp.get('component')}/{exp.get('level')}, "
                                         f"got {component}/{level}")
                try:
                    self.matcher.match(exp.get("data", {}), data)
                except MatchError as e:
                    raise AssertionError(f"log message {i}: {e}\nactual: {data}") from None
                if exp.get("failureIsRedacted") is not None and "failure" in data:
                    redacted = data["failure"] in ("{}", "")
                    if bool(exp["failureIsRedacted"]) != redacted:
                        raise AssertionError(f"log message {i}: failureIsRedacted={exp['failureIsRedacted']} "
                                             f"but failure is {data['failure']!r}")

    def _log_matches(self, expected: Dict[str, Any], actual: Tuple[str, str, Dict[str, Any]]) -> bool:
        level, component, data = actual
        if expected.get("component") not in (None, component) or expected.get("level") not in (None, level):
            return False
        try:
            self.matcher.match(expected.get("data", {}), data)
        except MatchError:
            return False
        return True

    @staticmethod
    def _describe(events: List[Tuple[str, Any]]) -> str:
        out = []
        for n, e in events:
            if n == "commandStartedEvent":
                out.append(f"{n}({dict(e.command)})")
            elif n == "commandSucceededEvent":
                out.append(f"{n}({e.command_name}: {dict(e.reply)})")
            elif n == "commandFailedEvent":
                out.append(f"{n}({e.command_name}: {e.failure})")
            else:
                out.append(n)
        return "\n  ".join(out)

    # -- entities --
    async def _create_entities(self, entities: List[Dict[str, Any]]) -> None:
        for ent in entities:
            (kind, spec), = ent.items()
            eid = spec["id"]
            if eid in self.entities:
                raise ValueError(f"duplicate entity {eid}")
            if kind == "client":
                self.entities[eid] = await self._make_client(spec)
            elif kind == "database":
                client = self.entities[spec["client"]]
                self.entities[eid] = client.get_database(spec["databaseName"],
                                                         **coll_db_options(spec.get("databaseOptions")))
            elif kind == "collection":
                db = self.entities[spec["database"]]
                self.entities[eid] = db.get_collection(spec["collectionName"],
                                                       **coll_db_options(spec.get("collectionOptions")))
            elif kind == "session":
                client = self.entities[spec["client"]]
                opts = dict(spec.get("sessionOptions", {}))
                default_timeout = opts.pop("defaultTimeoutMS", None)
                opts = self._session_opts(opts)
                session = client.start_session(**opts) if self.pymongo_api else await client.start_session(**opts)
                if default_timeout is not None:
                    # (CSOT: operations in the session run under pymongo.timeout() unless
                    # they set timeoutMS themselves)
                    self.session_timeouts[id(session)] = default_timeout / 1000.0
                self.entities[eid] = session
                self.sessions.append(session)
                self.lsids[eid] = session.session_id
            elif kind == "bucket":
                db = self.entities[spec["database"]]
                opts = spec.get("bucketOptions", {})
                kw: Dict[str, Any] = {}
                for k, v in opts.items():
                    if k == "bucketName":
                        kw["bucket_name"] = v
                    elif k == "chunkSizeBytes":
                        kw["chunk_size_bytes"] = v
                    elif k == "writeConcern":
                        kw["write_concern"] = write_concern(v)
                    elif k == "readPreference":
                        kw["read_preference"] = read_preference(v)
                    else:
                        raise NotImplementedError(f"bucketOptions.{k}")
                if self.pymongo_api:
                    from amongo.asynchronous.gridfs import AsyncGridFSBucket

                    self.entities[eid] = AsyncGridFSBucket(db, **kw)
                else:
                    self.entities[eid] = self.motor.AsyncIOMotorGridFSBucket(db, **kw)
            elif kind == "thread":
                self.entities[eid] = self._make_thread(spec)
            elif kind == "clientEncryption":
                raise Skip("client-side field level encryption is not supported")
            else:
                raise NotImplementedError(f"entity {kind}")

    def _session_opts(self, opts: Dict[str, Any]) -> Dict[str, Any]:
        kw: Dict[str, Any] = {}
        for k, v in opts.items():
            if k == "causalConsistency":
                kw["causal_consistency"] = v
            elif k == "snapshot":
                kw["snapshot"] = v
            elif k == "defaultTransactionOptions":
                from pymongo.client_session import TransactionOptions

                kw["default_transaction_options"] = TransactionOptions(**self._txn_opts(v))
            else:
                raise NotImplementedError(f"sessionOptions.{k}")
        return kw

    @staticmethod
    def _txn_opts(opts: Dict[str, Any]) -> Dict[str, Any]:
        kw: Dict[str, Any] = {}
        for k, v in opts.items():
            if k == "readConcern":
                kw["read_concern"] = read_concern(v)
            elif k == "writeConcern":
                kw["write_concern"] = write_concern(v)
            elif k == "readPreference":
                kw["read_preference"] = read_preference(v)
            elif k == "maxCommitTimeMS":
                kw["max_commit_time_ms"] = v
            elif k == "timeoutMS":
                raise Skip("timeoutMS is not part of the Motor 3.7.1 transaction options")
            else:
                raise NotImplementedError(f"transaction option {k}")
        return kw

    async def _make_client(self, spec: Dict[str, Any]) -> Any:
        store = {}
        for s in spec.get("storeEventsAsEntities", []):
            self.entities[s["id"]] = []
            store[s["id"]] = s["events"]
        rec = EventRecorder(spec.get("observeEvents", []), spec.get("ignoreCommandMonitoringEvents", []),
                            spec.get("observeSensitiveCommands", False), store, self.entities)
        self.recorders[spec["id"]] = rec
        # As the spec allows, test clients rediscover servers quickly (heartbeatFrequencyMS 500,
        # the minimum) unless the test sets it: otherwise each "not primary" error waits for
        # the next 10 s heartbeat.
        kw: Dict[str, Any] = {"event_listeners": [rec], "heartbeatFrequencyMS": 500}
        for k, v in spec.get("uriOptions", {}).items():
            if k in ("waitQueueSize", "waitQueueMultiple"):
                raise Skip(f"{k} was removed in PyMongo 4 / Motor 3 (amongo rejects it as an unknown option)")
            if k == "appname":
                kw["appname"] = v
            elif k == "readPreference":
                kw["readPreference"] = v
            else:
                kw[k] = v
        if "serverApi" in spec:
            api = spec["serverApi"]
            kw["server_api"] = ServerApi(api["version"], strict=api.get("strict"),
                                         deprecation_errors=api.get("deprecationErrors"))
        if "observeLogMessages" in spec:
            if not _AMONGO_LOGS(self.motor):
                raise Skip("observeLogMessages: Motor has no per-client log hooks for the runner")
            self.log_clients[spec["id"]] = {k: v for k, v in spec["observeLogMessages"].items()}
        if "observeTracingMessages" in spec:
            if not _AMONGO_LOGS(self.motor):
                raise Skip("observeTracingMessages: Motor has no OpenTelemetry tracing")
            kw["tracing"], self.tracing[spec["id"]] = tracing_option(spec["observeTracingMessages"])
        if "autoEncryptOpts" in spec:
            raise Skip("client-side field level encryption is not supported")
        uri = self.multi_uri if spec.get("useMultipleMongoses") else self.uri
        if self.pymongo_api:
            import amongo

            client = amongo.AsyncMongoClient(uri, **kw)
        else:
            client = self.motor.AsyncIOMotorClient(uri, **kw)
        self.clients.append(client)
        if "awaitMinPoolSizeMS" in spec:
            # Wait (at most awaitMinPoolSizeMS) until the pool holds minPoolSize connections.
            wanted = int(spec.get("uriOptions", {}).get("minPoolSize", 0))
            deadline = time.monotonic() + spec["awaitMinPoolSizeMS"] / 1000.0
            while rec.open_connections < wanted:
                if time.monotonic() > deadline:
                    raise AssertionError(f"pool did not reach minPoolSize={wanted} within awaitMinPoolSizeMS")
                await asyncio.sleep(0.01)
        return client

    # -- operations --
    def _resolve_args(self, args: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(args)
        if "session" in out:
            out["session"] = self.entities[out["session"]]
        for k in out:
            if k in ARGS_NOT_IN_MOTOR_API:
                raise Skip(ARGS_NOT_IN_MOTOR_API[k])
        return out

    async def run_operation(self, op: Dict[str, Any]) -> Any:
        name = op["name"]
        args = op.get("arguments", {})
        timeout = None
        if op["object"] != "testRunner":
            args = dict(args)
            timeout = self._operation_timeout(args, self.entities.get(op["object"]))
        try:
            if timeout is None:
                result = await self._dispatch(op["object"], name, args)
            else:
                with self._timeout_context(timeout):
                    result = await self._dispatch(op["object"], name, args)
        except Skip:
            raise
        except (NotImplementedError, SchemaVersionError):
            raise
        except Exception as exc:  # noqa: BLE001 - any error is checked against expectError
            if getattr(exc, "timeout", False):
                self.saw_timeout = True
            if op.get("ignoreResultAndError"):
                if isinstance(exc, (KeyError, TypeError)):
                    raise  # a malformed operation (missing/unknown argument) still fails the test
                if self.callback_depth:
                    raise  # inside withTransaction the driver must see the error
                return None
            if "expectError" not in op:
                raise
            self._check_error(op["expectError"], exc)
            if self.callback_depth:
                raise  # (unified format: errors in a withTransaction callback propagate)
            return None
        if "expectError" in op:
            raise AssertionError(f"{name} succeeded ({result!r}) but an error was expected: {op['expectError']}")
        if "expectResult" in op:
            actual = result_doc(result)
            try:
                self.matcher.match(op["expectResult"], actual)
            except MatchError as e:
                raise AssertionError(f"{name} result: {e}\nactual: {actual!r}") from None
        if "saveResultAsEntity" in op:
            self.entities[op["saveResultAsEntity"]] = result
        return result

    def _check_error(self, expected: Dict[str, Any], exc: BaseException) -> None:
        is_server = isinstance(exc, (OperationFailure, NotPrimaryError, ClientBulkWriteException))
        if isinstance(exc, ClientBulkWriteException):
            is_server = exc.error is None or isinstance(exc.error, (OperationFailure, NotPrimaryError))
        details = getattr(exc, "details", None) or {}
        inner = exc.error if isinstance(exc, ClientBulkWriteException) and exc.error is not None else exc
        for key, value in expected.items():
            if key == "isError":
                pass
            elif key == "isClientError":
                if value != (not is_server):
                    raise AssertionError(f"isClientError={value} but got {type(exc).__name__}: {exc}")
            elif key == "isTimeoutError":
                timeout = isinstance(exc, PyMongoError) and exc.timeout
                if value != timeout:
                    raise AssertionError(f"isTimeoutError={value} but got {type(exc).__name__}: {exc}")
            elif key == "errorContains":
                if value.lower() not in str(exc).lower():
                    raise AssertionError(f"{value!r} not in error message {str(exc)!r}")
            elif key == "errorCode":
                codes = self._codes(exc, inner, details, "code")
                if value not in codes:
                    raise AssertionError(f"errorCode {value} not in {codes}: {exc!r}")
            elif key == "errorCodeName":
                names = self._codes(exc, inner, details, "codeName")
                if value not in names:
                    raise AssertionError(f"errorCodeName {value} not in {names}: {exc!r}")
            elif key == "errorLabelsContain":
                for label in value:
                    if not (isinstance(inner, PyMongoError) and inner.has_error_label(label)) and not (
                            isinstance(exc, PyMongoError) and exc.has_error_label(label)):
                        raise AssertionError(f"error label {label} missing: {exc!r} {details}")
            elif key == "errorLabelsOmit":
                for label in value:
                    if (isinstance(inner, PyMongoError) and inner.has_error_label(label)) or (
                            isinstance(exc, PyMongoError) and exc.has_error_label(label)):
                        raise AssertionError(f"error label {label} present: {exc!r}")
            elif key == "expectResult":
                if isinstance(exc, ClientBulkWriteException):
                    actual = result_doc(exc.partial_result) if exc.partial_result else MISSING
                elif isinstance(exc, BulkWriteError):
                    actual = result_doc(BulkWriteResult(exc.details, True))
                else:
                    actual = MISSING
                self.matcher.match(value, actual)
            elif key == "errorResponse":
                resp = getattr(inner, "details", None)
                self.matcher.match(value, resp)
            elif key == "writeErrors":
                errs = exc.write_errors if isinstance(exc, ClientBulkWriteException) else None
                if isinstance(errs, list):
                    errs = {str(e.get("idx", i)): e for i, e in enumerate(errs)}
                elif isinstance(errs, dict):
                    errs = {str(k): v for k, v in errs.items()}
                errs = errs or {}
                if set(value) != set(errs):
                    raise AssertionError(f"writeErrors {errs} != {value}")
                for idx, exp in value.items():
                    err = dict(errs[idx])
                    err.setdefault("message", err.get("errmsg"))
                    if "errInfo" in err:
                        err.setdefault("details", err["errInfo"])
                    self.matcher.match(exp, err, True, f"writeErrors.{idx}")
            elif key == "writeConcernErrors":
                errs = exc.write_concern_errors if isinstance(exc, ClientBulkWriteException) else None
                conv = []
                for e in errs or []:
                    d = {"code": e.get("code"), "message": e.get("errmsg")}
                    if "errInfo" in e:
                        d["details"] = e["errInfo"]
                    conv.append(d)
                self.matcher.match(value, conv)
            else:
                raise NotImplementedError(f"expectError.{key}")

    @staticmethod
    def _codes(exc: BaseException, inner: BaseException, details: Dict[str, Any], field: str) -> List[Any]:
        out: List[Any] = []
        for e in (exc, inner):
            if field == "code" and getattr(e, "code", None) is not None:
                out.append(e.code)
            d = getattr(e, "details", None) or {}
            if isinstance(d, dict) and field in d:
                out.append(d[field])
            if isinstance(d, dict):
                for we in d.get("writeErrors", []) if isinstance(d.get("writeErrors"), list) else []:
                    if field in we:
                        out.append(we[field])
                for wce in d.get("writeConcernErrors", []) or []:
                    if field in wce:
                        out.append(wce[field])
                if "writeConcernError" in d and field in d["writeConcernError"]:
                    out.append(d["writeConcernError"][field])
        return out

    async def _dispatch(self, obj: str, name: str, args: Dict[str, Any]) -> Any:
        if name in NOT_IN_MOTOR_API:
            raise Skip(NOT_IN_MOTOR_API[name])
        if name in ONLY_IN_PYMONGO_API and not self.pymongo_api:
            raise Skip(ONLY_IN_PYMONGO_API[name] + f"; run with {API_ENV}=pymongo")
        if obj == "testRunner":
            return await getattr(self, "_tr_" + name)(**args)
        target = self.entities[obj]
        args = self._resolve_args(args)
        kind = type(target).__name__
        if "Session" in kind:
            return await self._session_op(target, name, args)
        if "ChangeStream" in kind or "Cursor" in kind:
            return await self._cursor_op(target, name, args)
        if "GridFSBucket" in kind:
            return await self._bucket_op(target, name, args)
        if "Client" in kind:
            return await self._client_op(target, name, args)
        if "Database" in kind:
            return await self._db_op(target, name, args)
        if "Collection" in kind:
            return await self._coll_op(target, name, args)
        raise NotImplementedError(f"object {obj} ({kind})")

    # client
    async def _client_op(self, client: Any, name: str, a: Dict[str, Any]) -> Any:
        if name == "listDatabases":
            return await (await client.list_databases(**self._kw(a))).to_list(None)
        if name == "listDatabaseNames":
            return await client.list_database_names(**self._kw(a))
        if name == "createChangeStream":
            return await self._watch(client, a)
        if name == "clientBulkWrite":
            models = [_write_model(m, client_bulk=True) for m in a.pop("models")]
            kw = self._kw(a)
            if "write_concern" in kw:
                kw["write_concern"] = write_concern(kw["write_concern"])
            return await client.bulk_write(models, **kw)
        if name == "close":
            if self.pymongo_api:
                await client.close()
            else:
                client.close()
            return None
        if name == "appendMetadata":
            from pymongo.driver_info import DriverInfo

            client.append_metadata(DriverInfo(**a["driverInfoOptions"]))
            return None
        if name == "dropDatabase":
            return await client.drop_database(a.pop("database"), **self._kw(a))
        raise NotImplementedError(f"client.{name}")

    @staticmethod
    def _kw(a: Dict[str, Any], rename: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        rename = rename or {}
        out = {}
        for k, v in a.items():
            out[rename.get(k, _snake(k))] = v
        return out

    async def _watch(self, target: Any, a: Dict[str, Any]) -> Any:
        pipeline = a.pop("pipeline", [])
        if self.pymongo_api:
            return await target.watch(pipeline, **self._kw(a))
        stream = target.watch(pipeline, **self._kw(a))
        await stream.__aenter__()
        return stream

    async def _cursor(self, cursor_or_coroutine: Any) -> Any:
        """A command cursor from ``aggregate`` / ``list_indexes`` / ``list_search_indexes``:
        awaited with the PyMongo-style API (coroutines there), as returned with Motor's."""
        if self.pymongo_api:
            return await cursor_or_coroutine
        return cursor_or_coroutine

    # database
    async def _db_op(self, db: Any, name: str, a: Dict[str, Any]) -> Any:
        if name == "runCommand":
            cmd = a["command"]
            kw: Dict[str, Any] = {}
            if "readPreference" in a:
                kw["read_preference"] = read_preference(a["readPreference"])
            if "session" in a:
                kw["session"] = a["session"]
            return await db.command(SON(cmd), **kw)
        if name in ("runCursorCommand", "createCommandCursor"):
            kw = {}
            cmd = SON(a["command"])
            if "session" in a:
                kw["session"] = a["session"]
            if "comment" in a:
                kw["comment"] = a["comment"]
            if "maxTimeMS" in a:
                kw["max_await_time_ms"] = a["maxTimeMS"]
            if "timeoutMode" in a:
                raise Skip("timeoutMode on cursor_command is not part of the Motor 3.7.1 / PyMongo 4.20 API")
            cursor = await db.cursor_command(cmd, **kw)
            if a.get("cursorType") in ("tailable", "tailableAwait"):
                # (the command itself asks for the tailable cursor; iterateOnce then does one
                # getMore and may return nothing, as PyMongo's try_next)
                self.tailable_cursors.add(id(cursor))
            if "batchSize" in a:
                cursor.batch_size(a["batchSize"])
            if name == "createCommandCursor":
                return cursor
            return await cursor.to_list(None)
        if name == "aggregate":
            pipeline = a.pop("pipeline")
            return await (await self._cursor(db.aggregate(pipeline, **a))).to_list(None)
        if name == "listCollections":
            return await (await db.list_collections(**self._kw(a, {"filter": "filter"}))).to_list(None)
        if name == "listCollectionNames":
            return await db.list_collection_names(**self._kw(a))
        if name == "createCollection":
            coll_name = a.pop("collection")
            kw = {}
            if "session" in a:
                kw["session"] = a.pop("session")
            return await db.create_collection(coll_name, check_exists=False, **kw, **a)
        if name == "dropCollection":
            coll_name = a.pop("collection")
            return await db.drop_collection(coll_name, **self._kw(a))
        if name == "createChangeStream":
            return await self._watch(db, a)
        if name == "modifyCollection":
            cmd = SON([("collMod", a.pop("collection"))])
            cmd.update(a)
            return await db.command(cmd)
        raise NotImplementedError(f"database.{name}")

    # collection
    async def _coll_op(self, coll: Any, name: str, a: Dict[str, Any]) -> Any:
        a = dict(a)
        if name == "insertOne":
            return await coll.insert_one(a.pop("document"), **self._kw(a))
        if name == "insertMany":
            return await coll.insert_many(a.pop("documents"), **self._kw(a))
        if name in ("updateOne", "updateMany", "replaceOne"):
            filt = a.pop("filter")
            second = a.pop("replacement" if name == "replaceOne" else "update")
            meth = {"updateOne": coll.update_one, "updateMany": coll.update_many,
                    "replaceOne": coll.replace_one}[name]
            return await meth(filt, second, **self._kw(a))
        if name in ("deleteOne", "deleteMany"):
            meth = coll.delete_one if name == "deleteOne" else coll.delete_many
            return await meth(a.pop("filter"), **self._kw(a))
        if name == "bulkWrite":
            models = [_write_model(r) for r in a.pop("requests")]
            return await coll.bulk_write(models, **self._kw(a))
        if name in ("find", "createFindCursor"):
            if "filter" not in a:
                raise ValueError(f"{name} requires a filter")
            kw = self._find_kw(a)
            max_await = kw.pop("max_await_time_ms", None)
            cursor = coll.find(**kw)
            if max_await is not None:  # (a cursor method in Motor/PyMongo, not a find() argument)
                cursor.max_await_time_ms(max_await)
            if name == "createFindCursor":
                return await start_cursor(cursor)
            return await cursor.to_list(None)
        if name == "findOne":
            return await coll.find_one(**self._find_kw(a))
        if name in ("findOneAndUpdate", "findOneAndReplace", "findOneAndDelete"):
            filt = a.pop("filter")
            if "returnDocument" in a:
                from pymongo import ReturnDocument
                if a["returnDocument"] not in ("Before", "After"):
                    raise ValueError(f"invalid returnDocument {a['returnDocument']!r}")
                a["returnDocument"] = ReturnDocument.AFTER if a["returnDocument"] == "After" else ReturnDocument.BEFORE
            kw = self._kw(a, {"bypassDocumentValidation": "bypassDocumentValidation"})
            if name == "findOneAndDelete":
                return await coll.find_one_and_delete(filt, **kw)
            if name == "findOneAndReplace":
                return await coll.find_one_and_replace(filt, kw.pop("replacement"), **kw)
            return await coll.find_one_and_update(filt, kw.pop("update"), **kw)
        if name == "aggregate":
            pipeline = a.pop("pipeline")
            return await (await self._cursor(coll.aggregate(pipeline, **a))).to_list(None)
        if name == "countDocuments":
            filt = a.pop("filter")
            return await coll.count_documents(filt, **a)
        if name == "estimatedDocumentCount":
            return await coll.estimated_document_count(**a)
        if name == "distinct":
            field = a.pop("fieldName")
            filt = a.pop("filter", None)
            return await coll.distinct(field, filt, **a)
        if name == "createIndex":
            keys = list(a.pop("keys").items())
            return await coll.create_index(keys, **a)
        if name == "listIndexes":
            return await (await self._cursor(coll.list_indexes(**self._kw(a)))).to_list(None)
        if name == "dropIndex":
            return await coll.drop_index(a.pop("name"), **self._kw(a))
        if name == "dropIndexes":
            return await coll.drop_indexes(**self._kw(a))
        if name == "createChangeStream":
            return await self._watch(coll, a)
        if name == "rename":
            to = a.pop("to")
            return await coll.rename(to, **a)
        if name == "drop":
            return await coll.drop(**self._kw(a))
        if name == "createSearchIndex":
            m = a["model"]
            return await coll.create_search_index(SearchIndexModel(**m))
        if name == "createSearchIndexes":
            return await coll.create_search_indexes([SearchIndexModel(**m) for m in a["models"]])
        if name == "dropSearchIndex":
            return await coll.drop_search_index(a["name"])
        if name == "updateSearchIndex":
            return await coll.update_search_index(a["name"], a["definition"])
        if name == "listSearchIndexes":
            kw = {}
            if "name" in a:
                kw["name"] = a["name"]
            kw.update(a.get("aggregationOptions", {}))
            return await (await self._cursor(coll.list_search_indexes(**kw))).to_list(None)
        raise NotImplementedError(f"collection.{name}")

    def _find_kw(self, a: Dict[str, Any]) -> Dict[str, Any]:
        rename = {"filter": "filter", "maxTimeMS": "max_time_ms", "batchSize": "batch_size",
                  "allowDiskUse": "allow_disk_use", "showRecordId": "show_record_id",
                  "returnKey": "return_key", "noCursorTimeout": "no_cursor_timeout",
                  "maxAwaitTimeMS": "max_await_time_ms", "allowPartialResults": "allow_partial_results"}
        kw = self._kw(a, rename)
        for k in ("min", "max"):
            if k in kw:
                kw[k] = SON(kw[k])
        if "sort" in kw and isinstance(kw["sort"], dict):
            kw["sort"] = list(kw["sort"].items())
        if "hint" in kw and isinstance(kw["hint"], dict):
            kw["hint"] = list(kw["hint"].items())
        if "cursor_type" in kw:
            from pymongo import CursorType
            kw["cursor_type"] = {"tailable": CursorType.TAILABLE, "tailableAwait": CursorType.TAILABLE_AWAIT,
                                 "nonTailable": CursorType.NON_TAILABLE}[kw["cursor_type"]]
        if "timeout_m_s" in kw or "timeout_mode" in kw:
            raise Skip("timeoutMode on find is not part of the Motor 3.7.1 / PyMongo 4.20 API")
        return kw

    # cursors / change streams
    async def _cursor_op(self, cursor: Any, name: str, a: Dict[str, Any]) -> Any:
        if name == "iterateUntilDocumentOrError":
            return await cursor.next()
        if name == "iterateOnce":
            if "ChangeStream" in type(cursor).__name__ or id(cursor) in self.tailable_cursors:
                return await cursor.try_next()
            try:
                return await cursor.next()
            except StopAsyncIteration:
                return None
        if name == "close":
            return await cursor.close()
        raise NotImplementedError(f"cursor.{name}")

    # gridfs
    async def _bucket_op(self, bucket: Any, name: str, a: Dict[str, Any]) -> Any:
        if name == "download":
            stream = await bucket.open_download_stream(a["id"])
            return await stream.read()
        if name == "downloadByName":
            kw = {}
            if "revision" in a:
                kw["revision"] = a["revision"]
            stream = await bucket.open_download_stream_by_name(a["filename"], **kw)
            return await stream.read()
        if name == "upload":
            src = a["source"]
            data = bytes.fromhex(src["$$hexBytes"]) if isinstance(src, dict) else src
            kw = {}
            if "chunkSizeBytes" in a:
                kw["chunk_size_bytes"] = a["chunkSizeBytes"]
            if "metadata" in a:
                kw["metadata"] = a["metadata"]
            return await bucket.upload_from_stream(a["filename"], data, **kw)
        if name == "delete":
            return await bucket.delete(a["id"])
        if name == "rename":
            return await bucket.rename(a["id"], a["newFilename"])
        if name == "deleteByName":
            return await bucket.delete_by_name(a["filename"])
        if name == "renameByName":
            return await bucket.rename_by_name(a["filename"], a["newFilename"])
        if name == "drop":
            return await bucket.drop()
        if name == "find":
            filt = a.pop("filter")
            return await bucket.find(filt, **self._kw(a)).to_list(None)
        raise NotImplementedError(f"bucket.{name}")

    # sessions
    async def _session_op(self, session: Any, name: str, a: Dict[str, Any]) -> Any:
        if name == "startTransaction":
            if self.pymongo_api:
                return await session.start_transaction(**self._txn_opts(a))
            return session.start_transaction(**self._txn_opts(a))
        if name == "commitTransaction":
            return await session.commit_transaction()
        if name == "abortTransaction":
            return await session.abort_transaction()
        if name == "endSession":
            return await session.end_session()
        if name == "withTransaction":
            ops = a.pop("callback")

            async def callback(_session: Any) -> None:
                self.callback_depth += 1
                try:
                    for op in ops:
                        await self.run_operation(op)
                finally:
                    self.callback_depth -= 1

            return await session.with_transaction(callback, **self._txn_opts(a))
        raise NotImplementedError(f"session.{name}")

    # -- test runner operations --
    async def _tr_failPoint(self, client: str, failPoint: Dict[str, Any]) -> None:
        c = self.entities[client]
        await c.admin.command(SON(failPoint))
        self.failpoints.append((c, failPoint["configureFailPoint"]))
        data = failPoint.get("data") or {}
        if data.get("blockConnection") and set(data.get("failCommands", ())) - _READ_COMMANDS:
            self.blocked_write_ms = max(self.blocked_write_ms, int(data.get("blockTimeMS", 0)))

    async def _settle_blocked_writes(self) -> None:
        """After a client-side timeout the server still runs the blocked command: wait out the
        fail point's blockTimeMS so a write the client gave up on cannot land in the next
        test's data (SecantusDB does not count the blocked time against the command's
        maxTimeMS, so the write is applied when the block ends: a duplicate key, or a
        WriteConflict for the next test's transaction, otherwise)."""
        if self.saw_timeout and self.blocked_write_ms:
            await asyncio.sleep(self.blocked_write_ms / 1000.0)

    async def _tr_targetedFailPoint(self, session: str, failPoint: Dict[str, Any]) -> None:
        s = self.entities[session]
        if _pinned_address(s) is None and self.info.topology == "sharded":
            raise AssertionError("targetedFailPoint on an unpinned session")
        c = s.client
        await c.admin.command(SON(failPoint))
        self.failpoints.append((c, failPoint["configureFailPoint"]))

    async def _tr_assertSessionPinned(self, session: str) -> None:
        if _pinned_address(self.entities[session]) is None:
            raise AssertionError("session is not pinned")

    async def _tr_assertSessionUnpinned(self, session: str) -> None:
        if _pinned_address(self.entities[session]) is not None:
            raise AssertionError("session is pinned")

    async def _tr_assertSessionTransactionState(self, session: str, state: str) -> None:
        sess = self.entities[session]
        if hasattr(sess, "txn_state"):  # amongo: amongo.engine.session.TXN_* constants
            from amongo.engine import session as _amongo_session

            names = {
                _amongo_session.TXN_NONE: "none", _amongo_session.TXN_STARTING: "starting",
                _amongo_session.TXN_IN_PROGRESS: "in_progress", _amongo_session.TXN_COMMITTED: "committed",
                _amongo_session.TXN_COMMITTED_EMPTY: "committed", _amongo_session.TXN_ABORTED: "aborted",
            }
            actual = names.get(sess.txn_state, sess.txn_state)
        else:  # Motor: PyMongo's private _transaction.state
            txn = _session_internal(sess, "_transaction")
            names = {1: "none", 2: "starting", 3: "in_progress", 4: "committed", 5: "committed", 6: "aborted"}
            actual = names.get(getattr(txn, "state", None), getattr(txn, "state", None))
        if actual != state:
            raise AssertionError(f"transaction state {actual} != {state}")

    async def _tr_assertSessionDirty(self, session: str) -> None:
        ss = _session_internal(self.entities[session], "_server_session")
        if not getattr(ss, "dirty", False):
            raise AssertionError("session is not dirty")

    async def _tr_assertSessionNotDirty(self, session: str) -> None:
        ss = _session_internal(self.entities[session], "_server_session")
        if ss is not None and getattr(ss, "dirty", False):
            raise AssertionError("session is dirty")

    def _last_two_lsids(self, client: str) -> Tuple[Any, Any]:
        started = self.recorders[client].started_events
        if len(started) < 2:
            raise AssertionError("fewer than two commands were sent")
        return started[-2].command.get("lsid"), started[-1].command.get("lsid")

    async def _tr_assertSameLsidOnLastTwoCommands(self, client: str) -> None:
        a, b = self._last_two_lsids(client)
        if a != b:
            raise AssertionError(f"lsids differ: {a} {b}")

    async def _tr_assertDifferentLsidOnLastTwoCommands(self, client: str) -> None:
        a, b = self._last_two_lsids(client)
        if a == b:
            raise AssertionError(f"lsids are the same: {a}")

    async def _collection_names(self, databaseName: str) -> List[str]:
        return await self.internal.get_database(databaseName).list_collection_names()

    async def _tr_assertCollectionExists(self, databaseName: str, collectionName: str) -> None:
        if collectionName not in await self._collection_names(databaseName):
            raise AssertionError(f"collection {databaseName}.{collectionName} does not exist")

    async def _tr_assertCollectionNotExists(self, databaseName: str, collectionName: str) -> None:
        if collectionName in await self._collection_names(databaseName):
            raise AssertionError(f"collection {databaseName}.{collectionName} exists")

    async def _index_names(self, databaseName: str, collectionName: str) -> List[str]:
        coll = self.internal[databaseName][collectionName]
        return [ix["name"] async for ix in coll.list_indexes()]

    async def _tr_assertIndexExists(self, databaseName: str, collectionName: str, indexName: str) -> None:
        if indexName not in await self._index_names(databaseName, collectionName):
            raise AssertionError(f"index {indexName} does not exist")

    async def _tr_assertIndexNotExists(self, databaseName: str, collectionName: str, indexName: str) -> None:
        if indexName in await self._index_names(databaseName, collectionName):
            raise AssertionError(f"index {indexName} exists")

    async def _tr_assertNumberConnectionsCheckedOut(self, client: str, connections: int) -> None:
        actual = self.recorders[client].checked_out
        if actual != connections:
            raise AssertionError(f"{actual} connections checked out, expected {connections}")

    async def _tr_createEntities(self, entities: List[Dict[str, Any]]) -> None:
        await self._create_entities(entities)

    async def _tr_waitForEvent(self, client: str, event: Dict[str, Any], count: int) -> None:
        rec = self.recorders[client]
        deadline = time.monotonic() + 10
        while rec.count(event, self.matcher) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count} {event}")
            await asyncio.sleep(0.05)

    async def _tr_assertEventCount(self, client: str, event: Dict[str, Any], count: int) -> None:
        actual = self.recorders[client].count(event, self.matcher)
        if actual != count:
            raise AssertionError(f"{actual} events {event}, expected {count}")

    async def _tr_loop(self, **kw: Any) -> None:
        raise Skip("the loop operation is out of scope for this runner")

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_tr_"):
            raise NotImplementedError(f"testRunner operation {item[4:]}")
        raise AttributeError(item)


def _close_all(clients: List[Any]) -> None:
    """Close the clients. Motor's (PyMongo's) close() joins a background thread that sleeps up to
    0.5 s, so with Motor the joins happen off the event loop; amongo's close() is called directly."""
    if driver_name() == "motor":
        import threading

        def close() -> None:
            for c in clients:
                c.close()

        threading.Thread(target=close, daemon=True).start()
    else:
        from amongo.client import MongoClient

        for c in clients:
            # (the PyMongo-style client's close() is a coroutine; the shared implementation is
            # the synchronous MongoClient.close both APIs call)
            MongoClient.close(c)


def _pinned_address(session: Any) -> Any:
    """The mongos (or load balancer) a session's transaction is pinned to: amongo's
    ``pinned_address``, PyMongo's private ``_pinned_address``."""
    return _session_internal(session, "pinned_address") or _session_internal(session, "_pinned_address")


def _session_internal(session: Any, attr: str) -> Any:
    """Transaction/pinning state the spec asks about; Motor has no public accessor for it."""
    sentinel = object()
    for obj in (session, getattr(session, "delegate", None)):
        if obj is None:
            continue
        try:
            value = getattr(obj, attr, sentinel)
        except Exception:
            continue
        if value is not sentinel:
            return value
    return None


def _AMONGO_LOGS(driver: Any) -> bool:
    """Whether the driver under test is amongo (whose log records name their client)."""
    return getattr(driver, "__name__", "").startswith("amongo")


class _LogCapture(logging.Handler):
    """Collects amongo's structured log records (``amongo.<component>`` loggers) at DEBUG."""

    COMPONENTS = {"amongo.command": "command", "amongo.topology": "topology", "amongo.connection": "connection",
                  "amongo.serverSelection": "serverSelection"}

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[Tuple[int, str, str, Dict[str, Any]]] = []
        self._saved: List[Tuple[logging.Logger, int]] = []
        for name in self.COMPONENTS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.msg
        fields = getattr(msg, "fields", None)
        if fields is None:
            return
        component = self.COMPONENTS.get(record.name, record.name)
        self.records.append((getattr(msg, "client_id", 0), record.levelname.lower(), component, dict(fields)))

    def messages(self, client_id: int) -> List[Tuple[str, str, Dict[str, Any]]]:
        return [(lvl, comp, data) for cid, lvl, comp, data in self.records if cid == client_id]

    def close(self) -> None:
        for logger, level in self._saved:
            logger.removeHandler(self)
            logger.setLevel(level)
        self._saved = []
        super().close()


async def start_cursor(cursor: Any) -> Any:
    """createFindCursor sends the find now (unified format), though Motor-style cursors are
    lazy: amongo's cursor is started here (Motor's stays lazy: it has no public way)."""
    start = getattr(cursor, "_ensure_started", None)
    if start is not None:
        await start()
    return cursor


# -- OpenTelemetry (observeTracingMessages / expectTracingMessages) ---------------------------


def tracing_option(observe: Dict[str, Any]) -> Tuple[Dict[str, Any], Any]:
    """The ``tracing`` client option for an ``observeTracingMessages`` entity and the in-memory
    exporter collecting that client's spans (its own TracerProvider from the OpenTelemetry SDK)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for key in observe:
        if key != "enableCommandPayload":
            raise NotImplementedError(f"observeTracingMessages.{key}")
    length = 1 << 24 if observe.get("enableCommandPayload") else 0
    return {"enabled": True, "query_text_max_length": length, "tracer_provider": provider}, exporter


def _span_attributes(span: Any) -> Dict[str, Any]:
    from bson.int64 import Int64

    # OpenTelemetry integer attributes are 64-bit: they match $$type "long".
    attrs = {k: Int64(v) if type(v) is int else v for k, v in (span.attributes or {}).items()}
    lsid = attrs.get("db.mongodb.lsid")
    if isinstance(lsid, str):  # relaxed Extended JSON of the lsid document
        attrs["db.mongodb.lsid"] = json_util.loads(lsid)
    return attrs


def _describe_spans(spans: List[Any], children: Dict[int, List[Any]], indent: str = "") -> str:
    out = []
    for s in spans:
        out.append(f"{indent}{s.name} {dict(s.attributes or {})}")
        out.append(_describe_spans(children.get(s.context.span_id, []), children, indent + "  "))
    return "\n".join(o for o in out if o)


def _match_spans(expected: List[Dict[str, Any]], actual: List[Any], children: Dict[int, List[Any]],
                 matcher: Matcher, path: str) -> None:
    if len(expected) != len(actual):
        raise AssertionError(f"{path}: expected {len(expected)} spans {[e['name'] for e in expected]}, got "
                             f"{len(actual)}:\n{_describe_spans(actual, children)}")
    for i, (exp, span) in enumerate(zip(expected, actual)):
        where = f"{path}[{i}] {exp['name']}"
        if span.name != exp["name"]:
            raise AssertionError(f"{where}: span name {span.name!r}\n{_describe_spans(actual, children)}")
        try:
            matcher.match(exp.get("attributes", {}), _span_attributes(span), True, "attributes")
        except MatchError as e:
            raise AssertionError(f"{where}: {e}\nactual: {dict(span.attributes or {})}") from None
        _match_spans(exp.get("nested", []), children.get(span.context.span_id, []), children, matcher,
                     f"{where}.nested")


def check_tracing_messages(expectations: List[Dict[str, Any]], exporters: Dict[str, Any], matcher: Matcher) -> None:
    """``expectTracingMessages``: the client's finished spans, as trees (parent/child through
    the span ids) in start order, match the expected spans."""
    for spec in expectations:
        spans = sorted(exporters[spec["client"]].get_finished_spans(), key=lambda s: s.start_time)
        ids = {s.context.span_id for s in spans}
        children: Dict[int, List[Any]] = {}
        roots = []
        for s in spans:
            parent = s.parent.span_id if s.parent is not None else None
            if parent in ids:
                children.setdefault(parent, []).append(s)
            else:
                roots.append(s)
        expected = spec["spans"]
        if spec.get("ignoreExtraSpans"):
            roots = _subsequence(expected, roots, children, matcher)
        _match_spans(expected, roots, children, matcher, "spans")


def _subsequence(expected: List[Dict[str, Any]], roots: List[Any], children: Dict[int, List[Any]],
                 matcher: Matcher) -> List[Any]:
    """ignoreExtraSpans: the actual root spans that match the expected ones in order (the
    others are extra); what is left unmatched is reported by the exact comparison."""
    picked: List[Any] = []
    rest = list(roots)
    for exp in expected:
        for i, span in enumerate(rest):
            try:
                _match_spans([exp], [span], children, matcher, "spans")
            except AssertionError:
                continue
            picked.append(span)
            rest = rest[i + 1:]
            break
        else:
            return picked + rest
    return picked

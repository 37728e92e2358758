"""The unified test format's JSON Schema (1.28) and a small validator for it.

The schema is a transcription of ``source/unified-test-format/schema-1.28.json`` from
github.com/mongodb/specifications (CC BY-NC-SA 3.0 US, see tests/specs/README.md), written
with helpers to keep it short. The validator implements the subset of JSON Schema that
schema uses (type, enum, const, pattern, required, properties, patternProperties,
additionalProperties, min/maxProperties, items, minItems, $ref, oneOf, anyOf, allOf, not),
so the test suite needs no ``jsonschema`` dependency.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List

# -- helpers -------------------------------------------------------------------------------


def _ref(name: str) -> dict:
    return {"$ref": "#/definitions/" + name}


def _obj(props: dict | None = None, required: list | None = None, closed: bool = True, **kw: Any) -> dict:
    s: dict = {"type": "object"}
    if closed:
        s["additionalProperties"] = False
    if props is not None:
        s["properties"] = props
    if required:
        s["required"] = required
    s.update(kw)
    return s


def _arr(items: dict | None = None, min_items: int | None = 1) -> dict:
    s: dict = {"type": "array"}
    if min_items is not None:
        s["minItems"] = min_items
    if items is not None:
        s["items"] = items
    return s


S = {"type": "string"}
B = {"type": "boolean"}
I = {"type": "integer"}
O = {"type": "object"}


def _enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


def _empty() -> dict:
    return _obj({})


_LEVEL = _ref("logSeverityLevel")
_SOP = {"$ref": "#/definitions/kmsProviders/$defs/stringOrPlaceholder"}


def _kms(*fields: str) -> dict:
    return _obj({f: _SOP for f in fields})


_CMD_EVENT_COMMON = {"commandName": S, "databaseName": S, "hasServiceId": B, "hasServerConnectionId": B}

_OBSERVABLE = [
    "commandStartedEvent", "commandSucceededEvent", "commandFailedEvent", "poolCreatedEvent",
    "poolReadyEvent", "poolClearedEvent", "poolClosedEvent", "connectionCreatedEvent",
    "connectionReadyEvent", "connectionClosedEvent", "connectionCheckOutStartedEvent",
    "connectionCheckOutFailedEvent", "connectionCheckedOutEvent", "connectionCheckedInEvent",
    "connectionPendingResponseSucceeded", "connectionPendingResponseStarted",
    "connectionPendingResponseFailed", "serverDescriptionChangedEvent",
    "topologyDescriptionChangedEvent", "topologyOpeningEvent", "topologyClosedEvent",
]
_STORABLE = [
    "PoolCreatedEvent", "PoolReadyEvent", "PoolClearedEvent", "PoolClosedEvent",
    "ConnectionCreatedEvent", "ConnectionReadyEvent", "ConnectionClosedEvent",
    "ConnectionCheckOutStartedEvent", "ConnectionCheckOutFailedEvent",
    "ConnectionCheckedOutEvent", "ConnectionCheckedInEvent", "CommandStartedEvent",
    "CommandSucceededEvent", "CommandFailedEvent", "ServerDescriptionChangedEvent",
    "TopologyDescriptionChangedEvent",
]


def _not_both(a: str, b: str) -> dict:
    return {"not": {"required": [a, b]}}


def _events_of(kind: str, ref: str) -> dict:
    return {"required": ["eventType"],
            "properties": {"eventType": {"const": kind}, "events": {"type": "array", "items": _ref(ref)}}}


SCHEMA: Dict[str, Any] = _obj(
    {
        "description": S,
        "schemaVersion": _ref("version"),
        "runOnRequirements": _arr(_ref("runOnRequirement")),
        "createEntities": _arr(_ref("entity")),
        "initialData": _arr(_ref("collectionData")),
        "tests": _arr(_ref("test")),
        "_yamlAnchors": {"type": "object", "additionalProperties": True},
    },
    required=["description", "schemaVersion", "tests"],
)
SCHEMA["definitions"] = {
    "version": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+){1,2}$"},
    "runOnRequirement": _obj(
        {
            "maxServerVersion": _ref("version"),
            "minServerVersion": _ref("version"),
            "topologies": _arr(_enum("single", "replicaset", "sharded", "sharded-replicaset", "load-balanced")),
            "serverless": _enum("require", "forbid", "allow"),
            "serverParameters": {"type": "object", "minProperties": 1},
            "auth": B,
            "authMechanism": S,
            "csfle": {"anyOf": [B, _obj({"minLibmongocryptVersion": _ref("version")}, minProperties=1)]},
        },
        minProperties=1,
    ),
    "entity": _obj(
        {
            "client": _obj(
                {
                    "id": S,
                    "uriOptions": O,
                    "useMultipleMongoses": B,
                    "observeEvents": _arr(_enum(*_OBSERVABLE)),
                    "ignoreCommandMonitoringEvents": _arr(S),
                    "storeEventsAsEntities": _arr(_ref("storeEventsAsEntity")),
                    "observeLogMessages": _obj(
                        {"command": _LEVEL, "topology": _LEVEL, "serverSelection": _LEVEL, "connection": _LEVEL},
                        minProperties=1,
                    ),
                    "observeTracingMessages": _obj({"enableCommandPayload": B}),
                    "serverApi": _ref("serverApi"),
                    "observeSensitiveCommands": B,
                    "autoEncryptOpts": _obj(
                        {
                            "keyVaultNamespace": S,
                            "bypassAutoEncryption": B,
                            "kmsProviders": _ref("kmsProviders"),
                            "schemaMap": {"type": "object", "additionalProperties": O},
                            "extraOptions": O,
                            "encryptedFieldsMap": {"type": "object", "additionalProperties": O},
                            "bypassQueryAnalysis": B,
                            "keyExpirationMS": I,
                        },
                        required=["keyVaultNamespace", "kmsProviders"],
                    ),
                    "awaitMinPoolSizeMS": I,
                },
                required=["id"],
            ),
            "clientEncryption": _obj(
                {"id": S, "clientEncryptionOpts": _ref("clientEncryptionOpts")},
                required=["id", "clientEncryptionOpts"],
            ),
            "database": _obj(
                {"id": S, "client": S, "databaseName": S, "databaseOptions": _ref("collectionOrDatabaseOptions")},
                required=["id", "client", "databaseName"],
            ),
            "collection": _obj(
                {"id": S, "database": S, "collectionName": S,
                 "collectionOptions": _ref("collectionOrDatabaseOptions")},
                required=["id", "database", "collectionName"],
            ),
            "session": _obj({"id": S, "client": S, "sessionOptions": O}, required=["id", "client"]),
            "bucket": _obj({"id": S, "database": S, "bucketOptions": O}, required=["id", "database"]),
            "thread": _obj({"id": S}, required=["id"]),
        },
        maxProperties=1,
        minProperties=1,
    ),
    "logComponent": _enum("command", "topology", "serverSelection", "connection"),
    "spanComponent": _obj(
        {"name": S, "attributes": O, "nested": _arr(_ref("spanComponent"))}, required=["name", "attributes"]
    ),
    "logSeverityLevel": _enum("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug",
                              "trace"),
    "clientEncryptionOpts": _obj(
        {"keyVaultClient": S, "keyVaultNamespace": S, "kmsProviders": _ref("kmsProviders"), "keyExpirationMS": I},
        required=["keyVaultClient", "keyVaultNamespace", "kmsProviders"],
    ),
    "kmsProviders": {
        "$defs": {
            "stringOrPlaceholder": {
                "oneOf": [S, _obj({"$$placeholder": {}}, required=["$$placeholder"])]
            }
        },
        "type": "object",
        "additionalProperties": False,
        "patternProperties": {
            "^aws(:[a-zA-Z0-9_]+)?$": _kms("accessKeyId", "secretAccessKey", "sessionToken"),
            "^azure(:[a-zA-Z0-9_]+)?$": _kms("tenantId", "clientId", "clientSecret", "identityPlatformEndpoint"),
            "^gcp(:[a-zA-Z0-9_]+)?$": _kms("email", "privateKey", "endpoint"),
            "^kmip(:[a-zA-Z0-9_]+)?$": _kms("endpoint"),
            "^local(:[a-zA-Z0-9_]+)?$": _kms("key"),
        },
    },
    "storeEventsAsEntity": _obj({"id": S, "events": _arr(_enum(*_STORABLE))}, required=["id", "events"]),
    "collectionData": _obj(
        {
            "collectionName": S,
            "databaseName": S,
            "createOptions": {"type": "object", "properties": {"writeConcern": False}},
            "documents": {"type": "array", "items": O},
        },
        required=["collectionName", "databaseName", "documents"],
    ),
    "expectedEventsForClient": _obj(
        {"client": S, "eventType": _enum("command", "cmap", "sdam"), "events": {"type": "array"},
         "ignoreExtraEvents": B},
        required=["client", "events"],
        oneOf=[
            _events_of("command", "expectedCommandEvent"),
            _events_of("cmap", "expectedCmapEvent"),
            _events_of("sdam", "expectedSdamEvent"),
            _obj({"client": S, "events": {"type": "array", "items": _ref("expectedCommandEvent")},
                  "ignoreExtraEvents": B}),
        ],
    ),
    "expectedCommandEvent": _obj(
        {
            "commandStartedEvent": _obj({"command": O, **_CMD_EVENT_COMMON}),
            "commandSucceededEvent": _obj({"reply": O, **_CMD_EVENT_COMMON}),
            "commandFailedEvent": _obj(dict(_CMD_EVENT_COMMON)),
        },
        maxProperties=1,
        minProperties=1,
    ),
    "expectedCmapEvent": _obj(
        {
            "poolCreatedEvent": _empty(),
            "poolReadyEvent": _empty(),
            "poolClearedEvent": _obj({"hasServiceId": B, "interruptInUseConnections": B}),
            "poolClosedEvent": _empty(),
            "connectionCreatedEvent": _empty(),
            "connectionReadyEvent": _empty(),
            "connectionClosedEvent": _obj({"reason": S}),
            "connectionCheckOutStartedEvent": _empty(),
            "connectionCheckOutFailedEvent": _obj({"reason": S}),
            "connectionCheckedOutEvent": _empty(),
            "connectionCheckedInEvent": _empty(),
            "connectionPendingResponseStarted": _empty(),
            "connectionPendingResponseSucceeded": _empty(),
            "connectionPendingResponseFailed": _obj({"reason": S}),
        },
        maxProperties=1,
        minProperties=1,
    ),
    "expectedSdamEvent": _obj(
        {
            "serverDescriptionChangedEvent": _obj(
                {"previousDescription": _ref("serverDescription"), "newDescription": _ref("serverDescription")}
            ),
            "topologyDescriptionChangedEvent": _obj(
                {"previousDescription": _ref("topologyDescription"),
                 "newDescription": _ref("topologyDescription")}
            ),
            "serverHeartbeatStartedEvent": _obj({"awaited": B}),
            "serverHeartbeatSucceededEvent": _obj({"awaited": B}),
            "serverHeartbeatFailedEvent": _obj({"awaited": B}),
            "topologyOpeningEvent": _empty(),
            "topologyClosedEvent": _empty(),
        },
        maxProperties=1,
        minProperties=1,
    ),
    "serverDescription": _obj(
        {"type": _enum("Standalone", "Mongos", "PossiblePrimary", "RSPrimary", "RSSecondary", "RSOther",
                       "RSArbiter", "RSGhost", "LoadBalancer", "Unknown")}
    ),
    "topologyDescription": _obj(
        {"type": _enum("Single", "Unknown", "ReplicaSetNoPrimary", "ReplicaSetWithPrimary", "Sharded",
                       "LoadBalanced")}
    ),
    "expectedLogMessagesForClient": _obj(
        {
            "client": S,
            "messages": {"type": "array", "items": _ref("expectedLogMessage")},
            "ignoreExtraMessages": B,
            "ignoreMessages": {"type": "array", "items": _ref("expectedLogMessage")},
        },
        required=["client", "messages"],
    ),
    "expectTracingMessagesForClient": _obj(
        {"client": S, "ignoreExtraSpans": B, "spans": _arr(_ref("spanComponent"))}, required=["client", "spans"]
    ),
    "expectedLogMessage": _obj(
        {"level": _LEVEL, "component": _ref("logComponent"), "data": O, "failureIsRedacted": B},
        required=["level", "component", "data"],
    ),
    "collectionOrDatabaseOptions": _obj({"readConcern": O, "readPreference": O, "writeConcern": O, "timeoutMS": I}),
    "serverApi": _obj({"version": S, "strict": B, "deprecationErrors": B}, required=["version"]),
    "operation": _obj(
        {
            "name": S,
            "object": S,
            "arguments": O,
            "ignoreResultAndError": B,
            "expectError": _ref("expectedError"),
            "expectResult": {},
            "saveResultAsEntity": S,
        },
        required=["name", "object"],
        allOf=[
            _not_both("expectError", "expectResult"),
            _not_both("expectError", "saveResultAsEntity"),
            _not_both("ignoreResultAndError", "expectResult"),
            _not_both("ignoreResultAndError", "expectError"),
            _not_both("ignoreResultAndError", "saveResultAsEntity"),
        ],
    ),
    "expectedError": _obj(
        {
            "isError": {"type": "boolean", "const": True},
            "isClientError": B,
            "isTimeoutError": B,
            "errorContains": S,
            "errorCode": I,
            "errorCodeName": S,
            "errorLabelsContain": _arr(S),
            "errorLabelsOmit": _arr(S),
            "writeErrors": O,
            "writeConcernErrors": {"type": "array", "items": O},
            "errorResponse": O,
            "expectResult": {},
        },
        minProperties=1,
    ),
    "test": _obj(
        {
            "description": S,
            "runOnRequirements": _arr(_ref("runOnRequirement")),
            "skipReason": S,
            "operations": {"type": "array", "items": _ref("operation")},
            "expectEvents": _arr(_ref("expectedEventsForClient")),
            "expectLogMessages": _arr(_ref("expectedLogMessagesForClient")),
            "expectTracingMessages": _arr(_ref("expectTracingMessagesForClient")),
            "outcome": _arr(_ref("collectionData")),
        },
        required=["description", "operations"],
    ),
}

# -- validator -----------------------------------------------------------------------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _resolve(ref: str, root: dict) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def errors(value: Any, schema: Any, root: dict | None = None, path: str = "$") -> List[str]:
    """Every way *value* violates *schema* (an empty list when it is valid)."""
    root = SCHEMA if root is None else root
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path}: not allowed"]
    if "$ref" in schema:
        return errors(value, _resolve(schema["$ref"], root), root, path)
    out: List[str] = []
    t = schema.get("type")
    if t is not None and not _TYPES[t](value):
        return [f"{path}: expected {t}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in enum")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} != const {schema['const']!r}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                out.append(f"{path}: missing {key!r}")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            out.append(f"{path}: fewer than {schema['minProperties']} properties")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            out.append(f"{path}: more than {schema['maxProperties']} properties")
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            matched = False
            if key in props:
                matched = True
                out += errors(v, props[key], root, f"{path}.{key}")
            for pat, sub in patterns.items():
                if re.search(pat, key):
                    matched = True
                    out += errors(v, sub, root, f"{path}.{key}")
            if not matched and extra is not True:
                out += errors(v, extra, root, f"{path}.{key}") if extra is not False else [
                    f"{path}: unexpected property {key!r}"]
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, v in enumerate(value):
                out += errors(v, schema["items"], root, f"{path}[{i}]")
    for sub in schema.get("allOf", ()):
        out += errors(value, sub, root, path)
    if "anyOf" in schema and not any(not errors(value, s, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        n = sum(1 for s in schema["oneOf"] if not errors(value, s, root, path))
        if n != 1:
            out.append(f"{path}: matches {n} of oneOf (need exactly 1)")
    if "not" in schema and not errors(value, schema["not"], root, path):
        out.append(f"{path}: matches a 'not' schema")
    return out


def validate(document: Any) -> None:
    """Raise ``ValueError`` when *document* is not a valid unified test file."""
    errs = errors(document, SCHEMA)
    if errs:
        raise ValueError("invalid unified test file: " + "; ".join(errs[:5]))

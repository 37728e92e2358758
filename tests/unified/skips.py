"""Unified spec tests that fail because of the server under test, not the driver.

Keys are test ids (``suite/path.json::description``) or fnmatch globs; values name the server
limitation. Each failing test is listed once. Never list driver (amongo) failures here.
"""
from __future__ import annotations

import fnmatch
from typing import Dict, Optional

_SNAPSHOT = "SecantusDB ignores readConcern.atClusterTime on snapshot reads (returns the latest data)"

_ONE_NODE = ("SecantusDB is a one-node replica set: the test waits for the four topology changes of a "
             "three-member set's discovery")
_NO_JS = ("SecantusDB has no JavaScript engine: the $where 'sleep(2000)' that keeps a connection in use fails at "
          "once, so no in-use connection is there to interrupt")
_PRIMARY_TXN_WRITE = "SecantusDB accepts the onPrimaryTransactionalWrite fail point but ignores it"
_RETRY_HISTORY = ("SecantusDB answers a retried write (same txnNumber) from its retry history without consulting "
                  "failCommand, so the fail point's second 'times' never fires")

_LONG_HELLO = ("SecantusDB's hello reply is 1156 characters of relaxed Extended JSON, over the logging spec's default "
               "1000-character maxDocumentLength: the logged reply is truncated, so the test's $$matchAsDocument "
               "cannot parse it (a mongod reply fits)")

SECANTUS: Dict[str, str] = {
    "command-logging-and-monitoring/logging/redacted-commands.json::*hello without speculative authenticate "
    "command and server reply are not redacted":
        _LONG_HELLO,
    "unified-test-format/valid-pass/poc-retryable-writes.json::FindOneAndUpdate is never committed":
        _PRIMARY_TXN_WRITE,
    "unified-test-format/valid-pass/poc-retryable-writes.json::InsertOne fails after multiple retryable "
    "writeConcernErrors": _RETRY_HISTORY,
    "retryable-writes/unified/insertOne-errorLabels.json::InsertOne fails after multiple retryable "
    "writeConcernErrors": _RETRY_HISTORY,
    "retryable-writes/unified/client-bulkWrite-serverErrors.json::client bulkWrite with no multi: true "
    "operations succeeds after retryable writeConcernError":
        "SecantusDB's bulkWrite command keeps no retryable-write history: the retry re-executes the insert "
        "(duplicate key)",
    "retryable-writes/unified/bulkWrite.json::First command is retried": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/bulkWrite.json::BulkWrite with unordered execution": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/deleteOne.json::DeleteOne is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/findOneAndDelete.json::FindOneAndDelete is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/findOneAndReplace.json::FindOneAndReplace is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/findOneAndUpdate.json::FindOneAndUpdate is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/insertOne.json::InsertOne is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/replaceOne.json::ReplaceOne is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/updateOne.json::UpdateOne is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/*.json::* is never committed": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/insertMany.json::InsertMany succeeds after one network error": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/insertMany.json::InsertMany with unordered execution": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/insertMany.json::InsertMany fails after multiple network errors": _PRIMARY_TXN_WRITE,
    "causal-consistency/causal-consistency-clientBulkWrite.json::clientBulkWrite includes afterClusterTime in "
    "causally consistent session":
        "SecantusDB rejects readConcern on the bulkWrite command (IDLUnknownField); amongo sends afterClusterTime "
        "(tests/integration/test_conformance_bugs.py checks the command it sends)",
    "server-discovery-and-monitoring/unified/interruptInUse-pool-clear.json::*": _NO_JS,
    "server-discovery-and-monitoring/unified/logging-replicaset.json::Topology lifecycle": _ONE_NODE,
    "server-discovery-and-monitoring/unified/logging-replicaset.json::Successful heartbeat": _LONG_HELLO,
    "server-discovery-and-monitoring/unified/replicaset-emit-topology-changed-before-close.json::Topology lifecycle":
        _ONE_NODE,
    "server-discovery-and-monitoring/unified/rediscover-quickly-after-step-down.json::Rediscover quickly after "
    "replSetStepDown":
        "SecantusDB is a one-node replica set: replSetFreeze needs a secondary and replSetStepDown another member "
        "to elect",
    "server-selection/logging/replica-set.json::*": _ONE_NODE,
    "sessions/snapshot-sessions.json::Find operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Distinct operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Aggregate operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Mixed operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Write commands with snapshot session do not affect snapshot reads": _SNAPSHOT,
}

#: Tests run against SecantusDB started with --auth (test_unified_auth).
SECANTUS_AUTH: Dict[str, str] = {}

_FAIL_ISMASTER = ("SecantusDB's failCommand matches command names exactly: failCommands ['hello', 'ismaster'] "
                  "misses the isMaster handshake of the reconnecting monitor (mongod treats isMaster and "
                  "ismaster as one command), so the server does not stay Unknown")

#: Standalone-only tests run against SecantusDB --standalone (test_unified_single).
SECANTUS_STANDALONE: Dict[str, str] = {
    "server-selection/logging/operation-id.json::Failed *": _FAIL_ISMASTER,
    "server-selection/logging/standalone.json::Failure due to unreachable server": _FAIL_ISMASTER,
}

_NX = "nx-27017"
_NX_PIPELINE_UPDATE = f"{_NX} does not support pipeline-style updates (update given as an array)"
_NX_LET = f"{_NX} does not evaluate let variables ($$var) in $expr"
_NX_OUT = f"{_NX} does not support the $out stage"
_NX_DB_AGGREGATE = f"{_NX} rejects database-level aggregate ({{aggregate: 1}})"
_NX_DOTTED_NAME = f"{_NX} rejects collection names containing dots (GridFS fs.files)"
_NX_DECIMAL = f"{_NX} cannot store Decimal128 values"
_NX_W0 = f"{_NX} replies to moreToCome (w:0) requests, desynchronising the connection"
_NX_UNKNOWN_CMD = f"{_NX} answers unknown or unsupported commands with ok:1"
_NX_ISMASTER = f"{_NX}'s legacy hello reply has no ismaster field"
_NX_ARRAY_FILTERS = f"{_NX} ignores arrayFilters"
_NX_COLLATION = f"{_NX} ignores collation"
_NX_FAILPOINT = f"{_NX} accepts configureFailPoint but ignores it"
_NX_SORT = f"{_NX} reports a pre-8.0 version yet accepts sort in update/replace (no server-side error)"
_NX_ERROR_DETAILS = (f"{_NX} lacks MongoDB's error details (keyPattern/keyValue, errInfo), document validation and "
                     "prepareUnique")
_NX_OPTIONS = f"{_NX} does not report collection options (capped, size) in listCollections"
_NX_BULK_COUNTS = f"{_NX} counts a bulk write's operations wrongly (insertedCount 2 for one insert)"
_NX_UPSERT_ID = f"{_NX} does not take an upsert's _id from the query: it generates an ObjectId"
_NX_NULL_ID = f"{_NX} does not match a null _id with {{$type: 'null'}}"
_NX_DISTINCT_ORDER = f"{_NX} returns distinct values in insertion order, not mongod's sorted order"
_NX_VIEWS = f"{_NX} counts no documents through a view"
_NX_FAM_ID = f"{_NX}'s findAndModify replacement turns the _id into a string"
_NX_COMMENT_DOC = f"{_NX} inserts a document-valued comment as an extra document"
_NX_DOLLAR_ID = f"{_NX} accepts $-prefixed keys inside _id"
_NX_CLUSTERED = f"{_NX} has no clustered collections"
_NX_TIMESERIES = f"{_NX} enforces a unique _id on time-series collections"
_NX_RETURN_KEY = f"{_NX} ignores returnKey/showRecordId"
_NX_API_STRICT = f"{_NX} does not enforce apiStrict"
_NX_HYPHEN = (f"{_NX} rejects the suite's collection name 'logging-tests-collection' (Invalid identifier: no "
              "hyphens)")

NX: Dict[str, str] = {
    **{f"command-logging-and-monitoring/logging/{name}.json::*": _NX_HYPHEN for name in (
        "command", "driver-connection-id", "operation-id", "server-connection-id", "service-id",
        "unacknowledged-write")},
    "command-logging-and-monitoring/logging/redacted-commands.json::* command and resulting server-generated error "
    "are redacted": _NX_UNKNOWN_CMD,
    "command-logging-and-monitoring/logging/redacted-commands.json::network error in response to *": _NX_UNKNOWN_CMD,
    "command-logging-and-monitoring/logging/redacted-commands.json::legacy hello without speculative authenticate "
    "command and server reply are not redacted": _NX_ISMASTER,
    'unified-test-format/valid-pass/collectionData-createOptions.json::collection is created with the correct options': _NX_OPTIONS,
    'unified-test-format/valid-pass/expectedError-errorResponse.json::Unsupported command': _NX_ERROR_DETAILS,
    'unified-test-format/valid-pass/expectedError-errorResponse.json::Unsupported query operator': _NX_ERROR_DETAILS,
    'unified-test-format/valid-pass/expectedError-isClientError.json::isClientError considers network errors': _NX_FAILPOINT,
    'unified-test-format/valid-pass/observeSensitiveCommands.json::legacy hello without speculativeAuthenticate is always observed': _NX_ISMASTER,
    'unified-test-format/valid-pass/operator-type-number_alias.json::type number alias matches decimal128': _NX_DECIMAL,
    'unified-test-format/valid-pass/poc-crud.json::Aggregate with $listLocalSessions': _NX_DB_AGGREGATE,
    'unified-test-format/valid-pass/poc-gridfs.json::Delete when length is 10': _NX_DOTTED_NAME,
    'unified-test-format/valid-pass/poc-gridfs.json::Download when there are three chunks': _NX_DOTTED_NAME,
    'unified-test-format/valid-pass/poc-gridfs.json::Download when files entry does not exist': _NX_DOTTED_NAME,
    'unified-test-format/valid-pass/poc-gridfs.json::Download when an intermediate chunk is missing': _NX_DOTTED_NAME,
    'unified-test-format/valid-pass/poc-gridfs.json::Upload when length is 5': _NX_DOTTED_NAME,
    'unified-test-format/valid-pass/poc-retryable-reads.json::Aggregate succeeds after InterruptedAtShutdown': _NX_FAILPOINT,
    'unified-test-format/valid-pass/poc-retryable-reads.json::Find succeeds on second attempt': _NX_FAILPOINT,
    'unified-test-format/valid-pass/poc-retryable-reads.json::Find fails on first attempt': _NX_FAILPOINT,
    'unified-test-format/valid-pass/poc-retryable-reads.json::Find fails on second attempt': _NX_FAILPOINT,
    'unified-test-format/valid-pass/poc-retryable-reads.json::ListDatabases succeeds on second attempt': _NX_FAILPOINT,
    'crud/unified/aggregate-collation.json::Aggregate with collation': _NX_COLLATION,
    'crud/unified/aggregate-let.json::Aggregate with let option': _NX_LET,
    'crud/unified/aggregate-let.json::Aggregate to collection with let option': _NX_OUT,
    'crud/unified/aggregate-merge-errorResponse.json::aggregate $merge DuplicateKey error is accessible': _NX_ERROR_DETAILS,
    'crud/unified/aggregate-out.json::Aggregate with $out': _NX_OUT,
    'crud/unified/aggregate-out.json::Aggregate with $out and batch size of 0': _NX_OUT,
    'crud/unified/bulkWrite-arrayFilters.json::BulkWrite updateOne with arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/bulkWrite-arrayFilters.json::BulkWrite updateMany with arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/bulkWrite-arrayFilters.json::BulkWrite with arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/bulkWrite-collation.json::BulkWrite with delete operations and collation': _NX_COLLATION,
    'crud/unified/bulkWrite-collation.json::BulkWrite with update operations and collation': _NX_COLLATION,
    'crud/unified/bulkWrite-comment.json::BulkWrite with document comment': _NX_BULK_COUNTS,
    'crud/unified/bulkWrite-deleteMany-let.json::BulkWrite deleteMany with let option': _NX_LET,
    'crud/unified/bulkWrite-deleteOne-let.json::BulkWrite deleteOne with let option': _NX_LET,
    'crud/unified/bulkWrite-errorResponse.json::bulkWrite operations support errorResponse assertions': _NX_ERROR_DETAILS,
    'crud/unified/bulkWrite-replaceOne-let.json::BulkWrite replaceOne with let option': _NX_LET,
    'crud/unified/bulkWrite-replaceOne-sort.json::BulkWrite replaceOne with sort option unsupported (server-side error)': _NX_SORT,
    'crud/unified/bulkWrite-updateMany-dots_and_dollars.json::Updating document to set top-level dollar-prefixed key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateMany-dots_and_dollars.json::Updating document to set top-level dotted key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateMany-dots_and_dollars.json::Updating document to set dollar-prefixed key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateMany-dots_and_dollars.json::Updating document to set dotted key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateMany-let.json::BulkWrite updateMany with let option': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateMany-pipeline.json::UpdateMany in bulk write using pipelines': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateOne-dots_and_dollars.json::Updating document to set top-level dollar-prefixed key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateOne-dots_and_dollars.json::Updating document to set top-level dotted key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateOne-dots_and_dollars.json::Updating document to set dollar-prefixed key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateOne-dots_and_dollars.json::Updating document to set dotted key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateOne-let.json::BulkWrite updateOne with let option': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateOne-pipeline.json::UpdateOne in bulk write using pipelines': _NX_PIPELINE_UPDATE,
    'crud/unified/bulkWrite-updateOne-sort.json::BulkWrite updateOne with sort option unsupported (server-side error)': _NX_SORT,
    'crud/unified/bulkWrite.json::BulkWrite with replaceOne operations': _NX_UPSERT_ID,
    'crud/unified/bypassDocumentValidation.json::Aggregate with $out passes bypassDocumentValidation: false': _NX_OUT,
    'crud/unified/create-null-ids.json::inserting _id with type null via insertOne': _NX_NULL_ID,
    'crud/unified/create-null-ids.json::inserting _id with type null via insertMany': _NX_NULL_ID,
    'crud/unified/create-null-ids.json::inserting _id with type null via updateOne': _NX_NULL_ID,
    'crud/unified/create-null-ids.json::inserting _id with type null via updateMany': _NX_NULL_ID,
    'crud/unified/create-null-ids.json::inserting _id with type null via replaceOne': _NX_NULL_ID,
    'crud/unified/create-null-ids.json::inserting _id with type null via bulkWrite': _NX_NULL_ID,
    'crud/unified/db-aggregate.json::Aggregate with $listLocalSessions': _NX_DB_AGGREGATE,
    'crud/unified/db-aggregate.json::Aggregate with $listLocalSessions and allowDiskUse': _NX_DB_AGGREGATE,
    'crud/unified/deleteMany-collation.json::DeleteMany when many documents match with collation': _NX_COLLATION,
    'crud/unified/deleteMany-let.json::deleteMany with let option': _NX_LET,
    'crud/unified/deleteOne-collation.json::DeleteOne when many documents matches with collation': _NX_COLLATION,
    'crud/unified/deleteOne-errorResponse.json::delete operations support errorResponse assertions': _NX_ERROR_DETAILS,
    'crud/unified/deleteOne-let.json::deleteOne with let option': _NX_LET,
    'crud/unified/distinct-collation.json::Distinct with a collation': _NX_COLLATION,
    'crud/unified/distinct-comment.json::distinct with document comment': _NX_DISTINCT_ORDER,
    'crud/unified/distinct-comment.json::distinct with string comment': _NX_DISTINCT_ORDER,
    'crud/unified/distinct.json::Distinct without a filter': _NX_DISTINCT_ORDER,
    'crud/unified/distinct.json::Distinct with a filter': _NX_DISTINCT_ORDER,
    'crud/unified/estimatedDocumentCount.json::estimatedDocumentCount errors correctly--command error': _NX_FAILPOINT,
    'crud/unified/estimatedDocumentCount.json::estimatedDocumentCount errors correctly--socket error': _NX_FAILPOINT,
    'crud/unified/estimatedDocumentCount.json::estimatedDocumentCount works correctly on views': _NX_VIEWS,
    'crud/unified/find-collation.json::Find with a collation': _NX_COLLATION,
    'crud/unified/find-let.json::Find with let option': _NX_LET,
    'crud/unified/findOneAndDelete-collation.json::FindOneAndDelete when one document matches with collation': _NX_COLLATION,
    'crud/unified/findOneAndDelete-let.json::findOneAndDelete with let option': _NX_LET,
    'crud/unified/findOneAndReplace-collation.json::FindOneAndReplace when one document matches with collation returning the document after modification': _NX_COLLATION,
    'crud/unified/findOneAndReplace-let.json::findOneAndReplace with let option': _NX_LET,
    'crud/unified/findOneAndReplace-upsert.json::FindOneAndReplace when no documents match without id specified with upsert returning the document before modification': _NX_UPSERT_ID,
    'crud/unified/findOneAndReplace-upsert.json::FindOneAndReplace when no documents match without id specified with upsert returning the document after modification': _NX_UPSERT_ID,
    'crud/unified/findOneAndReplace.json::FindOneAndReplace when many documents match returning the document after modification': _NX_FAM_ID,
    'crud/unified/findOneAndReplace.json::FindOneAndReplace when one document matches returning the document after modification': _NX_FAM_ID,
    'crud/unified/findOneAndUpdate-arrayFilters.json::FindOneAndUpdate when one document matches arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/findOneAndUpdate-arrayFilters.json::FindOneAndUpdate when multiple documents match arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/findOneAndUpdate-collation.json::FindOneAndUpdate when many documents match with collation returning the document before modification': _NX_COLLATION,
    'crud/unified/findOneAndUpdate-comment.json::findOneAndUpdate with string comment': _NX_PIPELINE_UPDATE,
    'crud/unified/findOneAndUpdate-comment.json::findOneAndUpdate with document comment': _NX_PIPELINE_UPDATE,
    'crud/unified/findOneAndUpdate-dots_and_dollars.json::Updating document to set top-level dollar-prefixed key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/findOneAndUpdate-dots_and_dollars.json::Updating document to set top-level dotted key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/findOneAndUpdate-dots_and_dollars.json::Updating document to set dollar-prefixed key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/findOneAndUpdate-dots_and_dollars.json::Updating document to set dotted key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/findOneAndUpdate-errorResponse.json::findOneAndUpdate DuplicateKey error is accessible': _NX_ERROR_DETAILS,
    'crud/unified/findOneAndUpdate-errorResponse.json::findOneAndUpdate document validation errInfo is accessible': _NX_ERROR_DETAILS,
    'crud/unified/findOneAndUpdate-let.json::findOneAndUpdate with let option': _NX_PIPELINE_UPDATE,
    'crud/unified/findOneAndUpdate-pipeline.json::FindOneAndUpdate using pipelines': _NX_PIPELINE_UPDATE,
    'crud/unified/insertMany-comment.json::insertMany with document comment': _NX_COMMENT_DOC,
    'crud/unified/insertOne-comment.json::insertOne with document comment': _NX_COMMENT_DOC,
    'crud/unified/insertOne-dots_and_dollars.json::Inserting document with dollar-prefixed key in _id yields server-side error': _NX_DOLLAR_ID,
    'crud/unified/insertOne-errorResponse.json::insert operations support errorResponse assertions': _NX_ERROR_DETAILS,
    'crud/unified/replaceOne-collation.json::ReplaceOne when one document matches with collation': _NX_COLLATION,
    'crud/unified/replaceOne-let.json::ReplaceOne with let option': _NX_LET,
    'crud/unified/replaceOne-sort.json::replaceOne with sort option unsupported (server-side error)': _NX_SORT,
    'crud/unified/replaceOne.json::ReplaceOne with upsert when no documents match without an id specified': _NX_UPSERT_ID,
    'crud/unified/updateMany-arrayFilters.json::UpdateMany when one document matches arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/updateMany-arrayFilters.json::UpdateMany when multiple documents match arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/updateMany-collation.json::UpdateMany when many documents match with collation': _NX_COLLATION,
    'crud/unified/updateMany-dots_and_dollars.json::Updating document to set top-level dollar-prefixed key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateMany-dots_and_dollars.json::Updating document to set top-level dotted key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateMany-dots_and_dollars.json::Updating document to set dollar-prefixed key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateMany-dots_and_dollars.json::Updating document to set dotted key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateMany-let.json::updateMany with let option': _NX_PIPELINE_UPDATE,
    'crud/unified/updateMany-pipeline.json::UpdateMany using pipelines': _NX_PIPELINE_UPDATE,
    'crud/unified/updateOne-arrayFilters.json::UpdateOne when one document matches arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/updateOne-arrayFilters.json::UpdateOne when multiple documents match arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/updateOne-arrayFilters.json::UpdateOne when one document matches multiple arrayFilters': _NX_ARRAY_FILTERS,
    'crud/unified/updateOne-collation.json::UpdateOne when one document matches with collation': _NX_COLLATION,
    'crud/unified/updateOne-dots_and_dollars.json::Updating document to set top-level dollar-prefixed key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateOne-dots_and_dollars.json::Updating document to set top-level dotted key on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateOne-dots_and_dollars.json::Updating document to set dollar-prefixed key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateOne-dots_and_dollars.json::Updating document to set dotted key in embedded doc on 5.0+ server': _NX_PIPELINE_UPDATE,
    'crud/unified/updateOne-errorResponse.json::update operations support errorResponse assertions': _NX_ERROR_DETAILS,
    'crud/unified/updateOne-let.json::UpdateOne with let option': _NX_PIPELINE_UPDATE,
    'crud/unified/updateOne-pipeline.json::UpdateOne using pipelines': _NX_PIPELINE_UPDATE,
    'crud/unified/updateOne-sort.json::updateOne with sort option unsupported (server-side error)': _NX_SORT,
    'collection-management/clustered-indexes.json::listCollections includes clusteredIndex': _NX_CLUSTERED,
    'collection-management/clustered-indexes.json::listIndexes returns the index': _NX_CLUSTERED,
    'collection-management/modifyCollection-errorResponse.json::modifyCollection prepareUnique violations are accessible': _NX_ERROR_DETAILS,
    'collection-management/timeseries-collection.json::insertMany with duplicate ids': _NX_TIMESERIES,
    'run-command/unified/runCommand.json::does not retry retryable errors on given command': _NX_FAILPOINT,
    'run-command/unified/runCursorCommand.json::does not close the cursor when receiving an empty batch':
        f"{_NX} closes a tailable find cursor after its first batch (cursor id 0: no getMore, no killCursors)",
    'command-logging-and-monitoring/monitoring/find.json::A successful find with showRecordId and returnKey': _NX_RETURN_KEY,
    'command-logging-and-monitoring/monitoring/redacted-commands.json::authenticate': _NX_UNKNOWN_CMD,
    'command-logging-and-monitoring/monitoring/redacted-commands.json::saslStart': _NX_UNKNOWN_CMD,
    'command-logging-and-monitoring/monitoring/redacted-commands.json::saslContinue': _NX_UNKNOWN_CMD,
    'command-logging-and-monitoring/monitoring/redacted-commands.json::createUser': _NX_UNKNOWN_CMD,
    'command-logging-and-monitoring/monitoring/redacted-commands.json::updateUser': _NX_UNKNOWN_CMD,
    'command-logging-and-monitoring/monitoring/redacted-commands.json::legacy hello without speculative authenticate is not redacted': _NX_ISMASTER,
    'command-logging-and-monitoring/monitoring/unacknowledgedBulkWrite.json::A successful unordered bulk write with an unacknowledged write concern': _NX_W0,
    'versioned-api/crud-api-version-1-strict.json::aggregate on database appends declared API version': _NX_DB_AGGREGATE,
    'versioned-api/crud-api-version-1-strict.json::distinct appends declared API version': _NX_API_STRICT,
    'versioned-api/crud-api-version-1.json::aggregate on database appends declared API version': _NX_DB_AGGREGATE,
}

# Tests no driver can pass against any server: the test file contradicts itself (an upstream
# defect, not a server or driver limitation). Applied with every server table.
SPEC_DEFECTS: Dict[str, str] = {
    "client-side-operations-timeout/runCursorCommand.json::Tailable cursor awaitData iteration timeoutMS is "
    "refreshed for getMore - failure":
        "upstream test defect (DRIVERS-2965, skipped by the Node driver too): it sets no timeoutMS on the client, "
        "database or operation, yet expects a timeout error (and maxTimeMS on the find); with no deadline a "
        "tailable awaitData cursor waits for new data forever (tests/integration/test_csot.py checks the "
        "behaviour it means: a deadline bounds a whole tailable next())",
}


# Where Motor 3.7.1 itself departs from the spec (used only with AMONGO_UNIFIED_DRIVER=motor, as
# xfail): these are not skipped for amongo, which should follow the spec.
MOTOR_DEVIATIONS: Dict[str, str] = {
    "retryable-reads/unified/gridfs-download*.json::Download *":
        "Motor's GridFS looks files up with {_id: {$eq: id}}, the spec expects {_id: id}",
    "crud/unified/client-bulkWrite-partialResults.json::partialResult is unset when first operation fails "
    "during an ordered bulk write*":
        "PyMongo sets anySuccessful when nErrors < len(ops), even if the ordered batch stopped at op 0",
}


def skip_reason(test_id: str, table: Dict[str, str]) -> Optional[str]:
    if test_id in table:
        return table[test_id]
    for pattern, reason in table.items():
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(test_id, pattern):
            return reason
    return None


# -- load-balanced (tests/proxy.py in load-balancer mode in front of SecantusDB) --------------
# The same server behind the proxy: SecantusDB's own limitations apply too.
LOAD_BALANCED: Dict[str, str] = {
    **SECANTUS,
    "transactions/unified/mongos-recovery-token.json::commitTransaction explicit retries include recoveryToken":
        "SecantusDB behind the load-balancer proxy is a replica-set member: its replies carry no recoveryToken "
        "(only mongos sends one)",
}

"""Unified spec tests that fail because of the server under test, not the driver.

Keys are test ids (``suite/path.json::description``) or fnmatch globs; values name the server
limitation. Each failing test is listed once. Never list driver (amongo) failures here.
"""
from __future__ import annotations

import fnmatch
from typing import Dict, Optional

_NO_SECONDARY = "SecantusDB is a one-node replica set: no secondary to select (server selection times out)"
_SNAPSHOT = "SecantusDB ignores readConcern.atClusterTime on snapshot reads (returns the latest data)"

_PRIMARY_TXN_WRITE = "SecantusDB accepts the onPrimaryTransactionalWrite fail point but ignores it"
_RETRY_HISTORY = ("SecantusDB answers a retried write (same txnNumber) from its retry history without consulting "
                  "failCommand, so the fail point's second 'times' never fires")

SECANTUS: Dict[str, str] = {
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
    "retryable-writes/unified/*.json::* is committed on first attempt": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/*.json::* is never committed": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/insertMany.json::InsertMany succeeds after one network error": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/insertMany.json::InsertMany with unordered execution": _PRIMARY_TXN_WRITE,
    "retryable-writes/unified/insertMany.json::InsertMany fails after multiple network errors": _PRIMARY_TXN_WRITE,
    "sessions/snapshot-sessions.json::Find operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Distinct operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Aggregate operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Mixed operation with snapshot": _SNAPSHOT,
    "sessions/snapshot-sessions.json::Write commands with snapshot session do not affect snapshot reads": _SNAPSHOT,
    "transactions/unified/read-pref.json::secondary readPreference": _NO_SECONDARY,
    "transactions/unified/run-command.json::run command fails with explicit secondary read preference": _NO_SECONDARY,
    "transactions/unified/run-command.json::run command fails with secondary read preference from transaction "
    "options": _NO_SECONDARY,
    "transactions/unified/transaction-options.json::readPreference inherited from client": _NO_SECONDARY,
    "transactions/unified/transaction-options.json::readPreference inherited from defaultTransactionOptions":
        _NO_SECONDARY,
    "transactions/unified/transaction-options.json::startTransaction overrides readPreference": _NO_SECONDARY,
}

NX: Dict[str, str] = {
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

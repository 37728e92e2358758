"""Motor's ``motor.motor_gridfs`` names over amongo's GridFS classes."""
from __future__ import annotations

import hashlib
from typing import Any

from amongo.gridfs import GridFSBucket as AgnosticGridFSBucket
from amongo.gridfs import GridIn as AgnosticGridIn
from amongo.gridfs import GridOut as AgnosticGridOut
from amongo.gridfs import GridOutCursor as AgnosticGridOutCursor

__all__ = ["AgnosticGridFSBucket", "AgnosticGridIn", "AgnosticGridOut", "AgnosticGridOutCursor"]


def _hash_gridout(gridout: Any) -> str:
    """The ETag of a GridFS file, as Motor computes it: SHA-256 over the file's ``_id``,
    length and upload date (a stand-in for its content that does not read the file)."""
    digest = hashlib.sha256(str(gridout._id).encode("utf8"))
    digest.update(str(gridout.length).encode("utf8"))
    digest.update(str(gridout.upload_date).encode("utf8"))
    return digest.hexdigest()

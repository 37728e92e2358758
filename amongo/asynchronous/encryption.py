"""``AsyncClientEncryption`` (PyMongo: ``pymongo.asynchronous.encryption``): amongo does not
implement client-side field-level encryption, so constructing one raises
:class:`~pymongo.errors.ConfigurationError` instead of writing plaintext."""
from __future__ import annotations

from amongo.motor_core import AgnosticClientEncryption as AsyncClientEncryption

__all__ = ["AsyncClientEncryption"]

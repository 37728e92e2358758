"""``client.options``: the client's validated options, shaped like PyMongo's ``ClientOptions``.

PyMongo (and so Motor, which hands out PyMongo's object) answers ``client.options`` with a
``ClientOptions``: ``codec_options``, ``read_preference``, ``pool_options.max_pool_size``,
``pool_options.metadata`` (the handshake's ``client`` document, e.g. what Beanie checks after
``append_metadata``), and so on. amongo's :class:`ClientOptions` has the same attributes, read
from the client's own settings (nothing of PyMongo's client or pool is used), and is also a
read-only, case-insensitive mapping of the validated options by their URI names
(``client.options["appname"]``), as amongo's ``options`` has always been. Its ``repr`` redacts
credentials.

Pure code: no I/O, no asyncio.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional

from amongo.uri import redacted_options

if TYPE_CHECKING:
    from bson.codec_options import CodecOptions
    from pymongo.read_concern import ReadConcern
    from pymongo.write_concern import WriteConcern

    from amongo.client import MongoClient

__all__ = ["ClientOptions", "PoolOptions"]


class PoolOptions:
    """``client.options.pool_options`` (PyMongo: ``pymongo.pool_options.PoolOptions``): the
    connection pool's and handshake's settings. ``metadata`` is live: it includes what
    ``append_metadata`` added."""

    __slots__ = ("_client",)

    def __init__(self, client: "MongoClient[Any]") -> None:
        self._client = client

    @property
    def _pool(self) -> Any:
        return self._client._pool_options

    @property
    def _conn(self) -> Any:
        return self._client._connection_options

    @property
    def non_default_options(self) -> Dict[str, Any]:
        """The pool options that differ from the defaults, by URI name."""
        return dict(self._pool.non_default_options)

    @property
    def max_pool_size(self) -> Optional[int]:
        """``maxPoolSize`` (``None``/0: unbounded)."""
        return self._pool.max_pool_size  # type: ignore[no-any-return]

    @property
    def min_pool_size(self) -> int:
        """``minPoolSize``."""
        return self._pool.min_pool_size  # type: ignore[no-any-return]

    @property
    def max_connecting(self) -> int:
        """``maxConnecting``."""
        return self._pool.max_connecting  # type: ignore[no-any-return]

    @property
    def max_idle_time_seconds(self) -> Optional[float]:
        """``maxIdleTimeMS`` in seconds (``None``: no limit)."""
        ms = self._pool.max_idle_time_ms
        return None if ms is None else ms / 1000.0

    @property
    def wait_queue_timeout(self) -> Optional[float]:
        """``waitQueueTimeoutMS`` in seconds (``None``: no limit)."""
        ms = self._pool.wait_queue_timeout_ms
        return None if ms is None else ms / 1000.0

    @property
    def connect_timeout(self) -> Optional[float]:
        """``connectTimeoutMS`` in seconds."""
        return self._conn.connect_timeout  # type: ignore[no-any-return]

    @property
    def socket_timeout(self) -> Optional[float]:
        """``socketTimeoutMS`` in seconds (``None``: no limit)."""
        return self._conn.socket_timeout  # type: ignore[no-any-return]

    @property
    def ssl_context(self) -> Any:
        """The TLS context, or ``None`` without TLS."""
        return self._conn.ssl_context

    @property
    def tls_allow_invalid_hostnames(self) -> bool:
        """Whether the server's hostname is not checked against its certificate."""
        return not self._conn.tls_server_hostname_check

    @property
    def event_listeners(self) -> List[Any]:
        """The client's pool/connection event listeners."""
        return list(self._client._listeners.all)

    @property
    def appname(self) -> Optional[str]:
        """``appName``."""
        return self._conn.appname  # type: ignore[no-any-return]

    @property
    def driver(self) -> Any:
        """The ``DriverInfo`` given to the client (``driver=``), or ``None``."""
        return self._conn.driver_info

    @property
    def metadata(self) -> Dict[str, Any]:
        """A copy of the handshake's ``client`` document (driver, os, platform, application)."""
        md = self._conn.metadata
        return {k: dict(v) if isinstance(v, dict) else v for k, v in md.items()}

    @property
    def server_api(self) -> Any:
        """The ``ServerApi``, or ``None``."""
        return self._conn.server_api

    @property
    def load_balanced(self) -> Optional[bool]:
        """``loadBalanced`` (``None``: not given, as in PyMongo)."""
        return self._client._options.get("loadBalanced")

    def __repr__(self) -> str:
        return (f"PoolOptions(max_pool_size={self.max_pool_size!r}, "
                f"min_pool_size={self.min_pool_size!r}, appname={self.appname!r})")


class ClientOptions(Mapping[str, Any]):
    """``client.options`` (PyMongo/Motor: ``ClientOptions``): the client's settings as
    attributes, and a read-only case-insensitive mapping of its validated options."""

    __slots__ = ("_client",)

    def __init__(self, client: "MongoClient[Any]") -> None:
        self._client = client

    # -- the mapping of validated options (URI names, any case) --------------------------
    @property
    def _options(self) -> Mapping[str, Any]:
        """The validated options (PyMongo: ``ClientOptions._options``)."""
        return self._client._options

    def __getitem__(self, key: str) -> Any:
        return self._client._options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._client._options)

    def __len__(self) -> int:
        return len(self._client._options)

    def __contains__(self, key: object) -> bool:
        return key in self._client._options

    def __repr__(self) -> str:
        return f"ClientOptions({redacted_options(self._client._options)!r})"

    # -- PyMongo's ClientOptions attributes ------------------------------------------------
    @property
    def _topology(self) -> Any:
        return self._client._topology_settings

    @property
    def connect(self) -> Optional[bool]:
        """Whether the client connects at construction (``connect=``), or ``None``."""
        return self._client._options.get("connect")

    @property
    def codec_options(self) -> "CodecOptions[Any]":
        """The client's ``CodecOptions``."""
        return self._client._codec_options

    @property
    def credentials(self) -> Any:
        """The client's credential, or ``None`` without authentication."""
        return self._client._credential

    @property
    def direct_connection(self) -> Optional[bool]:
        """``directConnection`` (``None``: not given)."""
        return self._topology.direct_connection  # type: ignore[no-any-return]

    @property
    def local_threshold_ms(self) -> int:
        """``localThresholdMS``."""
        return self._topology.local_threshold_ms  # type: ignore[no-any-return]

    @property
    def server_selection_timeout(self) -> float:
        """``serverSelectionTimeoutMS`` in seconds."""
        return self._topology.server_selection_timeout  # type: ignore[no-any-return]

    @property
    def server_selector(self) -> Any:
        """The ``server_selector`` callable given to the client, or ``None``."""
        return self._client._options.get("server_selector")

    @property
    def heartbeat_frequency(self) -> float:
        """``heartbeatFrequencyMS`` in seconds."""
        return self._topology.heartbeat_frequency  # type: ignore[no-any-return]

    @property
    def pool_options(self) -> PoolOptions:
        """The pool's and handshake's settings (``max_pool_size``, ``metadata``, ...)."""
        return PoolOptions(self._client)

    @property
    def read_preference(self) -> Any:
        """The client's read preference."""
        return self._client._read_preference

    @property
    def replica_set_name(self) -> Optional[str]:
        """``replicaSet``, or ``None``."""
        return self._topology.replica_set_name  # type: ignore[no-any-return]

    @property
    def write_concern(self) -> "WriteConcern":
        """The client's ``WriteConcern``."""
        return self._client._write_concern

    @property
    def read_concern(self) -> "ReadConcern":
        """The client's ``ReadConcern``."""
        return self._client._read_concern

    @property
    def timeout(self) -> Optional[float]:
        """``timeoutMS`` in seconds (``None``: no client-wide timeout)."""
        return self._client._timeout

    @property
    def retry_writes(self) -> bool:
        """``retryWrites``."""
        return self._client._retry_writes

    @property
    def retry_reads(self) -> bool:
        """``retryReads``."""
        return self._client._retry_reads

    @property
    def auto_encryption_opts(self) -> None:
        """Always ``None``: amongo has no client-side field level encryption."""
        return None

    @property
    def load_balanced(self) -> Optional[bool]:
        """``loadBalanced`` (``None``: not given, as in PyMongo)."""
        return self._client._options.get("loadBalanced")

    @property
    def event_listeners(self) -> List[Any]:
        """The event listeners given to the client (``event_listeners=``)."""
        return list(self._client._options.get("event_listeners") or ())

    @property
    def server_monitoring_mode(self) -> str:
        """``serverMonitoringMode``."""
        return self._topology.server_monitoring_mode  # type: ignore[no-any-return]

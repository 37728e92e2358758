"""The client: options, topology, sessions (Motor's ``AsyncIOMotorClient`` / ``MotorClient``).

The class here carries the behaviour; :mod:`amongo.motor_asyncio` and
:mod:`amongo.motor_tornado` give it Motor's names.
"""
from __future__ import annotations

import asyncio
import ssl
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Type, Union

from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from pymongo.errors import ConfigurationError, InvalidName, InvalidOperation
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from amongo import tracing as _tracing
from amongo import uri as _uri
from amongo._common import _BaseObject, _facade_class, validate_database_name
from amongo._typing import _DocumentType, _DocumentTypeArg
from amongo.connection import ConnectionOptions
from amongo.credentials import credential_from_options
from amongo.engine.core import ClientCore
from amongo.engine.executor import Executor
from amongo.engine.operation import ReadCommand
from amongo.monitoring import EventListeners
from amongo.pool import PoolOptions
from amongo.engine.session import ClientSession, SessionOptions
from amongo.topology.description import ServerDescription, ServerType, TopologyType
from amongo.topology.topology import Topology, TopologySettings
from amongo.change_stream import ChangeStream
from amongo.client_bulk import client_bulk_write
from amongo.command_cursor import CommandCursor
from amongo.database import Database

if TYPE_CHECKING:  # pragma: no cover
    from amongo.client_options import ClientOptions

Address = Tuple[str, int]


def _ms(options: Mapping[str, Any], name: str, default: Optional[float]) -> Optional[float]:
    """An option given in milliseconds, in seconds (None stays None)."""
    v = options.get(name)
    if v is None:
        return default
    return float(v) / 1000.0


def _load_tls_file(option: str, path: str, load: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Call an :class:`ssl.SSLContext` loader; a missing or unreadable file, or one that is
    not what the option needs, raises :class:`~pymongo.errors.ConfigurationError` naming the
    option and the file (``ssl`` alone says only "No such file or directory")."""
    try:
        load(*args, **kwargs)
    except FileNotFoundError:
        raise ConfigurationError(f"{option}: file not found: {path!r}") from None
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(f"{option}: cannot load {path!r}: {exc}") from None


class MongoClient(_BaseObject[_DocumentType]):
    """A connection to a MongoDB deployment (Motor: ``AsyncIOMotorClient``).

    Takes the same arguments as Motor's client (and so PyMongo's ``MongoClient``): a host
    string, a ``mongodb://`` / ``mongodb+srv://`` URI, or a list of them; a port; and URI
    options as keyword arguments (case-insensitive). ``io_loop`` is accepted as in Motor.
    Monitoring starts at construction inside a running event loop (``connect=False`` defers
    it to the first operation, which is also when a client built outside a loop connects).

    Generic in the document type, as Motor's stubs and PyMongo: ``AsyncIOMotorClient[User]``
    (``document_class=User`` infers it); databases, collections and cursors keep it.

    ``tracing={"enabled": True, "query_text_max_length": N, "tracer_provider": p}`` turns on
    OpenTelemetry spans (MongoDB's OpenTelemetry spec; needs the ``otel`` extra, see
    :mod:`amongo.tracing`); the ``OTEL_PYTHON_INSTRUMENTATION_MONGODB_ENABLED`` environment
    variable does when the option leaves ``enabled`` out.
    """

    _DEFAULT_HOST = "localhost"
    _DEFAULT_PORT = 27017
    #: The default host and port (Motor and PyMongo: class constants, not the connected address).
    HOST: str = "localhost"
    PORT: int = 27017
    #: the classes this client builds (the PyMongo-style layer sets its own)
    _database_class: "ClassVar[Type[Database[Any]]]" = _facade_class("amongo.database:Database")
    _session_class: "ClassVar[Type[ClientSession]]" = _facade_class("amongo.engine.session:ClientSession")
    _command_cursor_class: "ClassVar[Type[CommandCursor[Any]]]" = _facade_class("amongo.command_cursor:CommandCursor")
    _change_stream_class: "ClassVar[Type[ChangeStream[Any]]]" = _facade_class("amongo.change_stream:ChangeStream")

    def __init__(
        self,
        host: Optional[Union[str, Sequence[str]]] = None,
        port: Optional[int] = None,
        document_class: Optional[Type[_DocumentType]] = None,
        tz_aware: Optional[bool] = None,
        connect: Optional[bool] = None,
        type_registry: Any = None,
        **kwargs: Any,
    ) -> None:
        self._io_loop = kwargs.pop("io_loop", None)
        if host is None:
            host = self._DEFAULT_HOST
        if isinstance(host, str):
            host = [host]
        if port is None:
            port = self._DEFAULT_PORT
        if not isinstance(port, int):
            raise TypeError("port must be an instance of int")

        seeds: List[Address] = []
        uri_opts: Dict[str, Any] = {}
        username = password = None
        dbase: Optional[str] = None
        fqdn: Optional[str] = None
        for entity in host:
            if "://" in entity:
                res = _uri.parse_uri(entity, port, warn=True)
                seeds.extend(res.nodelist)
                username = res.username or username
                password = res.password or password
                dbase = res.database or dbase
                uri_opts.update(res.options)
                if res.is_srv:
                    fqdn = res.fqdn
            else:
                seeds.extend(_uri.parse_host(h.strip(), port) for h in entity.split(",") if h.strip())
        if not seeds and fqdn is None:
            raise ConfigurationError("need to specify at least one host")

        kw = dict(kwargs)
        if document_class is not None:
            kw["document_class"] = document_class
        if tz_aware is not None:
            kw["tz_aware"] = tz_aware
        if type_registry is not None:
            kw["type_registry"] = type_registry
        if connect is not None:
            kw["connect"] = connect
        kw_opts = _uri.validate_options(kw, warn=False)
        opts = _uri.validate_options(uri_opts, warn=True) if uri_opts else _uri.validate_options({})
        opts.update(kw_opts)
        _uri.check_implemented(opts)
        if fqdn is not None and "tls" not in opts:
            opts["tls"] = True  # mongodb+srv implies TLS unless the URI or kwargs say otherwise
        self._options = opts
        self._seeds = seeds
        self._default_database_name = dbase
        uri_userinfo = username is not None and "username" not in opts
        username = opts.get("username", username)
        password = opts.get("password", password)
        self._credential = credential_from_options(username, password, dbase, opts, uri_userinfo=uri_userinfo)
        self._credential_inputs = (username, password, dbase)

        self._codec_options: CodecOptions[_DocumentType] = _uri.codec_options_from(opts)
        self._read_preference = _uri.read_preference_from(opts)
        self._write_concern: WriteConcern = _uri.write_concern_from(opts)
        self._read_concern: ReadConcern = _uri.read_concern_from(opts)
        self._retry_writes = bool(opts.get("retryWrites", True))
        self._retry_reads = bool(opts.get("retryReads", True))
        self._timeout = _ms(opts, "timeoutMS", None)
        if self._timeout == 0:
            self._timeout = None
        self._server_api = opts.get("server_api")
        self._listeners = EventListeners(opts.get("event_listeners") or ())
        # OpenTelemetry (amongo/tracing.py): None unless enabled; opentelemetry is imported only then.
        self._tracing = _tracing.from_options(opts.get("tracing"))
        self._closed = False

        direct = opts.get("directConnection")
        load_balanced = bool(opts.get("loadBalanced", False))
        replica_set = opts.get("replicaSet")
        if direct and len(seeds) > 1:
            raise ConfigurationError("Cannot specify multiple hosts with directConnection=true")
        if load_balanced:
            if len(seeds) > 1:
                raise ConfigurationError("Cannot specify multiple hosts with loadBalanced=true")
            if direct:
                raise ConfigurationError("Cannot specify directConnection=true with loadBalanced=true")
            if replica_set:
                raise ConfigurationError("Cannot specify replicaSet with loadBalanced=true")

        conn_opts = ConnectionOptions(
            connect_timeout=_ms(opts, "connectTimeoutMS", 20.0) or None,
            socket_timeout=_ms(opts, "socketTimeoutMS", None) or None,
            ssl_context=self._make_ssl_context(opts),
            tls_server_hostname_check=not (opts.get("tlsAllowInvalidHostnames") or opts.get("tlsInsecure")),
            appname=opts.get("appname"),
            driver_info=opts.get("driver"),
            compressors=list(opts.get("compressors") or ()),
            zlib_level=int(opts.get("zlibCompressionLevel", -1)),
            server_api=self._server_api,
            load_balanced=load_balanced,
            credential=self._credential,
        )
        self._connection_options = conn_opts
        max_pool = opts.get("maxPoolSize", 100)
        pool_opts = PoolOptions(
            max_pool_size=100 if max_pool is None else int(max_pool),
            min_pool_size=int(opts.get("minPoolSize", 0)),
            max_idle_time_ms=opts.get("maxIdleTimeMS"),
            max_connecting=int(opts.get("maxConnecting", 2)),
            wait_queue_timeout_ms=opts.get("waitQueueTimeoutMS"),
            load_balanced=load_balanced,
        )
        self._pool_options = pool_opts
        self._topology_settings = TopologySettings(
            seeds,
            replica_set_name=replica_set,
            direct_connection=direct,
            load_balanced=load_balanced,
            server_selection_timeout=_ms(opts, "serverSelectionTimeoutMS", 30.0) or 30.0,
            local_threshold_ms=int(opts.get("localThresholdMS", 15)),
            heartbeat_frequency=_ms(opts, "heartbeatFrequencyMS", 10.0) or 10.0,
            pool_options=pool_opts,
            connection_options=conn_opts,
            listeners=self._listeners,
            srv_fqdn=fqdn,
            srv_service_name=opts.get("srvServiceName", "mongodb"),
            srv_max_hosts=int(opts.get("srvMaxHosts", 0) or 0),
            server_monitoring_mode=opts.get("serverMonitoringMode", "auto"),
        )
        self._topology = Topology(self._topology_settings)
        self._topology.log_client_id = id(self)
        if fqdn is not None:
            # (through a weak reference: the topology, kept alive by its monitor tasks, must
            # not keep the client alive, or an unclosed client would never be collected)
            hook_ref = weakref.WeakMethod(self._credential_from_txt)

            def txt_hook(txt: Mapping[str, str]) -> Any:
                hook = hook_ref()
                return None if hook is None else hook(txt)

            self._topology.srv_txt_hook = txt_hook
        self._core = ClientCore(
            self, self._topology, self._listeners, retry_writes=self._retry_writes,
            retry_reads=self._retry_reads, timeout=self._timeout, server_api=self._server_api,
            read_concern=self.read_concern, write_concern=self.write_concern,
            read_preference=self.read_preference,
            max_adaptive_retries=opts.get("maxAdaptiveRetries"), tracing=self._tracing,
        )
        self._executor: Executor = self._core.executor
        cls = type(self)
        if (cls.max_bson_size is not MongoClient.max_bson_size
                or cls.max_message_size is not MongoClient.max_message_size
                or cls.max_write_batch_size is not MongoClient.max_write_batch_size):
            # a subclass overrides its max_* properties: they cap how bulk writes are cut
            self._core.write_caps = self._write_limits
        #: a new implicit session (the core's bound method: no extra call per operation)
        self._implicit_session: Callable[[], ClientSession] = self._core.implicit_session
        if connect is not False:
            # Start monitoring at once when constructed inside a running loop (as PyMongo's
            # connect=True); otherwise the first operation opens the topology.
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self._topology.open_sync()

    # -- construction helpers ---------------------------------------------------------------
    def _credential_from_txt(self, txt: Mapping[str, str]) -> Any:
        """SRV TXT hook: a TXT ``authSource`` applies when the URI/keywords set none;
        returns the new credential (None: keep the current one)."""
        source = next((v for k, v in txt.items() if k.lower() == "authsource"), None)
        if source is None or "authSource" in self._options:
            return None
        opts = dict(self._options)
        opts["authSource"] = source
        credential = credential_from_options(*self._credential_inputs, opts)
        if credential is None or credential == self._credential:
            return None
        self._credential = credential
        return credential

    @staticmethod
    def _make_ssl_context(opts: Mapping[str, Any]) -> Optional[ssl.SSLContext]:
        if not (opts.get("tls") or opts.get("ssl")):
            return None
        try:
            return MongoClient._load_ssl_context(opts)
        except (ssl.SSLError, OSError) as exc:  # (the message never holds the key's password)
            raise ConfigurationError(f"Could not set up TLS: {exc}") from exc

    @staticmethod
    def _load_ssl_context(opts: Mapping[str, Any]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        insecure = bool(opts.get("tlsInsecure"))
        allow_invalid_certs = insecure or bool(opts.get("tlsAllowInvalidCertificates"))
        allow_invalid_hosts = insecure or bool(opts.get("tlsAllowInvalidHostnames"))
        ctx.check_hostname = not allow_invalid_hosts and not allow_invalid_certs
        if allow_invalid_certs:
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx.verify_mode = ssl.CERT_REQUIRED
        ca = opts.get("tlsCAFile")
        if ca:
            _load_tls_file("tlsCAFile", ca, ctx.load_verify_locations, ca)
        elif not allow_invalid_certs:
            ctx.load_default_certs()
        certfile = opts.get("tlsCertificateKeyFile")
        if certfile:
            _load_tls_file("tlsCertificateKeyFile", certfile, ctx.load_cert_chain, certfile,
                           password=opts.get("tlsCertificateKeyFilePassword"))
        crl = opts.get("tlsCRLFile")
        if crl:
            _load_tls_file("tlsCRLFile", crl, ctx.load_verify_locations, crl)
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        return ctx

    def _is_direct_single(self, server: Any) -> bool:
        """True when the topology type is Single (a direct connection)."""
        return self._topology.description.topology_type == TopologyType.Single

    def _session_timeout_minutes(self) -> Optional[int]:
        """The deployment's logicalSessionTimeoutMinutes (None: unknown or unsupported)."""
        return self._core.session_timeout_minutes()

    def _write_limits(self) -> Tuple[int, int, int]:
        """This client's ``max_bson_size`` / ``max_message_size`` / ``max_write_batch_size``:
        the caps bulk writes split by when its class overrides those properties."""
        return self.max_bson_size, self.max_message_size, self.max_write_batch_size

    # -- Motor-compatible API ---------------------------------------------------------------
    def get_io_loop(self) -> Any:
        """The event loop (Motor: ``get_io_loop``)."""
        if self._io_loop is not None:
            return self._io_loop
        return asyncio.get_event_loop()

    @property
    def io_loop(self) -> Any:
        """The event loop (Motor: ``AsyncIOMotorClient.io_loop``)."""
        return self.get_io_loop()

    def __getattr__(self, name: str) -> "Database[_DocumentType]":
        if name.startswith("_"):
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name!r}. To access the {name} database, "
                f"use client[{name!r}]."
            )
        return self[name]

    def __getitem__(self, name: str) -> "Database[_DocumentType]":
        return self._database_class(self, name)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, MongoClient):
            return self._seeds == other._seeds and self._options == other._options
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._seeds))

    def __repr__(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self._seeds)
        return f"{type(self).__name__}(host=[{hosts!r}])"

    @property
    def options(self) -> "ClientOptions":
        """The client's options (Motor/PyMongo: ``options``, a ``ClientOptions``): attributes
        such as ``codec_options``, ``pool_options.max_pool_size``, ``pool_options.metadata``,
        and a read-only case-insensitive mapping of the validated options by URI name."""
        from amongo.client_options import ClientOptions

        return ClientOptions(self)

    @property
    def event_listeners(self) -> List[Any]:
        """The event listeners registered for this client, the global ones
        (:func:`pymongo.monitoring.register`) included (Motor/PyMongo: ``event_listeners``).
        """
        return list(self._listeners.all)

    @property
    def topology_description(self) -> Any:
        """The current :class:`~amongo.topology.description.TopologyDescription` (Motor:
        ``topology_description``)."""
        return self._topology.description

    @property
    def max_pool_size(self) -> int:
        """The ``maxPoolSize`` of each connection pool (Motor: ``max_pool_size``)."""
        return self._pool_options.max_pool_size  # type: ignore[return-value]  # (None: unbounded, as given)

    @property
    def min_pool_size(self) -> int:
        """The ``minPoolSize`` of each connection pool (Motor: ``min_pool_size``)."""
        return self._pool_options.min_pool_size

    @property
    def max_idle_time_ms(self) -> Optional[int]:
        """The ``maxIdleTimeMS`` of each connection pool, or None (Motor: ``max_idle_time_ms``)."""
        return self._pool_options.max_idle_time_ms

    @property
    def local_threshold_ms(self) -> int:
        """The ``localThresholdMS`` latency window (Motor: ``local_threshold_ms``)."""
        return self._topology_settings.local_threshold_ms

    @property
    def server_selection_timeout(self) -> float:
        """``serverSelectionTimeoutMS`` in seconds (Motor: ``server_selection_timeout``)."""
        return self._topology_settings.server_selection_timeout

    def get_database(
        self,
        name: Optional[str] = None,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
    ) -> "Database[_DocumentType]":
        """Get a database, optionally with different options (Motor: ``get_database``)."""
        if name is None:
            if self._default_database_name is None:
                raise ConfigurationError("No default database name defined or provided.")
            name = self._default_database_name
        return self._database_class(self, name, codec_options, read_preference, write_concern, read_concern)  # type: ignore[arg-type]

    def get_default_database(
        self,
        default: Optional[str] = None,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
    ) -> "Database[_DocumentType]":
        """The database named in the URI, else *default* (Motor: ``get_default_database``)."""
        name = self._default_database_name or default
        if name is None:
            raise ConfigurationError("No default database name defined or provided.")
        return self._database_class(self, name, codec_options, read_preference, write_concern, read_concern)  # type: ignore[arg-type]

    async def server_info(self, session: Optional[ClientSession] = None) -> Dict[str, Any]:
        """The ``buildInfo`` command's reply (Motor: ``server_info``)."""
        return await self.admin.command("buildInfo", read_preference=ReadPreference.PRIMARY, session=session)

    async def list_databases(
        self, session: Optional[ClientSession] = None, comment: Any = None, **kwargs: Any
    ) -> "CommandCursor[Dict[str, Any]]":
        """A command cursor over ``listDatabases`` (Motor: ``list_databases``)."""
        cmd: Dict[str, Any] = {"listDatabases": 1}
        cmd.update(kwargs)
        if comment is not None:
            cmd["comment"] = comment
        admin = self._admin()
        res = await self._executor.execute(
            ReadCommand("admin", cmd, admin.codec_options, read_preference=ReadPreference.PRIMARY), session)
        batch = res.get("databases", [])
        return self._command_cursor_class.from_documents(admin["$cmd"], batch, session=session)

    async def list_database_names(self, session: Optional[ClientSession] = None, comment: Any = None) -> List[str]:
        """Names of all databases (Motor: ``list_database_names``)."""
        cursor = await self.list_databases(session=session, nameOnly=True, comment=comment)
        return [d["name"] async for d in cursor]

    async def bulk_write(
        self,
        models: Any,
        session: Optional[ClientSession] = None,
        ordered: bool = True,
        verbose_results: bool = False,
        bypass_document_validation: Optional[bool] = None,
        comment: Any = None,
        let: Optional[Mapping[str, Any]] = None,
        write_concern: Optional[WriteConcern] = None,
    ) -> Any:
        """Insert/update/replace/delete across namespaces with MongoDB 8.0's ``bulkWrite``
        command (Motor: ``bulk_write``); returns a ``ClientBulkWriteResult``, raises
        ``ClientBulkWriteException``. Each model needs ``namespace="db.coll"``."""
        async with self._executor.trace_operation("bulkWrite", "admin", None, session):
            return await client_bulk_write(
                self, self._executor, models, session=session, ordered=ordered, verbose_results=verbose_results,
                bypass_document_validation=bypass_document_validation, comment=comment, let=let,
                write_concern=write_concern,
            )

    async def drop_database(
        self, name_or_database: Any, session: Optional[ClientSession] = None, comment: Any = None
    ) -> None:
        """Drop a database (Motor: ``drop_database``)."""
        name = name_or_database
        if isinstance(name, Database):
            name = name.name
        if not isinstance(name, str):
            raise TypeError("name_or_database must be an instance of str or a Database")
        await self._run_write_command(validate_database_name(name), {"dropDatabase": 1}, session, comment=comment)

    async def start_session(
        self,
        causal_consistency: Optional[bool] = None,
        default_transaction_options: Any = None,
        snapshot: Optional[bool] = False,
    ) -> ClientSession:
        """Start a logical session; ``async with await client.start_session() as s`` (Motor:
        ``start_session``, a coroutine)."""
        return self._start_session(causal_consistency, default_transaction_options, snapshot)

    def _start_session(self, causal_consistency: Optional[bool], default_transaction_options: Any,
                       snapshot: Optional[bool]) -> ClientSession:
        if self._closed:
            raise InvalidOperation("Cannot use MongoClient after close")
        opts = SessionOptions(causal_consistency, default_transaction_options, snapshot)
        return self._core.explicit_session(opts, self._session_class)

    @property
    def retry_reads(self) -> bool:
        """Whether supported reads are retried once (Motor: ``retry_reads``)."""
        return self._retry_reads

    @property
    def retry_writes(self) -> bool:
        """Whether supported writes are retried once (Motor: ``retry_writes``)."""
        return self._retry_writes

    def wrap(self, obj: Any) -> Any:
        """Motor wraps PyMongo objects in Motor classes; amongo's objects are already the
        Motor-facing ones, so this returns *obj* unchanged (Motor: ``wrap``)."""
        return obj

    async def fsync(self, **kwargs: Any) -> Dict[str, Any]:
        """DEPRECATED: flush pending writes to disk (Motor 2: ``fsync``); run
        ``await client.admin.command("fsync", ...)`` instead. ``session=`` is accepted."""
        import warnings

        warnings.warn("fsync is deprecated. Use client.admin.command('fsync') instead.",
                      DeprecationWarning, stacklevel=2)
        session = kwargs.pop("session", None)
        return await self.admin.command("fsync", read_preference=ReadPreference.PRIMARY, session=session, **kwargs)

    async def unlock(self, session: Optional[ClientSession] = None) -> None:
        """DEPRECATED: unlock a server locked by ``fsync(lock=True)`` (Motor 2: ``unlock``); run
        ``await client.admin.command("fsyncUnlock")`` instead."""
        import warnings

        warnings.warn("unlock is deprecated. Use client.admin.command('fsyncUnlock') instead.",
                      DeprecationWarning, stacklevel=2)
        await self.admin.command("fsyncUnlock", read_preference=ReadPreference.PRIMARY, session=session)

    def watch(self, pipeline: Any = None, full_document: Any = None, resume_after: Any = None,
              max_await_time_ms: Any = None, batch_size: Any = None, collation: Any = None,
              start_at_operation_time: Any = None, session: Any = None, start_after: Any = None,
              comment: Any = None, full_document_before_change: Any = None,
              show_expanded_events: Any = None) -> "ChangeStream[_DocumentType]":
        """A change stream on the whole deployment (Motor: ``watch``; returned without
        awaiting)."""
        return self._change_stream_class(
            self, pipeline, full_document, resume_after, max_await_time_ms, batch_size, collation,
            start_at_operation_time, session, start_after, comment, full_document_before_change,
            show_expanded_events, aggregate_on=self["admin"]["$cmd.aggregate"], aggregate_target=1, all_dbs=True,
        )

    # -- topology properties (from the seed's MotorClient page) ------------------------------
    # As in Motor (which proxies PyMongo 4's synchronous client): ``address``, ``is_primary``
    # and ``is_mongos`` select a writable server, and wait for one; ``primary``,
    # ``secondaries``, ``arbiters`` and ``nodes`` report the current description without
    # waiting (None / empty until discovered).  A property cannot await, so the waiting ones
    # answer from the current description when it already knows a writable server (after
    # any operation, or once the monitors have run) and otherwise run a *blocking* discovery
    # (Topology.select_server_sync), which, like Motor's, blocks the event loop for up to
    # serverSelectionTimeoutMS.
    def _writable_description(self) -> Any:
        for sd in self._topology.description.servers.values():
            if sd.is_writable:
                return sd
        return None

    def _select_writable_sync(self) -> ServerDescription:
        """The description of a writable server, waiting (blocking) for one (PyMongo's
        ``_server_property``)."""
        return self._topology.select_server_sync(None).description

    async def _select_writable(self) -> ServerDescription:
        """The description of a writable server, awaiting one (the PyMongo-style API's
        awaitable ``address`` / ``is_primary`` / ``is_mongos``; PyMongo's async
        ``_server_property``)."""
        return (await self._topology.select_server(None)).description

    def _check_single_address(self) -> None:
        """``address`` has no answer when load balancing among several mongoses."""
        td = self._topology.description
        if td.topology_type == TopologyType.Sharded and len(td.servers) > 1:
            raise InvalidOperation(
                'Cannot use "address" property when load balancing among mongoses, use "nodes" instead.'
            )

    @property
    def address(self) -> Optional[Address]:
        """(host, port) of the current standalone, primary, mongos or load balancer (Motor:
        ``address``).

        If no such server is known yet this **blocks** (the event loop too, as Motor's does)
        until one is discovered, or raises :exc:`~pymongo.errors.ServerSelectionTimeoutError`
        after ``serverSelectionTimeoutMS``.  Run an operation first to avoid blocking.

        :raises InvalidOperation: when the client is load balancing among several mongoses
            (checked, as in PyMongo, against the description before waiting); use
            :attr:`nodes` instead."""
        self._check_single_address()
        return self._select_writable_sync().address

    @property
    def primary(self) -> Optional[Address]:
        """The replica set primary's address, or None if the client is not connected to a
        replica set, there is no primary, or it is not known yet (Motor: ``primary``; does
        not wait, as in Motor)."""
        topology = self._topology
        topology.open_nowait()
        td = topology.description
        if td.topology_type != TopologyType.ReplicaSetWithPrimary:
            return None
        for sd in td.servers.values():
            if sd.server_type == ServerType.RSPrimary:
                return sd.address
        return None

    @property
    def nodes(self) -> FrozenSet[Address]:
        """Addresses of the currently known servers; empty before discovery (Motor:
        ``nodes``; does not wait, as in Motor)."""
        return frozenset(sd.address for sd in self._topology.description.known_servers)

    def _replica_set_members(self, server_type: ServerType) -> Set[Address]:
        topology = self._topology
        topology.open_nowait()
        td = topology.description
        if td.topology_type not in (TopologyType.ReplicaSetWithPrimary, TopologyType.ReplicaSetNoPrimary):
            return set()
        return {sd.address for sd in td.servers.values() if sd.server_type == server_type}

    @property
    def secondaries(self) -> Set[Address]:
        """Addresses of the replica set's known secondaries; empty if not connected to a
        replica set or not known yet (Motor: ``secondaries``; does not wait)."""
        return self._replica_set_members(ServerType.RSSecondary)

    @property
    def arbiters(self) -> Set[Address]:
        """Addresses of the replica set's known arbiters; empty if not connected to a replica
        set or not known yet (Motor: ``arbiters``; does not wait)."""
        return self._replica_set_members(ServerType.RSArbiter)

    @property
    def is_primary(self) -> bool:
        """Whether the client is connected to a server that accepts writes (standalone,
        mongos, primary) (Motor: ``is_primary``).

        Like :attr:`address`, this **blocks** until a writable server is discovered, or
        raises :exc:`~pymongo.errors.ServerSelectionTimeoutError`."""
        return self._select_writable_sync().is_writable

    @property
    def is_mongos(self) -> bool:
        """Whether the client is connected to mongos (Motor: ``is_mongos``).

        Like :attr:`address`, this **blocks** until a writable server is discovered, or
        raises :exc:`~pymongo.errors.ServerSelectionTimeoutError`."""
        return self._select_writable_sync().server_type == ServerType.Mongos

    @property
    def max_bson_size(self) -> int:
        """The writable server's maxBsonObjectSize (16 MiB until known)."""
        sd = self._writable_description()
        return sd.max_bson_size if sd is not None else 16 * 1024 * 1024

    @property
    def max_message_size(self) -> int:
        """The writable server's maxMessageSizeBytes (48 MB until known)."""
        sd = self._writable_description()
        return sd.max_message_size if sd is not None else 48_000_000

    @property
    def max_write_batch_size(self) -> int:
        """The writable server's maxWriteBatchSize (100,000 until known)."""
        sd = self._writable_description()
        return sd.max_write_batch_size if sd is not None else 100_000


    # -- closing ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close all pools and stop monitoring (Motor: ``close``, synchronous).

        Pooled server sessions are ended with one unacknowledged ``endSessions`` written to an
        idle connection; idle connections are closed at once, in-use ones when checked in."""
        if self._closed:
            return
        self._closed = True
        topology = self._topology
        ids = self._core.session_pool.pop_all_ids()
        if ids:
            self._end_sessions_nowait(ids)
        topology.close_nowait()

    def __del__(self) -> None:
        """An unclosed client that started monitoring and is garbage-collected: warn
        (``ResourceWarning``, as PyMongo) and stop its monitors and close its sockets."""
        try:
            topology = self._topology
            if self._closed or not topology.opened or topology.closed:
                return
        except AttributeError:  # (a client whose __init__ failed)
            return
        self._closed = True
        try:
            warnings.warn(
                f"Unclosed {type(self).__name__} {self!r}: call close() to stop its monitors "
                "and close its connections",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        except Exception:  # noqa: BLE001 - (interpreter shutdown)
            pass
        topology.close_from_finalizer()

    def _end_sessions_nowait(self, ids: List[Any]) -> None:
        def send(conn: Any) -> None:
            if not conn.supports_sessions:
                return
            try:
                for i in range(0, len(ids), 10000):
                    conn.send_nowait("admin", {"endSessions": ids[i : i + 10000]})
            except Exception:
                pass

        for srv in list(self._topology.servers.values()):
            if srv.pool.use_idle_nowait(send):
                return

    def _admin(self) -> "Database[_DocumentType]":
        return self["admin"]

    # internal: kill a cursor whose owner was garbage-collected
    def _schedule_kill_cursor(self, address: Address, dbname: str, coll: str, cursor_id: int, session: Any) -> None:
        self._executor.schedule_kill_cursor(address, dbname, coll, cursor_id, session)

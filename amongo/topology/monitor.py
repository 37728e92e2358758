"""Server monitors (server-monitoring spec): one asyncio task per server, plus an RTT task
while the server is monitored with the streaming protocol.

A :class:`Monitor` owns one dedicated connection (never authenticated; ``connectTimeoutMS``
is both its connect and its socket timeout, as the spec requires) and loops:

1. check: the first check on a new connection is the handshake ``hello``; afterwards either
   a *polling* hello, or, when the server's hello carried a ``topologyVersion`` and the
   monitoring mode allows it, the *streaming* protocol: one awaitable
   ``{hello, topologyVersion, maxAwaitTimeMS}`` sent with ``exhaustAllowed`` and then reply
   after reply read with :meth:`Connection.read_more` while ``moreToCome`` is set;
2. hand the outcome to the owner through its :class:`MonitorCallbacks` (the topology's
   :meth:`Topology._on_check_success` / :meth:`Topology._on_check_failure`, which apply
   :func:`sdam.check_failure_decision`);
3. wait: ``heartbeatFrequencyMS``, or less when :meth:`Monitor.request_check` is called,
   never less than ``minHeartbeatFrequencyMS`` (500 ms) between two check starts.  A
   streaming monitor does not wait (the server paces the replies) and ignores
   ``request_check`` (the server pushes changes).

The RTT task (streaming only) has its own connection and sends a plain ``hello`` every
``heartbeatFrequencyMS``; its samples feed the moving average and the min-RTT window (last
10 samples) used for the descriptions built from streamed replies.

Heartbeat events (``ServerHeartbeatStarted/Succeeded/FailedEvent`` with ``awaited``) are
published for checks, not for RTT pings.  :meth:`Monitor.cancel_check` closes the
monitor's connection (the application saw a network error): the interrupted check is not
reported as a failure, and the next check starts at once when the server was known.

Everything runs on the event loop; :meth:`Monitor.close` cancels both tasks and closes
both connections.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Dict, List, NamedTuple, Optional

from pymongo import monitoring as _pm
from pymongo.errors import ConfigurationError, NetworkTimeout, OperationFailure, ProtocolError

from amongo import _logging
from amongo.connection import Connection, ConnectionOptions
from amongo.handshake import heartbeat_command, hello_failure, timeout_error
from amongo.monitoring import EventListeners
from amongo.topology.description import (
    Address,
    ServerDescription,
    ServerType,
    moving_average_rtt,
)
from amongo.topology.sdam import min_round_trip_time

__all__ = [
    "Monitor",
    "MonitorCallbacks",
    "HelloReply",
    "monitor_connection_options",
    "streaming_enabled",
]

# PyMongo's event class is typed for its ``Hello`` object; amongo hands it a HelloReply,
# which offers the same ``document`` and ``server_type``.
_ServerHeartbeatSucceededEvent: Any = _pm.ServerHeartbeatSucceededEvent

#: minHeartbeatFrequencyMS (server-monitoring spec), seconds.
MIN_HEARTBEAT_FREQUENCY = 0.5
#: RTT samples kept for the min-RTT statistic.
RTT_SAMPLES = 10


class HelloReply(Dict[str, Any]):
    """The hello reply in a ``ServerHeartbeatSucceededEvent`` (a dict; ``.document`` is the
    reply too, as on PyMongo's ``Hello`` objects)."""

    @property
    def document(self) -> Dict[str, Any]:
        """The raw ``hello`` reply (PyMongo: ``Hello.document``)."""
        return self

    @property
    def server_type(self) -> ServerType:
        """The server type the reply describes (PyMongo: ``Hello.server_type``)."""
        try:
            return ServerDescription.from_hello(("", 0), self).server_type
        except ProtocolError:  # (never published: such a reply fails the check)
            return ServerType.Unknown


def monitor_connection_options(options: ConnectionOptions) -> ConnectionOptions:
    """A copy of *options* for monitoring connections: no credentials (monitors never
    authenticate), no compression, and ``connectTimeoutMS`` as the socket timeout."""
    copy = object.__new__(ConnectionOptions)
    for name in ConnectionOptions.__slots__:
        object.__setattr__(copy, name, getattr(options, name, None))
    copy.credential = None
    copy.compressors = []
    copy.socket_timeout = options.connect_timeout
    return copy


def streaming_enabled(mode: str) -> bool:
    """``serverMonitoringMode``: ``stream``, ``poll``, or ``auto`` (stream, except in a
    FaaS environment)."""
    mode = (mode or "auto").lower()
    if mode == "poll":
        return False
    if mode == "stream":
        return True
    return not any(
        os.environ.get(v)
        for v in ("AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API", "FUNCTIONS_WORKER_RUNTIME",
                  "K_SERVICE", "FUNCTION_NAME", "VERCEL")
    )


class MonitorCallbacks(NamedTuple):
    """What a :class:`Monitor` needs from its owner (the topology), handed in as values so
    the monitor never imports :mod:`amongo.topology.topology`.

    :param describe: the current description of a server, ``describe(address)``.
    :param on_success: apply a successful check's new description.
    :param on_failure: apply a failed check, ``on_failure(address, previous, error,
        is_network, is_timeout)``; returns whether to check again at once.
    :param log_heartbeat: write a heartbeat log message, ``log_heartbeat(address, message,
        awaited, connection, **fields)`` (the owner knows the client and topology ids).
    """

    describe: Callable[[Address], ServerDescription]
    on_success: Callable[[ServerDescription], None]
    on_failure: Callable[[Address, ServerDescription, BaseException, bool, bool], bool]
    log_heartbeat: Callable[..., None]


class _CheckCancelled(Exception):
    pass


class _RttStats:
    __slots__ = ("average", "samples")

    def __init__(self) -> None:
        self.average: Optional[float] = None
        self.samples: Deque[float] = deque(maxlen=RTT_SAMPLES)

    def add(self, sample: float) -> None:
        self.average = moving_average_rtt(self.average, sample)
        self.samples.append(sample)

    def reset(self) -> None:
        self.average = None
        self.samples.clear()

    @property
    def minimum(self) -> float:
        return min_round_trip_time(list(self.samples))


class Monitor:
    """Monitors one server for a :class:`~amongo.topology.topology.Topology` (internal).

    :param address: the server.
    :param callbacks: the owner's description lookup and outcome handlers.
    :param connection_options: options for the monitoring connections (see
        :func:`monitor_connection_options`).
    :param heartbeat_frequency: ``heartbeatFrequencyMS``, seconds.
    :param min_heartbeat_frequency: ``minHeartbeatFrequencyMS``, seconds.
    :param server_monitoring_mode: ``stream``, ``poll`` or ``auto``.
    :param listeners: the client's event listeners (heartbeat events).
    """

    __slots__ = (
        "address",
        "_callbacks",
        "_heartbeat",
        "_min_heartbeat",
        "_opts",
        "_stream_allowed",
        "_listeners",
        "_conn",
        "_rtt_conn",
        "_task",
        "_rtt_task",
        "_wakeup",
        "_requested",
        "_cancelled",
        "_closed",
        "_streaming",
        "_hello_ok",
        "_rtt",
        "_last_start",
        "_topology_version",
    )

    def __init__(
        self,
        address: Address,
        callbacks: MonitorCallbacks,
        connection_options: ConnectionOptions,
        *,
        heartbeat_frequency: float,
        min_heartbeat_frequency: float,
        server_monitoring_mode: str,
        listeners: EventListeners,
    ) -> None:
        self.address = address
        self._callbacks = callbacks
        self._heartbeat: float = heartbeat_frequency
        self._min_heartbeat: float = min(min_heartbeat_frequency, self._heartbeat)
        self._opts = connection_options
        self._stream_allowed = streaming_enabled(server_monitoring_mode)
        self._listeners = listeners
        self._conn: Optional[Connection] = None
        self._rtt_conn: Optional[Connection] = None
        self._task: Optional[asyncio.Task[Any]] = None
        self._rtt_task: Optional[asyncio.Task[Any]] = None
        self._wakeup: Optional[asyncio.Event] = None
        self._requested = False
        self._cancelled = False
        self._closed = False
        self._streaming = False
        self._hello_ok = False
        self._rtt = _RttStats()
        self._last_start = -1e18
        self._topology_version: Optional[Dict[str, Any]] = None

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the monitor task (idempotent)."""
        if self._task is None and not self._closed:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def streaming(self) -> bool:
        """True while the streaming protocol is in use."""
        return self._streaming

    def request_check(self) -> None:
        """Ask for a check as soon as ``minHeartbeatFrequencyMS`` allows (no-op while
        streaming: the server pushes changes)."""
        if self._streaming or self._closed:
            return
        self._requested = True
        if self._wakeup is not None:
            self._wakeup.set()

    def cancel_check(self) -> None:
        """Interrupt the in-progress check by closing the monitor's connection (after an
        application network error marked the server Unknown)."""
        conn = self._conn
        if conn is not None:
            self._cancelled = True
            self._conn = None
            conn.close("monitor check cancelled")
        self._streaming = False

    def close_nowait(self) -> List["asyncio.Task[Any]"]:
        """Stop monitoring: cancel the tasks, close the connections; returns the tasks."""
        self._closed = True
        tasks = [t for t in (self._task, self._rtt_task) if t is not None and not t.done()]
        for t in tasks:
            t.cancel()
        for conn in (self._conn, self._rtt_conn):
            if conn is not None:
                conn.close("monitor closed")
        self._conn = self._rtt_conn = None
        return tasks

    async def close(self) -> None:
        """Stop monitoring and close the monitoring connection."""
        tasks = self.close_nowait()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while not self._closed:
                try:
                    again = await self._check_and_apply()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the monitor must outlive anything
                    # (applying the outcome failed even as a failed check: start afresh)
                    self._close_conn()
                    again = False
                if self._closed:
                    return
                if not again:
                    await self._wait()
        except asyncio.CancelledError:
            pass
        finally:
            self._close_conn()

    async def _check_and_apply(self) -> bool:
        """One check and its outcome handed to the topology; returns whether to check
        again at once. Any exception while checking *or while applying a successful
        check* (a hello SDAM cannot process) is a failed check: the server is marked
        Unknown with that error and the monitor goes on."""
        callbacks = self._callbacks
        previous = callbacks.describe(self.address)
        try:
            sd = await self._check()
            if self._closed:
                return False
            callbacks.on_success(sd)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is a failed check
            if self._closed:
                return False
            self._close_conn()
            if self._cancelled:
                self._cancelled = False
                return previous.is_server_type_known
            self._rtt.reset()
            is_timeout = isinstance(exc, (NetworkTimeout, asyncio.TimeoutError))
            is_network = not isinstance(exc, (OperationFailure, ConfigurationError))
            return callbacks.on_failure(self.address, previous, exc, is_network, is_timeout)
        if self._streaming:
            self._ensure_rtt_task()
            return True
        return False

    async def _wait(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        loop = asyncio.get_running_loop()
        deadline = self._last_start + self._heartbeat
        while not self._closed:
            now = loop.time()
            if self._requested:
                earliest = self._last_start + self._min_heartbeat
                if now < earliest:
                    await asyncio.sleep(earliest - now)
                break
            if now >= deadline:
                break
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), deadline - now)
            except asyncio.TimeoutError:
                break
        self._requested = False

    def _close_conn(self) -> None:
        conn = self._conn
        self._conn = None
        self._streaming = False
        if conn is not None:
            conn.close("monitor error")

    def _hello_command(self) -> Dict[str, Any]:
        return heartbeat_command(self._hello_ok, self._opts.server_api)

    def _publish(self, method: str, event: Any) -> None:
        listeners = self._listeners
        if listeners.enabled_for_server_heartbeat:
            listeners.publish(listeners.heartbeat, method, event)

    def _log(self, message: str, awaited: bool, conn: Any, **fields: Any) -> None:
        self._callbacks.log_heartbeat(self.address, message, awaited, conn, **fields)

    async def _check(self) -> ServerDescription:
        """One check; returns the new description or raises."""
        loop = asyncio.get_running_loop()
        self._last_start = loop.time()
        conn = self._conn
        awaited = conn is not None and self._streaming
        self._publish("started", _pm.ServerHeartbeatStartedEvent(self.address, awaited))
        log = _logging.TOPOLOGY_LOGGER.isEnabledFor(_logging.DEBUG)
        if log and conn is not None:
            self._log("Server heartbeat started", awaited, conn)
        start = time.monotonic()
        try:
            if conn is None:
                self._streaming = False
                conn = await Connection.open(self.address, self._opts, 0, 0, handshake=False)
                self._conn = conn
                if log:  # (once the connection exists, so the message can name it)
                    self._log("Server heartbeat started", awaited, conn)
                cmd = conn.handshake_command()
                reply = await conn.command("admin", cmd, check=False, compress=False)
                rtt = time.monotonic() - start
                conn.server_connection_id = reply.get("connectionId")
                self._hello_ok = bool(reply.get("helloOk"))
                self._rtt.add(rtt)
            elif self._streaming:
                # connectTimeoutMS + heartbeatFrequencyMS; connectTimeoutMS=0 means no timeout
                # at all (SDAM unified connectTimeoutMS.json), as in PyMongo.
                ct = self._opts.connect_timeout
                timeout = ct + self._heartbeat if ct else None
                coro: Awaitable[Dict[str, Any]]
                if conn.pending_reply:
                    coro = conn.read_more()
                else:
                    cmd = self._hello_command()
                    cmd["topologyVersion"] = self._topology_version
                    cmd["maxAwaitTimeMS"] = int(self._heartbeat * 1000)
                    coro = conn.command(
                        "admin", cmd, check=False, compress=False, exhaust_allowed=True, timeout=timeout
                    )
                try:
                    reply = await (asyncio.wait_for(coro, timeout) if timeout else coro)
                except asyncio.TimeoutError:
                    raise timeout_error(self.address) from None
            else:
                reply = await conn.command("admin", self._hello_command(), check=False, compress=False)
                self._rtt.add(time.monotonic() - start)
            duration = time.monotonic() - start
            failure = hello_failure(reply)
            if failure is not None:
                raise failure
            # Built here, so that a reply SDAM cannot read (a field of the wrong type: a
            # ProtocolError) is a failed check like any other.
            sd = ServerDescription.from_hello(
                self.address,
                reply,
                self._rtt.average if self._rtt.average is not None else duration,
                min_round_trip_time=self._rtt.minimum,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._cancelled:
                raise _CheckCancelled() from exc
            failed_after = time.monotonic() - start
            self._publish(
                "failed", _pm.ServerHeartbeatFailedEvent(failed_after, exc, self.address, awaited)
            )
            if log:
                self._log("Server heartbeat failed", awaited, conn, durationMS=failed_after * 1000.0,
                          failure=repr(exc))
            raise
        self._publish(
            "succeeded",
            _ServerHeartbeatSucceededEvent(duration, HelloReply(reply), self.address, awaited),
        )
        if log:
            self._log("Server heartbeat succeeded", awaited, conn, durationMS=duration * 1000.0,
                      reply=_logging.document_json(reply))
        tv = sd.topology_version
        self._topology_version = dict(tv) if tv is not None else None
        self._streaming = bool(self._stream_allowed and tv is not None and not conn.closed)
        return sd

    # -- RTT task (streaming only) ---------------------------------------------------------
    def _ensure_rtt_task(self) -> None:
        if self._rtt_task is None and not self._closed:
            self._rtt_task = asyncio.get_running_loop().create_task(self._rtt_loop())

    async def _rtt_loop(self) -> None:
        try:
            while not self._closed:
                conn = self._rtt_conn
                start = time.monotonic()
                try:
                    if conn is None:
                        conn = await Connection.open(self.address, self._opts, 0, 0, handshake=False)
                        self._rtt_conn = conn
                        cmd = conn.handshake_command()
                    else:
                        cmd = self._hello_command()
                    reply = await conn.command("admin", cmd, check=False, compress=False)
                    if reply.get("ok"):
                        self._rtt.add(time.monotonic() - start)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - reconnect on the next round
                    if conn is not None:
                        conn.close("rtt error")
                    self._rtt_conn = None
                await asyncio.sleep(self._heartbeat)
        except asyncio.CancelledError:
            pass
        finally:
            if self._rtt_conn is not None:
                self._rtt_conn.close("monitor closed")
                self._rtt_conn = None

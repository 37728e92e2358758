"""The socket side of a connection: an :class:`asyncio.BufferedProtocol` that cuts frames.

Why not :class:`asyncio.StreamReader`: a reply read through a StreamReader is copied twice
(each received chunk is appended to the reader's growing buffer, then ``readexactly`` copies
the frame out and shifts the buffer), and a 2.6 MB cursor batch paid ~3 ms for it — as much
as the whole driver's own overhead on a ``find`` of 10,000 documents. This protocol lets the
transport ``recv_into`` one reusable 64 KiB buffer (anonymous memory: only the pages replies
land on become resident); a frame that does not fit gets a buffer of its exact size, which
the rest of the frame is received into in place, so the body of a large reply is never copied
(see ``benchmarks/README.md`` for the before/after figures).

Frames are handed to the connection as ``(header, body)`` in arrival order; a reader that is
cancelled halfway leaves the protocol's state intact, so the next read (the pool's drain of
an unread reply) continues where the cancelled one stopped. Nothing here knows about
commands: :mod:`amongo.connection` decodes the frames with :mod:`amongo.wire`.
"""
from __future__ import annotations

import asyncio
import mmap
import struct
from collections import deque
from typing import Any, Deque, Optional, Tuple, Union

from pymongo.errors import ProtocolError

from amongo.wire.message import HEADER_SIZE, parse_header

Body = Union[bytes, bytearray]
Frame = Tuple[bytes, Body]

#: The reusable receive buffer. A frame up to this size is received with one ``recv_into``
#: (together with any that follow it) and copied out; larger frames get their own buffer.
BUFFER_SIZE = 64 * 1024
#: Stop reading from the socket while this many unread frames are queued (exhaust streams).
_MAX_QUEUED = 16
_LENGTH = struct.Struct("<i").unpack_from


def _receive_buffer() -> Union[bytearray, mmap.mmap]:
    """A :data:`BUFFER_SIZE` receive buffer of anonymous memory: only the pages replies land
    on become resident. (A ``bytearray`` is zero-filled when made, so all of it counted
    toward the process's RSS at once: 6.4 MB for a pool of 100 connections whose replies
    are a few KiB, against ~0.4 MB now.)"""
    try:
        return mmap.mmap(-1, BUFFER_SIZE)
    except (OSError, ValueError):  # pragma: no cover - no anonymous mappings here
        return bytearray(BUFFER_SIZE)


class ConnectionClosed(Exception):
    """The peer closed the connection (or the transport failed) before a whole frame arrived.

    :attr:`__cause__` holds the transport's error, if any.
    """


class FrameProtocol(asyncio.BufferedProtocol):
    """Receives length-prefixed MongoDB wire frames; also the write flow control.

    :param max_message_size: frames whose declared length is larger are a protocol error.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, max_message_size: int) -> None:
        self._loop = loop
        self.max_message_size = max_message_size
        self.transport: Any = None
        self._buf: Union[bytearray, mmap.mmap] = _receive_buffer()
        self._view = memoryview(self._buf)
        self._start = 0  # first unconsumed byte of _buf
        self._end = 0  # end of the received bytes in _buf
        self._big: Optional[bytearray] = None  # the body of a frame larger than the buffer
        self._big_view: Optional[memoryview] = None
        self._big_header = b""
        self._big_pos = 0
        self._frames: Deque[Frame] = deque()
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._error: Optional[BaseException] = None  # why no more frames will come
        self._closed = False
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: Optional["asyncio.Future[None]"] = None

    # -- transport callbacks --------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        """Keep the transport (:class:`asyncio.BaseProtocol` callback)."""
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        """The buffer the transport receives into: the fixed 64 KiB one, or the exact-size
        buffer of a large frame being received (:class:`asyncio.BufferedProtocol` callback).
        """
        if self._big_view is not None:
            return self._big_view[self._big_pos:]
        if self._end == BUFFER_SIZE:  # only when a partial frame sits at the end: compact
            self._compact()
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        """Cut whole frames out of the *nbytes* just received and hand them to the waiting
        reader (:class:`asyncio.BufferedProtocol` callback).
        """
        if self._error is not None:
            # After a bad frame nothing that follows can be trusted (a TLS transport hands over
            # what it already decrypted while closing): discard it.
            self._start = self._end = 0
            self._big = self._big_view = None
            return
        if self._big is not None:
            self._big_pos += nbytes
            if self._big_pos == len(self._big):
                self._deliver(self._big_header, self._big)
                self._big = self._big_view = None
            return
        if self._end == 0 and nbytes > HEADER_SIZE:
            # The common case, one whole reply received alone: hand it over directly.
            view = self._view
            length = _LENGTH(view, 0)[0]
            if length == nbytes and length <= self.max_message_size:
                frames = self._frames
                frames.append((bytes(view[:HEADER_SIZE]), bytes(view[HEADER_SIZE:nbytes])))
                waiter = self._waiter
                if waiter is not None:
                    self._waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
                if len(frames) >= _MAX_QUEUED and not self._read_paused and not self._closed:
                    self._read_paused = True
                    self.transport.pause_reading()
                return
        self._end += nbytes
        self._cut_frames()

    def eof_received(self) -> bool:
        """The peer closed its side: treated as a lost connection; returns False to close."""
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        """Fail the waiting reader with the error (:class:`asyncio.BaseProtocol` callback)."""
        self._closed = True
        # Nothing more will be received: free the receive buffers now rather than when the
        # cycle through the transport is collected (a connection churned by network errors
        # would otherwise hold 64 KiB until the next full garbage collection).
        self._buf = bytearray(0)
        self._view = memoryview(self._buf)
        self._big = self._big_view = None
        self._start = self._end = 0
        if self._error is None:
            err = ConnectionClosed("connection closed by the server" if exc is None else str(exc))
            err.__cause__ = exc
            self._error = err
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        """The transport's write buffer is full: senders wait (flow control)."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport's write buffer drained: waiting senders continue."""
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- framing --------------------------------------------------------------------------------
    def _compact(self) -> None:
        start, end = self._start, self._end
        if start:
            self._buf[: end - start] = bytes(self._view[start:end])  # (overlapping ranges)
            self._start, self._end = 0, end - start

    def _cut_frames(self) -> None:
        view = self._view
        start, end = self._start, self._end
        while end - start >= HEADER_SIZE:
            length = _LENGTH(view, start)[0]
            if length <= HEADER_SIZE or length > self.max_message_size:
                self._fail_frame(bytes(view[start:start + HEADER_SIZE]), length)
                return
            if end - start >= length:
                self._deliver(bytes(view[start:start + HEADER_SIZE]),
                              bytes(view[start + HEADER_SIZE:start + length]))
                start += length
                continue
            if length > BUFFER_SIZE:
                # Receive the rest of this frame straight into a buffer of its own.
                have = end - start - HEADER_SIZE
                body = bytearray(length - HEADER_SIZE)
                body[:have] = view[start + HEADER_SIZE:end]
                self._big_header = bytes(view[start:start + HEADER_SIZE])
                self._big, self._big_view, self._big_pos = body, memoryview(body), have
                start = end = 0
            elif start + length > BUFFER_SIZE:
                self._start = start
                self._compact()
                return
            break
        if start == end:
            start = end = 0
        self._start, self._end = start, end

    def _fail_frame(self, header: bytes, length: int) -> None:
        try:
            parse_header(header, self.max_message_size)
            raise ProtocolError(f"Bad message length {length}")
        except ProtocolError as exc:
            self._error = exc
        self._start = self._end = 0
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _deliver(self, header: bytes, body: Body) -> None:
        self._frames.append((header, body))
        if len(self._frames) >= _MAX_QUEUED and not self._read_paused and not self._closed:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the connection's side ------------------------------------------------------------------
    async def read_frame(self) -> Frame:
        """The next whole frame ``(header, body)``.

        :raises ConnectionClosed: the connection was closed or failed first.
        :raises ProtocolError: the peer sent a frame with an impossible length.
        """
        frames = self._frames
        while not frames:
            if self._error is not None:
                raise self._error
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        frame = frames.popleft()
        if self._read_paused and len(frames) <= _MAX_QUEUED // 2 and not self._closed:
            self._read_paused = False
            self.transport.resume_reading()
        return frame

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self._closed:
            raise ConnectionResetError("connection lost")
        if not self._write_paused:
            return
        waiter = self._drain_waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._drain_waiter = None

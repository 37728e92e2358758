"""FrameProtocol without sockets: the tests play the transport.

A transport drives a :class:`asyncio.BufferedProtocol` with ``get_buffer`` / ``recv_into`` /
``buffer_updated``; :func:`feed` does the same with chosen chunk sizes (never writing more than
the buffer handed out, as ``recv_into`` cannot), and :class:`FakeTransport` records the flow
control and ``close`` calls the protocol makes.
"""
from __future__ import annotations

import asyncio
import random
import struct
from typing import Iterable, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import ProtocolError

from amongo.protocol import _MAX_QUEUED, BUFFER_SIZE, ConnectionClosed, FrameProtocol

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = 48_000_000


class FakeTransport:
    def __init__(self) -> None:
        self.pauses = 0
        self.resumes = 0
        self.closes = 0

    def pause_reading(self) -> None:
        self.pauses += 1

    def resume_reading(self) -> None:
        self.resumes += 1

    def close(self) -> None:
        self.closes += 1

    def is_closing(self) -> bool:
        return self.closes > 0


def make_frame(body_len: int, rid: int = 0, seed: Optional[int] = None, op: int = 2013) -> bytes:
    rng = random.Random(rid if seed is None else seed)
    body = rng.randbytes(body_len)
    return struct.pack("<iiii", 16 + body_len, rid, rid ^ 0x5A5A, op) + body


def make_protocol(max_message_size: int = MAX) -> Tuple[FrameProtocol, FakeTransport]:
    p = FrameProtocol(asyncio.get_running_loop(), max_message_size)
    t = FakeTransport()
    p.connection_made(t)
    return p, t


def feed(
    p: FrameProtocol, data: bytes, chunks: Iterable[int] = (1 << 30,), would_block: bool = False
) -> List[memoryview]:
    """Deliver *data* the way a transport does: one ``get_buffer`` per receive, at most as many
    bytes as the buffer can take and as the next chunk size allows. Returns the buffers used.

    :param would_block: before each receive, also a ``get_buffer`` whose ``recv_into`` found
        nothing (BlockingIOError, or an SSL read that needs more data): no ``buffer_updated``.
    """
    used = []
    pos = 0
    sizes = list(chunks)
    i = 0
    while pos < len(data):
        want = sizes[i % len(sizes)]
        i += 1
        while want > 0 and pos < len(data):
            if would_block:
                p.get_buffer(256 * 1024)
            buf = p.get_buffer(-1)
            assert len(buf) > 0, "get_buffer returned an empty buffer: a real transport would read EOF"
            k = min(len(buf), want, len(data) - pos)
            buf[:k] = data[pos : pos + k]
            p.buffer_updated(k)
            used.append(buf)
            pos += k
            want -= k
    return used


async def next_frame(p: FrameProtocol, timeout: float = 2.0):
    return await asyncio.wait_for(p.read_frame(), timeout)


async def expect_frames(p: FrameProtocol, frames: Sequence[bytes]) -> None:
    for f in frames:
        header, body = await next_frame(p)
        assert header == f[:16]
        assert bytes(body) == f[16:]
        assert len(body) == len(f) - 16


async def nothing_ready(p: FrameProtocol) -> bool:
    """True if no frame is ready (a frame that is ready is consumed: use at the end)."""
    task = asyncio.ensure_future(p.read_frame())
    for _ in range(3):
        await asyncio.sleep(0)
    done = task.done()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return not done


# -- whole frames --------------------------------------------------------------------------------
async def test_one_frame_in_one_chunk() -> None:
    p, t = make_protocol()
    f = make_frame(100, rid=7)
    feed(p, f)
    header, body = await next_frame(p)
    assert header == f[:16] and bytes(body) == f[16:]
    assert struct.unpack("<iiii", header) == (116, 7, 7 ^ 0x5A5A, 2013)
    assert await nothing_ready(p)
    assert t.closes == 0 and t.pauses == 0
    # nothing pending: the whole buffer is offered again, so a 64 KiB frame takes one receive
    assert len(p.get_buffer(-1)) == BUFFER_SIZE
    full = make_frame(BUFFER_SIZE - 16, rid=8)
    assert len(feed(p, full)) == 1
    await expect_frames(p, [full])


async def test_minimum_and_maximum_lengths_are_accepted() -> None:
    p, t = make_protocol(max_message_size=1000)
    frames = [make_frame(1, rid=1), make_frame(1000 - 16, rid=2)]
    feed(p, b"".join(frames))
    await expect_frames(p, frames)
    assert t.closes == 0


async def test_several_frames_in_one_chunk() -> None:
    p, t = make_protocol()
    frames = [make_frame(n, rid=i) for i, n in enumerate([1, 5, 300, 17, 4000, 2])]
    used = feed(p, b"".join(frames))
    assert len(used) == 1  # really one receive
    await expect_frames(p, frames)
    assert await nothing_ready(p)


async def test_reader_waiting_before_the_data_arrives() -> None:
    p, _ = make_protocol()
    task = asyncio.ensure_future(p.read_frame())
    await asyncio.sleep(0)
    assert not task.done()
    f = make_frame(50, rid=3)
    feed(p, f[:10])
    await asyncio.sleep(0)
    assert not task.done()
    feed(p, f[10:])
    header, body = await asyncio.wait_for(task, 2)
    assert header + bytes(body) == f


# -- splits ------------------------------------------------------------------------------------------
async def test_frames_split_at_every_byte_position() -> None:
    frames = [make_frame(n, rid=i) for i, n in enumerate([1, 40, 3, 120])]
    data = b"".join(frames)
    for cut in range(1, len(data)):
        p, _ = make_protocol()
        feed(p, data[:cut])
        feed(p, data[cut:])
        await expect_frames(p, frames)
        assert await nothing_ready(p)


async def test_frames_split_at_every_pair_of_positions() -> None:
    frames = [make_frame(n, rid=i) for i, n in enumerate([2, 20])]
    data = b"".join(frames)
    for a in range(1, len(data)):
        for b in range(a + 1, len(data)):
            p, _ = make_protocol()
            feed(p, data[:a])
            feed(p, data[a:b])
            feed(p, data[b:])
            await expect_frames(p, frames)


async def test_frames_one_byte_at_a_time() -> None:
    frames = [make_frame(n, rid=i) for i, n in enumerate([1, 64, 2, 500, 33])]
    p, _ = make_protocol()
    used = feed(p, b"".join(frames), chunks=[1])
    assert len(used) == sum(map(len, frames))
    await expect_frames(p, frames)


async def test_big_frame_split_in_header_and_around_the_buffer_size() -> None:
    big = make_frame(BUFFER_SIZE + 5000, rid=9)
    small = make_frame(10, rid=10)
    data = small + big + small
    cuts = list(range(1, 60)) + [BUFFER_SIZE + d for d in range(-20, 40)] + [len(data) - d for d in range(1, 60)]
    for cut in cuts:
        p, _ = make_protocol()
        feed(p, data[:cut])
        feed(p, data[cut:])
        await expect_frames(p, [small, big, small])


@st.composite
def frame_sequences(draw):
    sizes = draw(
        st.lists(
            st.one_of(
                st.integers(1, 64),
                st.integers(65, 5000),
                st.integers(BUFFER_SIZE - 100, BUFFER_SIZE + 100),
                st.integers(BUFFER_SIZE + 100, 3 * BUFFER_SIZE),
            ),
            min_size=1,
            max_size=8,
        )
    )
    seed = draw(st.integers(0, 2**32))
    return [make_frame(n, rid=i, seed=seed + i) for i, n in enumerate(sizes)]


@SETTINGS
@given(
    frames=frame_sequences(),
    cuts=st.lists(st.integers(0, 2**22), max_size=40),
    interleave=st.booleans(),
    would_block=st.booleans(),
)
def test_random_chunkings_of_random_frame_sequences(
    frames: List[bytes], cuts: List[int], interleave: bool, would_block: bool
) -> None:
    data = b"".join(frames)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    pieces = [data[a:b] for a, b in zip(points, points[1:])]

    async def run() -> None:
        p, t = make_protocol()
        got: List[Tuple[bytes, object]] = []

        async def reader() -> None:
            for _ in frames:
                got.append(await p.read_frame())

        task = asyncio.ensure_future(reader())
        for piece in pieces:
            feed(p, piece, would_block=would_block)
            if interleave:
                await asyncio.sleep(0)
        await asyncio.wait_for(task, 5)
        assert [h + bytes(b) for h, b in got] == frames
        for f, (_h, body) in zip(frames, got):
            if len(f) > BUFFER_SIZE:  # received in place, into a buffer of its own
                assert type(body) is bytearray and len(body) == len(f) - 16
        assert t.closes == 0
        assert await nothing_ready(p)
        # the protocol is back in a clean state: another frame goes through
        tail = make_frame(30, rid=99)
        feed(p, tail)
        await expect_frames(p, [tail])

    asyncio.run(run())


# -- large frames ----------------------------------------------------------------------------------
async def test_frame_larger_than_the_buffer_is_received_in_place() -> None:
    p, _ = make_protocol()
    f = make_frame(5 * BUFFER_SIZE + 123, rid=4)
    used = feed(p, f)
    header, body = await next_frame(p)
    assert header == f[:16]
    assert type(body) is bytearray
    assert len(body) == len(f) - 16
    assert body == f[16:]
    # everything after the first receive went straight into the body object
    assert len(used) > 1
    assert all(buf.obj is body for buf in used[1:])
    assert sum(map(len, used[1:])) == len(f) - BUFFER_SIZE  # no buffer offered past the frame


async def test_big_frame_header_alone_then_body() -> None:
    p, _ = make_protocol()
    f = make_frame(BUFFER_SIZE * 2, rid=5)
    used = feed(p, f, chunks=[16, 1, 1000, 1 << 30])
    header, body = await next_frame(p)
    assert header == f[:16] and body == f[16:] and type(body) is bytearray
    assert used[-1].obj is body


async def test_big_frame_then_small_frames_in_later_chunks() -> None:
    p, _ = make_protocol()
    big = make_frame(3 * BUFFER_SIZE, rid=1)
    smalls = [make_frame(n, rid=2 + i) for i, n in enumerate([1, 100, 2000])]
    # the big frame and the small ones in one "send": the buffers handed out for the big frame
    # must stop exactly at its end, so the small frames come in the later receives
    used = feed(p, big + b"".join(smalls))
    header, body = await next_frame(p)
    assert header == big[:16] and body == big[16:]
    into_body = [b for b in used if b.obj is body]
    assert sum(map(len, into_body)) == len(big) - BUFFER_SIZE
    after = used[used.index(into_body[-1]) + 1 :]
    assert after and all(b.obj is not body for b in after)
    await expect_frames(p, smalls)
    assert await nothing_ready(p)


async def test_two_big_frames_back_to_back() -> None:
    p, _ = make_protocol()
    frames = [make_frame(BUFFER_SIZE + 1, rid=1), make_frame(2 * BUFFER_SIZE - 7, rid=2), make_frame(BUFFER_SIZE - 16, rid=3)]
    feed(p, b"".join(frames), chunks=[7000])
    got = [await next_frame(p) for _ in frames]
    assert [h + bytes(b) for h, b in got] == frames
    assert got[0][1] is not got[1][1]
    assert type(got[0][1]) is bytearray and type(got[1][1]) is bytearray


async def test_big_frame_bodies_are_not_reused() -> None:
    # The connection may decode a big body in place (a memoryview): a later frame must not
    # overwrite it.
    p, _ = make_protocol()
    a = make_frame(BUFFER_SIZE * 2, rid=1)
    b = make_frame(BUFFER_SIZE * 2, rid=2)
    feed(p, a)
    _, body_a = await next_frame(p)
    feed(p, b)
    _, body_b = await next_frame(p)
    assert body_a == a[16:] and body_b == b[16:]


# -- compaction --------------------------------------------------------------------------------------
@pytest.mark.parametrize("tail", [1, 5, 15, 16, 17, 100, 999])
async def test_partial_frame_at_the_end_of_the_full_buffer(tail: int) -> None:
    p, _ = make_protocol()
    nxt = make_frame(1000 - 16, rid=2)
    first = make_frame(BUFFER_SIZE - tail - 16, rid=1)
    chunk = first + nxt[:tail]
    assert len(chunk) == BUFFER_SIZE
    used = feed(p, chunk)
    assert len(used) == 1
    await expect_frames(p, [first])
    # compaction: the rest of the partial frame fits in the next buffer
    buf = p.get_buffer(-1)
    assert len(buf) >= len(nxt) - tail
    feed(p, nxt[tail:])
    await expect_frames(p, [nxt])
    after = make_frame(BUFFER_SIZE - 16, rid=3)  # a full-buffer frame still fits afterwards
    feed(p, after)
    await expect_frames(p, [after])


async def test_partial_frame_that_would_run_past_the_buffer_end() -> None:
    p, _ = make_protocol()
    first = make_frame(60000 - 16, rid=1)
    nxt = make_frame(20000 - 16, rid=2)  # 60000 + 20000 > 64 KiB
    feed(p, first + nxt[:100])
    await expect_frames(p, [first])
    buf = p.get_buffer(-1)
    assert len(buf) >= len(nxt) - 100  # moved to the front, room for the rest
    feed(p, nxt[100:], chunks=[len(nxt) - 100])
    await expect_frames(p, [nxt])


async def test_partial_big_frame_header_at_the_buffer_end() -> None:
    p, _ = make_protocol()
    first = make_frame(BUFFER_SIZE - 10 - 16, rid=1)
    big = make_frame(BUFFER_SIZE * 3, rid=2)
    feed(p, first + big[:10])
    feed(p, big[10:], chunks=[3, 1 << 30])
    await expect_frames(p, [first, big])


async def test_steady_stream_of_frames_wraps_the_buffer_many_times() -> None:
    p, _ = make_protocol()
    rng = random.Random(1)
    frames = [make_frame(rng.randint(1, 9000), rid=i) for i in range(200)]
    data = b"".join(frames)
    got: list = []

    async def reader() -> None:
        while len(got) < len(frames):
            got.append(await p.read_frame())

    task = asyncio.ensure_future(reader())
    for i in range(0, len(data), 7777):
        feed(p, data[i : i + 7777])
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 5)
    assert [h + bytes(b) for h, b in got] == frames


# -- bad lengths -------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [0, 1, 15, 16, -1, -(2**31), 1001, 2**31 - 1])
async def test_bad_declared_length_is_a_protocol_error(length: int) -> None:
    p, t = make_protocol(max_message_size=1000)
    good = make_frame(20, rid=1)
    bad = struct.pack("<iiii", length, 2, 0, 2013) + b"x" * 20
    feed(p, good + bad)
    await expect_frames(p, [good])  # frames before the bad one are still returned
    with pytest.raises(ProtocolError):
        await next_frame(p)
    assert t.closes >= 1
    # the transport's connection_lost that follows does not hide the protocol error
    p.connection_lost(None)
    with pytest.raises(ProtocolError):
        await next_frame(p)


class FlushingTransport(FakeTransport):
    """Like asyncio's SSL transport: ``close()`` flushes the already-decrypted data to the
    protocol first (``SSLProtocol._start_shutdown`` -> ``_do_flush`` -> ``_do_read`` calls
    ``get_buffer``/``buffer_updated`` again, re-entrantly, from inside ``buffer_updated``)."""

    def __init__(self) -> None:
        super().__init__()
        self.protocol: Optional[FrameProtocol] = None
        self.pending = b""

    def close(self) -> None:
        super().close()
        if self.closes == 1 and self.pending and self.protocol is not None:
            data, self.pending = self.pending, b""
            feed(self.protocol, data)


@pytest.mark.parametrize("after", ["frames", "garbage"])
async def test_data_after_a_bad_length_is_not_parsed(after: str) -> None:
    # The bytes after an impossible length are not frames: the stream is out of step. Frames
    # cut from them must not be returned (the reader must get the ProtocolError), even when the
    # transport hands over more data while it is being closed (asyncio's SSL transport does).
    p = FrameProtocol(asyncio.get_running_loop(), 1000)
    t = FlushingTransport()
    t.protocol = p
    p.connection_made(t)
    good = make_frame(20, rid=1)
    bad = struct.pack("<iiii", 5000, 2, 0, 2013)
    if after == "frames":
        t.pending = make_frame(30, rid=3) + make_frame(40, rid=4)
    else:
        t.pending = struct.pack("<i", 100) + bytes(range(96))  # looks like a 100-byte frame
    feed(p, good + bad)
    assert t.closes >= 1 and t.pending == b""  # the flush happened
    await expect_frames(p, [good])
    with pytest.raises(ProtocolError):
        await next_frame(p)


async def test_bad_length_wakes_a_waiting_reader() -> None:
    p, t = make_protocol(max_message_size=1000)
    task = asyncio.ensure_future(p.read_frame())
    await asyncio.sleep(0)
    feed(p, struct.pack("<iiii", 5000, 2, 0, 2013))
    with pytest.raises(ProtocolError):
        await asyncio.wait_for(task, 2)
    assert t.closes >= 1


async def test_bad_length_split_across_chunks() -> None:
    p, t = make_protocol(max_message_size=1000)
    header = struct.pack("<iiii", 10, 2, 0, 2013)
    feed(p, header, chunks=[1])
    with pytest.raises(ProtocolError):
        await next_frame(p)
    assert t.closes >= 1


async def test_max_message_size_can_be_raised_after_creation() -> None:
    # Connection.set_hello raises the limit once the server's hello is known.
    p, t = make_protocol(max_message_size=1000)
    p.max_message_size = 5000
    f = make_frame(3000, rid=1)
    feed(p, f)
    await expect_frames(p, [f])
    assert t.closes == 0


# -- connection lost ---------------------------------------------------------------------------------
async def test_connection_lost_clean_with_no_frame() -> None:
    p, _ = make_protocol()
    p.connection_lost(None)
    with pytest.raises(ConnectionClosed) as info:
        await next_frame(p)
    assert info.value.__cause__ is None
    with pytest.raises(ConnectionClosed):  # and again
        await next_frame(p)


async def test_connection_lost_with_error_with_no_frame() -> None:
    p, _ = make_protocol()
    err = ConnectionResetError(104, "Connection reset by peer")
    p.connection_lost(err)
    with pytest.raises(ConnectionClosed) as info:
        await next_frame(p)
    assert info.value.__cause__ is err


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("exc", [None, OSError(32, "Broken pipe")])
async def test_connection_lost_mid_frame(big: bool, exc: Optional[OSError]) -> None:
    p, _ = make_protocol()
    f = make_frame(3 * BUFFER_SIZE if big else 500, rid=1)
    feed(p, f[: len(f) // 2])
    p.connection_lost(exc)
    with pytest.raises(ConnectionClosed) as info:
        await next_frame(p)
    assert info.value.__cause__ is exc


async def test_connection_lost_mid_header() -> None:
    p, _ = make_protocol()
    feed(p, make_frame(100)[:7])
    err = OSError(110, "timed out")
    p.connection_lost(err)
    with pytest.raises(ConnectionClosed) as info:
        await next_frame(p)
    assert info.value.__cause__ is err


async def test_connection_lost_wakes_a_waiting_reader() -> None:
    p, _ = make_protocol()
    task = asyncio.ensure_future(p.read_frame())
    await asyncio.sleep(0)
    assert not task.done()
    err = OSError(104, "reset")
    p.connection_lost(err)
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(task, 2)
    assert info.value.__cause__ is err


async def test_frames_queued_before_connection_lost_come_first() -> None:
    p, _ = make_protocol()
    frames = [make_frame(10, rid=1), make_frame(BUFFER_SIZE + 10, rid=2), make_frame(20, rid=3)]
    feed(p, b"".join(frames) + make_frame(50, rid=4)[:30])
    p.connection_lost(OSError(104, "reset"))
    await expect_frames(p, frames)
    with pytest.raises(ConnectionClosed):
        await next_frame(p)


async def test_eof_received_lets_the_transport_close() -> None:
    p, _ = make_protocol()
    assert not p.eof_received()


# -- cancellation --------------------------------------------------------------------------------------
async def test_cancelled_reader_loses_nothing() -> None:
    p, _ = make_protocol()
    task = asyncio.ensure_future(p.read_frame())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    frames = [make_frame(10, rid=1), make_frame(20, rid=2)]
    feed(p, b"".join(frames))
    await expect_frames(p, frames)


@pytest.mark.parametrize("size", [300, 3 * BUFFER_SIZE])
async def test_reader_cancelled_mid_frame_next_reader_continues(size: int) -> None:
    p, _ = make_protocol()
    f = make_frame(size, rid=1)
    task = asyncio.ensure_future(p.read_frame())
    await asyncio.sleep(0)
    feed(p, f[: len(f) // 3])
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    feed(p, f[len(f) // 3 :])
    nxt = make_frame(40, rid=2)
    feed(p, nxt)
    await expect_frames(p, [f, nxt])


async def test_reader_cancelled_after_being_woken_loses_nothing() -> None:
    # The frame arrives (the waiter is resolved) but the reader is cancelled before it runs:
    # the frame must stay queued for the next reader.
    p, _ = make_protocol()
    task = asyncio.ensure_future(p.read_frame())
    await asyncio.sleep(0)
    f = make_frame(10, rid=1)
    feed(p, f)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await expect_frames(p, [f])


async def test_two_readers_in_turn_after_timeouts() -> None:
    p, _ = make_protocol()
    for _ in range(3):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(p.read_frame(), 0.01)
    f = make_frame(10, rid=1)
    feed(p, f)
    await expect_frames(p, [f])


# -- read flow control ---------------------------------------------------------------------------------
async def test_pause_reading_when_frames_pile_up_and_resume_after() -> None:
    assert _MAX_QUEUED == 16
    p, t = make_protocol()
    frames = [make_frame(8, rid=i) for i in range(20)]
    feed(p, b"".join(frames[:15]))
    assert t.pauses == 0
    feed(p, frames[15])
    assert t.pauses == 1  # 16 queued
    feed(p, b"".join(frames[16:]))  # the transport may still deliver what it had
    assert t.pauses == 1  # once, not per frame
    assert t.resumes == 0
    got = []
    while len(got) < 20 - 8 - 1:  # 9 left queued
        got.append(await next_frame(p))
        assert t.resumes == 0
    got.append(await next_frame(p))  # 8 left
    assert t.resumes == 1
    while len(got) < 20:
        got.append(await next_frame(p))
    assert t.resumes == 1 and t.pauses == 1
    assert [h + bytes(b) for h, b in got] == frames


async def test_pause_resume_cycles() -> None:
    p, t = make_protocol()
    frames = [make_frame(8, rid=i) for i in range(16)]
    for cycle in range(1, 4):
        feed(p, b"".join(frames))
        assert t.pauses == cycle
        await expect_frames(p, frames)
        assert t.resumes == cycle


async def test_big_frames_count_towards_the_queue_limit() -> None:
    p, t = make_protocol()
    frames = [make_frame(BUFFER_SIZE, rid=i) for i in range(16)]
    feed(p, b"".join(frames))
    assert t.pauses == 1
    await expect_frames(p, frames)
    assert t.resumes == 1


async def test_no_resume_reading_after_connection_lost() -> None:
    p, t = make_protocol()
    frames = [make_frame(8, rid=i) for i in range(16)]
    feed(p, b"".join(frames))
    assert t.pauses == 1
    p.connection_lost(None)
    await expect_frames(p, frames)  # still delivered
    assert t.resumes == 0  # the transport is gone
    with pytest.raises(ConnectionClosed):
        await next_frame(p)


# -- write flow control ----------------------------------------------------------------------------------
async def test_drain_returns_at_once_when_not_paused() -> None:
    p, _ = make_protocol()
    coro = p.drain()
    with pytest.raises(StopIteration):
        coro.send(None)  # completed without suspending


async def test_drain_waits_between_pause_and_resume_writing() -> None:
    p, _ = make_protocol()
    p.pause_writing()
    task = asyncio.ensure_future(p.drain())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    p.resume_writing()
    await asyncio.wait_for(task, 2)
    assert task.result() is None
    # and once resumed, drain does not wait
    coro = p.drain()
    with pytest.raises(StopIteration):
        coro.send(None)


async def test_drain_paused_again() -> None:
    p, _ = make_protocol()
    for _ in range(3):
        p.pause_writing()
        task = asyncio.ensure_future(p.drain())
        await asyncio.sleep(0)
        assert not task.done()
        p.resume_writing()
        await asyncio.wait_for(task, 2)


async def test_cancelled_drain_then_resume() -> None:
    p, _ = make_protocol()
    p.pause_writing()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(p.drain(), 0.01)
    task = asyncio.ensure_future(p.drain())
    await asyncio.sleep(0)
    assert not task.done()
    p.resume_writing()
    await asyncio.wait_for(task, 2)


async def test_drain_waiting_when_connection_lost_raises() -> None:
    p, _ = make_protocol()
    p.pause_writing()
    task = asyncio.ensure_future(p.drain())
    await asyncio.sleep(0)
    p.connection_lost(OSError(32, "Broken pipe"))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(task, 2)


@pytest.mark.parametrize("paused", [False, True])
async def test_drain_after_connection_lost_raises(paused: bool) -> None:
    p, _ = make_protocol()
    if paused:
        p.pause_writing()
    p.connection_lost(None)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(p.drain(), 2)


def test_receive_buffer_is_anonymous_memory_of_buffer_size() -> None:
    """The reusable receive buffer is an anonymous mapping (its pages become resident only
    when a reply lands on them), writable in place, and released when the connection is lost."""
    import mmap

    from amongo.protocol import _receive_buffer

    buf = _receive_buffer()
    assert isinstance(buf, mmap.mmap) and len(buf) == BUFFER_SIZE
    view = memoryview(buf)
    view[BUFFER_SIZE - 3:] = b"abc"
    assert bytes(view[-3:]) == b"abc" and bytes(view[:4]) == b"\0\0\0\0"
    view.release()


async def test_receive_buffer_released_on_connection_lost() -> None:
    p, t = make_protocol()
    assert len(p.get_buffer(-1)) == BUFFER_SIZE
    p.connection_lost(None)
    assert len(p._buf) == 0

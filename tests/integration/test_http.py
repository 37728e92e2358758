"""amongo._http, the asyncio HTTP/1.1 client behind the cloud credential fetches, against local
servers: body framings, timeouts, size limits, and errors that never echo queries or bodies."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import pytest

from amongo import _http
from tests.auth_fakes import FakeHTTP


class raw_server:
    """A server that reads the request head and lets *respond* answer (or not)."""

    def __init__(self, respond: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.respond = respond
        self.tasks: list = []

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc: Any) -> None:
        self.server.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.append(asyncio.current_task())
        try:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            await self.respond(reader, writer)
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()


async def test_content_length_chunked_and_request_shape() -> None:
    async with FakeHTTP() as http:
        http.routes[("PUT", "/a")] = lambda r: (200, "plain body")
        http.routes[("GET", "/b")] = lambda r: (201, {"k": "v"})
        http.chunked.add("/b")
        resp = await _http.request("PUT", http.url + "/a", headers={"X-Test": "1"}, body=b"xyz")
        assert (resp.status, resp.body) == (200, b"plain body")
        resp = await _http.request("GET", http.url + "/b?q=1")
        assert (resp.status, resp.body) == (201, b'{"k": "v"}')
        put, get = http.requests
        assert put.headers["x-test"] == "1" and put.body == b"xyz" and put.headers["content-length"] == "3"
        assert put.headers["host"] == f"127.0.0.1:{http.port}" and put.headers["connection"] == "close"
        assert get.query == {"q": "1"}
        assert "plain" not in repr(resp) and "k" not in repr(resp)


async def test_body_until_eof() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async with raw_server(respond) as port:
        resp = await _http.request("GET", f"http://127.0.0.1:{port}/")
        assert resp.body == b"until the end"


async def test_timeout_and_errors_do_not_echo_the_query() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with raw_server(respond) as port:
        with pytest.raises(_http.HTTPError, match="timed out") as info:
            await _http.request("GET", f"http://127.0.0.1:{port}/path?token=SECRET", timeout=0.2)
        assert "SECRET" not in str(info.value) and "/path" in str(info.value)
    with pytest.raises(_http.HTTPError) as info:
        await _http.request("GET", "http://127.0.0.1:9/x?token=SECRET", timeout=2)
    assert "SECRET" not in str(info.value)


async def test_malformed_and_oversized_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"]

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(replies.pop(0))
        await writer.drain()

    monkeypatch.setattr(_http, "MAX_BODY", 10)
    async with raw_server(respond) as port:
        with pytest.raises(_http.HTTPError, match="malformed status line"):
            await _http.request("GET", f"http://127.0.0.1:{port}/")
        with pytest.raises(_http.HTTPError, match="too large"):
            await _http.request("GET", f"http://127.0.0.1:{port}/")


async def test_bad_requests_are_refused_before_sending() -> None:
    with pytest.raises(_http.HTTPError, match="unsupported URL"):
        await _http.request("GET", "ftp://127.0.0.1/")
    async with FakeHTTP() as http:
        with pytest.raises(_http.HTTPError, match="invalid header"):
            await _http.request("GET", http.url + "/", headers={"X": "a\r\nInjected: 1"})
        assert http.requests == []

"""A minimal HTTP/1.1 client over asyncio streams (no threads, no dependencies).

Used only to fetch cloud credentials for authentication: the AWS ECS and EC2 (IMDSv2)
metadata endpoints, STS ``AssumeRoleWithWebIdentity``, and the Azure / GCP instance metadata
services for MONGODB-OIDC. One request per connection (``Connection: close``); bodies sent with
``Content-Length``; responses read by ``Content-Length``, chunked transfer coding, or to EOF.

Errors are :class:`HTTPError` whose message names the method, host and path only: query
strings, headers and bodies (where tokens travel) never appear in one.
"""
from __future__ import annotations

import asyncio
import ssl as _ssl
from typing import Dict, List, Mapping, Optional
from urllib.parse import SplitResult, urlsplit

__all__ = ["HTTPError", "HTTPResponse", "request"]

#: Responses larger than this are refused (credential documents are a few KiB).
MAX_BODY = 1024 * 1024
_MAX_HEADER_LINES = 100


class HTTPError(Exception):
    """A request could not be completed (connection, timeout, malformed response)."""


class HTTPResponse:
    """A response: ``status`` (int), ``headers`` (lower-case names) and ``body`` (bytes)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:  # the body may hold credentials
        return f"<HTTPResponse status={self.status} length={len(self.body)}>"


async def request(
    method: str,
    url: str,
    *,
    headers: Optional[Mapping[str, str]] = None,
    body: bytes = b"",
    timeout: float = 10.0,
    ssl_context: Optional[_ssl.SSLContext] = None,
) -> HTTPResponse:
    """Send one request and read the whole response within *timeout* seconds.

    :param url: ``http://`` or ``https://`` (TLS with the default, verifying context unless
        *ssl_context* is given).
    :raises HTTPError: on any failure to connect, send or read.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPError(f"unsupported URL scheme or host for {method} request")
    host = parts.hostname
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    what = f"{method} {parts.scheme}://{host}:{port}{parts.path or '/'}"
    try:
        return await asyncio.wait_for(
            _exchange(method, parts, host, port, secure, headers or {}, body, ssl_context), timeout
        )
    except asyncio.TimeoutError:
        raise HTTPError(f"{what}: timed out after {timeout:g} s") from None
    except HTTPError as exc:
        raise HTTPError(f"{what}: {exc}") from None
    except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise HTTPError(f"{what}: {type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}") from None


async def _exchange(
    method: str,
    parts: SplitResult,
    host: str,
    port: int,
    secure: bool,
    headers: Mapping[str, str],
    body: bytes,
    ssl_context: Optional[_ssl.SSLContext],
) -> HTTPResponse:
    ctx = (ssl_context or _ssl.create_default_context()) if secure else None
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ctx, server_hostname=host if secure else None
    )
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        host_header = f"[{host}]" if ":" in host else host
        if port != (443 if secure else 80):
            host_header += f":{port}"
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}", "Connection: close"]
        names = {k.lower() for k in headers}
        if body or method in ("POST", "PUT"):
            if "content-length" not in names:
                lines.append(f"Content-Length: {len(body)}")
        for name, value in headers.items():
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise HTTPError("invalid header")
            lines.append(f"{name}: {value}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        return await _read_response(reader, method)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, _ssl.SSLError):
            pass


async def _read_response(reader: asyncio.StreamReader, method: str) -> HTTPResponse:
    status_line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    proto, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not proto.startswith("HTTP/") or not code.isdigit():
        raise HTTPError("malformed status line")
    status = int(code)
    headers: Dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPError("malformed header line")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HTTPError("too many header lines")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return HTTPResponse(status, headers, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length < 0 or length > MAX_BODY:
            raise HTTPError("response body too large")
        body = await reader.readexactly(length)
    else:
        body = await reader.read(MAX_BODY + 1)
        while True:
            more = await reader.read(MAX_BODY + 1 - len(body))
            if not more:
                break
            body += more
            if len(body) > MAX_BODY:
                break
        if len(body) > MAX_BODY:
            raise HTTPError("response body too large")
    return HTTPResponse(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: List[bytes] = []
    total = 0
    while True:
        size_line = (await reader.readline()).decode("latin-1").strip()
        size = int(size_line.split(";", 1)[0], 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > MAX_BODY:
            raise HTTPError("response body too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)  # CRLF after the chunk

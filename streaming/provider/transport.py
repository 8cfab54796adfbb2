"""The process's one way to the model provider: its own HTTP/1.1 connections (`connections.Pool`) under the streamed
requests sent without the SDK (`direct`) and under the SDK's client (`SessionTransport` is its httpx2 transport), and
an aiohttp session for what goes through a proxy.

Why not the SDK's transport: httpx2's own read a chunk in about twice the CPU time of aiohttp's, and aiohttp's
request about twice that of the pool's (`bench.micro`), when every token of hundreds of answers arrives in a read of
its own and a burst asks for hundreds of answers at once (docs/performance.md). A streamed request sent directly, as
a `Reply`, also skips the SDK's request machinery and httpx2's request and response objects.

The pool and the session belong to the event loop they were opened in; a new loop (a test's) gets its own. A proxy
set in the environment (`HTTPS_PROXY`, `NO_PROXY`...) is used as the SDK's default client used it, but read once per
host, not by aiohttp at every request (with `~/.netrc`: 2 % of a worker's CPU in a burst).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx2

from streaming.provider import connections

# As many connections as streams: one per answer being read (HTTP/1.1), as the SDK's own limit.
MAX_CONNECTIONS = 1000


# A context in which a reply's socket is not read: what the provider sends meanwhile waits in the kernel's buffer, and
# comes in one read when it ends, instead of costing a wake-up, a read and a parse per chunk as it arrives.
Hold = Callable[[], AbstractContextManager[None]]


@dataclass(frozen=True)
class Reply:
    """A response being read, whichever transport brought it: its status and headers, its body as it arrives
    (`chunks`, raising httpx2's exceptions), all of it at once (`read`), `close`, which gives the connection back to
    the pool once the body was read to its end, and closes it otherwise (the provider stops generating), and `hold`
    (see `Hold`; a transport other than the process's holds nothing). `answered` tells it that the reader found the
    answer's own end in the body (`[DONE]`), so that a connection whose body's last bytes are still on their way can
    be kept once they come (the process's connections; other transports close it)."""

    status: int
    headers: Mapping[str, str]
    chunks: Callable[[], AsyncIterator[bytes]]
    read: Callable[[], Awaitable[bytes]]
    close: Callable[[], Awaitable[None]]
    hold: Hold = contextlib.nullcontext
    answered: Callable[[], None] = lambda: None


class SessionTransport(httpx2.AsyncBaseTransport):
    """The process's connections: `open` for a request sent directly, and an httpx2 transport for the SDK."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._pool: connections.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _opened(self) -> tuple[connections.Pool, aiohttp.ClientSession]:
        """This loop's pool and session."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._session is None or self._loop is not loop:
            self._pool = connections.Pool(limit=MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS))
            self._loop = loop
        return self._pool, self._session

    async def open(
        self, method: str, url: str, *, headers: Any, content: bytes | None, timeouts: Mapping[str, float | None]
    ) -> Reply:
        """Send a request; its reply once the status and headers are in. Raises httpx2's exceptions."""
        pool, session = self._opened()
        proxy = _proxy_for(*_origin(url))
        if proxy is None:
            got = await pool.open(method, url, headers=headers, content=content, timeouts=timeouts)
            return Reply(got.status, got.headers, got.chunks, got.read, got.close, got.hold, got.answered)
        with _HttpxErrors():
            response = await session.request(
                method,
                url,
                headers=headers,
                data=content,
                allow_redirects=False,
                auto_decompress=False,
                proxy=proxy,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read"), connect=timeouts.get("pool")
                ),
            )
        return Reply(
            response.status,
            response.headers,
            _chunks_of(response),
            _read_of(response),
            _close_of(response),
            _hold_of(response),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        reply = await self.open(
            request.method,
            str(request.url),
            headers=request.headers.multi_items(),
            content=request.content or None,
            timeouts=request.extensions.get("timeout", {}),
        )
        return httpx2.Response(reply.status, headers=list(reply.headers.items()), stream=_Body(reply), request=request)

    async def aclose(self) -> None:
        if self._pool is not None and self._session is not None and self._loop is asyncio.get_running_loop():
            await self._pool.aclose()
            await self._session.close()
        self._session = self._pool = self._loop = None


async def open_reply(
    transport: httpx2.AsyncBaseTransport,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes | None,
    timeouts: Mapping[str, float | None],
) -> Reply:
    """Send a request on `transport`: directly on the process's session, or through any other httpx2 transport (the
    demo model's), as an httpx2 request."""
    if isinstance(transport, SessionTransport):
        return await transport.open(method, url, headers=headers, content=content, timeouts=timeouts)
    request = httpx2.Request(method, url, headers=headers, content=content, extensions={"timeout": dict(timeouts)})
    response = await transport.handle_async_request(request)
    return Reply(response.status_code, response.headers, response.aiter_raw, response.aread, response.aclose)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or ""


@functools.cache
def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for requests to `host` (None: none, or the host is in `NO_PROXY`)."""
    if not host or urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def _chunks_of(response: aiohttp.ClientResponse) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        with _HttpxErrors():
            async for data in response.content.iter_any():
                yield data

    return chunks


def _hold_of(response: aiohttp.ClientResponse) -> Hold:
    """Pausing the socket's reading is asyncio's public transport API (on TLS too: what arrives is neither decrypted
    nor parsed meanwhile); aiohttp's own flow control pauses the same transport when its buffer is full, so a hold
    that finds it paused leaves it so. The hold stops no timer: the read timeout (`sock_read`) still counts, which a
    hold of a fraction of a second does not reach."""

    @contextlib.contextmanager
    def hold() -> Iterator[None]:
        transport = response.connection.transport if response.connection is not None else None
        try:
            reading = transport is not None and transport.is_reading()
        except NotImplementedError:  # a transport without flow control: it is read as it goes
            reading = False
        if not reading:
            yield
            return
        transport.pause_reading()
        try:
            yield
        finally:
            if not transport.is_closing():
                transport.resume_reading()

    return hold


def _read_of(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[bytes]]:
    async def read() -> bytes:
        with _HttpxErrors():
            return await response.read()

    return read


def _close_of(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        if response.content.at_eof():
            response.release()
        else:
            response.close()

    return close


class _Body(httpx2.AsyncByteStream):
    def __init__(self, reply: Reply) -> None:
        self._reply = reply

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in self._reply.chunks():
            yield data

    async def aclose(self) -> None:
        await self._reply.close()


class _HttpxErrors:
    """A context in which aiohttp's exceptions become httpx2's: its timeouts a `TimeoutException`, its other errors
    a `TransportError`, which the SDK reports as `APITimeoutError` and `APIConnectionError` (and retries both), and
    `errors.from_upstream` knows. The message is the exception's type: aiohttp's text can name the host."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            raise httpx2.ConnectTimeout(type(exc).__name__) from exc
        if isinstance(exc, TimeoutError):  # aiohttp's timeouts are `asyncio.TimeoutError`, the built-in one
            raise httpx2.ReadTimeout(type(exc).__name__) from exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise httpx2.ConnectError(type(exc).__name__) from exc
        if isinstance(exc, aiohttp.ClientError):
            raise httpx2.ReadError(type(exc).__name__) from exc
        return False

"""HTTP/1.1 to the model provider on asyncio's own transports: the process's requests, without a client library's
machinery on the way of every prompt and every chunk.

In a burst of prompts the worker is out of CPU, and the request was the largest part of a prompt's cost found: aiohttp
spent 230 to 310 µs of the loop on a streamed answer of two tokens over a kept connection, and rescheduled a timer for
every chunk it read (docs/performance.md). `Pool` does the part of HTTP/1.1 a provider's API needs and no more: kept
connections per origin, a host's addresses raced as aiohttp races them (`aiohappyeyeballs`), TLS (asyncio's, with the
system's certificates, as aiohttp had them), the connect, pool and read timeouts, a body read as it arrives whose socket
pauses when too much of it waits unread or while a stream holds it (`transport.Hold`), and a request that finds its kept
connection closed by the provider sent again at once on a new one. httptools parses (llhttp, the parser of Node.js and
of aiohttp itself). A proxy is not its part: `transport.SessionTransport` sends what goes through one on aiohttp.

Failures raise httpx2's exceptions, as the transport's other paths do, with the exception's type as the message (its
text could name the host).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohappyeyeballs
import httptools
import httpx2

# A body's bytes read from the socket and not yet taken by its reader, past which the socket is not read until they
# are: the bound on what one reply buffers.
MOST_UNREAD = 256 * 1024
# A connection idle this long is closed rather than kept: below the five seconds after which uvicorn (vLLM's server)
# closes one, so that a request seldom meets a connection the provider is closing.
KEEP_IDLE_S = 4.0
# How long a resolved host's addresses are used before asking again (aiohttp's default).
DNS_TTL_S = 10.0
# How long a connection attempt to one of a host's addresses goes alone before the next address is tried beside it
# (aiohttp's default, and RFC 8305's recommendation).
HAPPY_EYEBALLS_S = 0.25
# How long a connection whose answer was read to its end waits, off the reader's way, for the rest of the body (the
# end of a chunked body often comes in a read after the answer's own last line) before it is closed, not kept.
MOST_TO_FINISH_S = 1.0

Origin = tuple[str, str, int]  # scheme, host, port


class Pool:
    """The connections of one event loop to every origin it asks, at most `limit` in use at once."""

    def __init__(self, *, limit: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}
        self._in_use = asyncio.Semaphore(limit)
        self._ssl_context = ssl_context
        self._addresses: dict[tuple[str, int], tuple[float, list[aiohappyeyeballs.AddrInfoType]]] = {}

    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: Any,
        content: bytes | None,
        timeouts: Mapping[str, float | None],
    ) -> Response:
        """Send a request; its response once the status and headers are in."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = _request(method, target, parts.netloc.rpartition("@")[2], headers, content)
        await self._take_a_place(timeouts.get("pool"))
        response = None
        try:
            while True:
                connection = self._idle_connection(origin) or await self._connect(origin, timeouts.get("connect"))
                response = connection.send(request, read_timeout=timeouts.get("read"), release=self._in_use.release)
                try:
                    await response.head()
                except _ClosedUnused:  # a kept connection the provider had closed: nothing was read, send again
                    response = None
                    continue
                return response
        except BaseException:
            if response is not None:
                response.leave()
            else:
                self._in_use.release()
            raise

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _take_a_place(self, most_s: float | None) -> None:
        if not self._in_use.locked():
            await self._in_use.acquire()  # returns at once: no timer to set
            return
        try:
            async with asyncio.timeout(most_s):
                await self._in_use.acquire()
        except TimeoutError:
            raise httpx2.PoolTimeout("PoolTimeout") from None

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
        return None

    def _keep(self, origin: Origin, connection: _Connection) -> None:
        self._idle.setdefault(origin, []).append(connection)

    def _forget(self, origin: Origin, connection: _Connection) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._idle[origin].remove(connection)

    async def _connect(self, origin: Origin, most_s: float | None) -> _Connection:
        """A new connection: to the host's addresses raced as aiohttp races them (Happy Eyeballs, RFC 8305), so that
        an address family without a route costs a quarter of a second, not the whole connect timeout."""
        scheme, host, port = origin
        tls = {"ssl": self._tls(), "server_hostname": host} if scheme == "https" else {}
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(most_s):
                where = await _reach(await self._resolve(host, port))
                _, connection = await loop.create_connection(lambda: _Connection(self, origin), **where, **tls)
                return connection
        except TimeoutError:
            raise httpx2.ConnectTimeout("ConnectTimeout") from None
        except OSError as exc:  # refused, unreachable, unknown host, a certificate that does not verify
            raise httpx2.ConnectError(type(exc).__name__) from None

    async def _resolve(self, host: str, port: int) -> list[aiohappyeyeballs.AddrInfoType]:
        loop = asyncio.get_running_loop()
        known = self._addresses.get((host, port))
        if known is not None and known[0] > loop.time():
            return known[1]
        addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        self._addresses[(host, port)] = (loop.time() + DNS_TTL_S, addresses)
        return addresses

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context


async def _reach(addresses: list[aiohappyeyeballs.AddrInfoType]) -> dict[str, Any]:
    """Where a connection goes: the one address (the loop's own connect, a little cheaper), or the socket that won
    the race among several."""
    if len(addresses) == 1:
        family, _, _, _, address = addresses[0]
        return {"host": address[0], "port": address[1], "family": family}
    return {"sock": await aiohappyeyeballs.start_connection(addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_S)}


def _request(method: str, target: str, netloc: str, headers: Any, content: bytes | None) -> list[bytes]:
    """The request's bytes: its head, and its body if it has one."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc}"]
    lines += [f"{name}: {value}" for name, value in items if name.lower() not in ("host", "content-length")]
    if content is not None or method == "POST":
        lines.append(f"Content-Length: {len(content or b'')}")
    if any("\r" in line or "\n" in line for line in lines):  # a line break in a header would start another one
        raise httpx2.LocalProtocolError("LocalProtocolError")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return [head, content] if content else [head]


class _ClosedUnused(Exception):
    """A kept connection was closed before any of its response was read."""


class _Connection(asyncio.Protocol):
    """One connection: one response at a time, then back to the pool if the provider keeps it open."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self._pool, self._origin = pool, origin
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self._used = False
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def reusable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and self.response is None

    def send(self, request: list[bytes], *, read_timeout: float | None, release: Callable[[], None]) -> Response:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        assert self.transport is not None
        self.response = Response(self, read_timeout=read_timeout, reused=self._used, release=release)
        self._used = True
        self.transport.writelines(request)
        return self.response

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # nothing was asked: a provider that talks out of turn is not kept
            self.close()
            return
        self.response.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool._forget(self._origin, self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self.response is not None:
            self.response.lost()

    def done(self, *, keep: bool) -> None:
        """The response was read to its end (`keep`: and the provider keeps the connection), or was left."""
        self.response = None
        if not keep or self.transport is None or self.transport.is_closing():
            self.close()
            return
        self._pool._keep(self._origin, self)
        self._idle_timer = asyncio.get_running_loop().call_later(KEEP_IDLE_S, self.close)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Response:
    """A response being read: its status and headers (names in lower case) once `head` returns, its body as it
    arrives (`chunks`), `hold`, and `close`, which keeps the connection once the body was read to its end, and closes
    it otherwise (the provider stops generating). A reader that found the answer's own end in the body (`[DONE]`)
    says so with `answered` before it closes: the connection is then kept once the body's last bytes come, if they
    come soon and nothing else does."""

    def __init__(
        self, connection: _Connection, *, read_timeout: float | None, reused: bool, release: Callable[[], None]
    ) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._connection = connection
        self._transport = connection.transport
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._body: deque[bytes] = deque()
        self._unread = 0
        self._headed = self._ended = self._closed = self._left = self._keep_alive = False
        self._answered = self._finishing = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reused, self._release = reused, release
        self._held = 0
        self._full = False
        self._read_timeout = read_timeout
        self._read_any = False
        self._last_read = self._loop.time()
        self._timer = None if read_timeout is None else self._loop.call_at(self._last_read + read_timeout, self._check)

    # What the connection and the parser call.

    def feed(self, data: bytes) -> None:
        self._read_any = True
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(httpx2.RemoteProtocolError("RemoteProtocolError"))

    def lost(self) -> None:
        if self._ended:
            return
        if self._headed and self._reads_to_close():
            self._end()
        elif self._reused and not self._read_any:
            self._fail(_ClosedUnused())
        else:
            self._fail(httpx2.ReadError("RemoteProtocolError" if self._headed else "ServerDisconnectedError"))

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()  # known here; llhttp forgets it once the message ends
        self._headed = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._finishing:  # more than the end of a body whose answer was read: the connection is not kept
            self._fail(httpx2.RemoteProtocolError("RemoteProtocolError"))
            return
        self._body.append(body)
        self._unread += len(body)
        if self._unread > MOST_UNREAD and not self._full:
            self._full = True
            self._reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._end()

    # What the reader calls.

    async def head(self) -> None:
        while not self._headed:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._body:
                data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
                self._body.clear()
                self._unread = 0
                if self._full:
                    self._full = False
                    self._reading()
                yield data
            elif self._error is not None:
                raise self._error
            elif self._ended:
                return
            else:
                await self._wait()

    async def read(self) -> bytes:
        return b"".join([data async for data in self.chunks()])

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self._held += 1
        self._reading()
        try:
            yield
        finally:
            self._held -= 1
            self._reading()

    def answered(self) -> None:
        """The reader has read the answer to its end: what is left of the body is its framing."""
        self._answered = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._answered and not self._ended and self._error is None and not self._body:
            self._finishing = True  # `_end` keeps the connection, `_fail` (or the timer) closes it
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(MOST_TO_FINISH_S, self._fail, httpx2.ReadTimeout("ReadTimeout"))
            return
        self.leave(keep=self._ended and self._error is None and not self._body and self._keep_alive)

    def leave(self, *, keep: bool = False) -> None:
        """Give the connection back (`keep`) or close it, and the response's place in the pool."""
        if self._left:
            return
        self._closed = self._left = True
        if self._timer is not None:
            self._timer.cancel()
        self._connection.done(keep=keep)
        self._release()

    # Inside.

    def _reads_to_close(self) -> bool:
        """A body with neither a length nor chunks, whose end is the connection's."""
        chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        return not chunked and "content-length" not in self.headers

    def _end(self) -> None:
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
        if self._finishing:
            self.leave(keep=self._keep_alive)
        self._wake()

    def _fail(self, error: Exception) -> None:
        if self._error is None and not self._ended:
            self._error = error
            if self._timer is not None:
                self._timer.cancel()
            self._connection.close()
            if self._finishing:
                self.leave()
        self._wake()

    def _reading(self) -> None:
        """Read the socket unless the reply is held or too much of it waits unread."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._held or self._full:
            if transport.is_reading():
                transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    def _check(self) -> None:
        """The read timeout: one timer per response, set again for what is left of it whenever something came."""
        due = self._last_read + self._read_timeout  # type: ignore[operator]
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._fail(httpx2.ReadTimeout("ReadTimeout"))

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

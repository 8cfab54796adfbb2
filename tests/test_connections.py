"""The process's own HTTP/1.1 connections to the provider (`provider.connections`), against real local servers: the
fake provider where it can say what happens, and a few lines of asyncio where a server must misbehave on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
import pytest

from streaming.provider import connections, direct
from streaming.provider.connections import Pool
from streaming.provider.upstream import get_provider
from tests.fake_openai import Script
from tests.test_direct import CHAT, body_of

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
NO_TIMEOUTS: dict[str, float | None] = {}


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start a server of `handler` on a free port; its URL."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler, *, tls: ssl.SSLContext | None = None) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        return f"{'https' if tls else 'http'}://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

    yield start
    for server in servers:
        server.close()


async def request_of(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def get(pool: Pool, url: str, timeouts: dict[str, float | None] = NO_TIMEOUTS) -> bytes:
    response = await pool.open("GET", url, headers={}, content=None, timeouts=timeouts)
    try:
        return await response.read()
    finally:
        await response.close()


async def test_a_request_after_an_answer_read_to_its_end_goes_on_the_same_connection(upstream):
    await body_of()
    await body_of()

    first, second = upstream.requests
    assert first.client_port == second.client_port


async def test_an_answer_left_before_its_end_does_not_leave_its_connection_to_the_next(upstream):
    upstream.then(Script(tokens=["a", "b", "c"], hang_after=1))

    async with direct.open_stream(CHAT, get_provider()) as reply:
        async for _ in reply.chunks():
            break
    assert b"[DONE]" in await body_of()

    left, next_one = upstream.requests
    assert left.client_port != next_one.client_port


async def test_a_kept_connection_the_provider_closed_meanwhile_is_replaced_without_an_error(serve):
    connected = 0

    async def answers_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connected
        connected += 1
        await request_of(reader)
        writer.write(answer(b"first"))
        await request_of(reader)  # the next request on this connection is not answered: the connection closes
        writer.close()

    url = await serve(answers_once)
    pool = Pool(limit=10)

    assert await get(pool, url) == b"first"
    assert await get(pool, url) == b"first"
    assert connected == 2
    await pool.aclose()


async def test_a_new_connection_closed_before_its_answer_is_a_read_error_not_sent_again(serve):
    connected = 0

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connected
        connected += 1
        await request_of(reader)
        writer.close()

    pool = Pool(limit=10)
    with pytest.raises(httpx2.ReadError):
        await get(pool, await serve(never_answers))
    assert connected == 1


async def test_a_reply_not_read_stops_its_socket_being_read_past_a_bound(serve, monkeypatch):
    monkeypatch.setattr(connections, "MOST_UNREAD", 64 * 1024)
    body = bytes(8 * 1024 * 1024)
    written = asyncio.Event()

    async def sends_much(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_of(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 64 * 1024):
            writer.write(b"%x\r\n%s\r\n" % (64 * 1024, body[start : start + 64 * 1024]))
        writer.write(b"0\r\n\r\n")
        written.set()
        await writer.drain()

    pool = Pool(limit=10)
    response = await pool.open("GET", await serve(sends_much), headers={}, content=None, timeouts=NO_TIMEOUTS)
    await written.wait()
    for _ in range(50):  # fifty turns of the loop, in which an unbounded reader would have read megabytes
        await asyncio.sleep(0)
    chunks = response.chunks()
    first = await anext(chunks)
    assert len(first) <= 64 * 1024 + 256 * 1024  # the bound, and at most one read of the socket past it
    rest = b"".join([data async for data in chunks])
    assert first + rest == body
    await response.close()
    await pool.aclose()


async def test_a_body_with_neither_length_nor_chunks_ends_with_its_connection(serve):
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_of(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ")
        await writer.drain()
        writer.write(b"it")
        writer.close()

    assert await get(Pool(limit=10), await serve(until_close)) == b"all of it"


async def test_a_chunked_body_cut_short_is_a_read_error_after_what_came(serve):
    async def cuts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_of(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n")
        await writer.drain()
        writer.close()

    response = await Pool(limit=10).open("GET", await serve(cuts), headers={}, content=None, timeouts=NO_TIMEOUTS)
    received = []
    with pytest.raises(httpx2.ReadError):
        async for data in response.chunks():
            received.append(data)
    assert received == [b"Hello"]
    await response.close()


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(serve):
    connected = asyncio.Event()

    async def notes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()

    pool = Pool(limit=1)
    url = await serve(notes)
    with pytest.raises(httpx2.LocalProtocolError):
        await pool.open("GET", url, headers={"X-Note": "a\r\nX-Injected: b"}, content=None, timeouts=NO_TIMEOUTS)
    assert not connected.is_set()
    assert not pool._in_use.locked()  # its place was given back


async def test_a_request_past_the_limit_waits_for_a_place_and_its_pool_timeout(serve):
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while await request_of(reader):
                writer.write(answer(b"ok"))

    url = await serve(answers)
    pool = Pool(limit=1)
    first = await pool.open("GET", url, headers={}, content=None, timeouts=NO_TIMEOUTS)

    with pytest.raises(httpx2.PoolTimeout):
        await get(pool, url, {"pool": 0.01})
    waiting = asyncio.create_task(get(pool, url))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert await first.read() == b"ok"
    await first.close()
    assert await waiting == b"ok"
    await pool.aclose()


async def test_an_idle_connection_is_closed_after_a_while(serve, monkeypatch):
    monkeypatch.setattr(connections, "KEEP_IDLE_S", 0.01)
    closed = asyncio.Event()

    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_of(reader)
        writer.write(answer(b"ok"))
        await reader.read()  # until the client closes
        closed.set()

    assert await get(Pool(limit=10), await serve(answers)) == b"ok"
    await asyncio.wait_for(closed.wait(), timeout=5)


async def test_a_provider_over_tls_is_verified_and_answers(serve, certificate):
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)

    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_of(reader)
        writer.write(answer(b"secret"))
        await writer.drain()

    url = await serve(answers, tls=server_side)
    assert await get(Pool(limit=10, ssl_context=ssl.create_default_context(cafile=cert)), url) == b"secret"
    with pytest.raises(httpx2.ConnectError):  # the system's certificates do not know this one
        await get(Pool(limit=10), url)


def kept(pool: Pool) -> int:
    return sum(len(idle) for idle in pool._idle.values())


def on_keep(pool: Pool) -> asyncio.Event:
    """Set once the pool keeps a connection for the next request."""
    kept_one, keep = asyncio.Event(), pool._keep

    def keeping(origin: connections.Origin, connection: Any) -> None:
        keep(origin, connection)
        kept_one.set()

    pool._keep = keeping  # type: ignore[method-assign]
    return kept_one


def streaming_server(after_done: bytes, connected: list[int]) -> tuple[Handler, asyncio.Event]:
    """A server whose answers end with `[DONE]`, then, once `go_on` is set, `after_done` (the chunked body's end, or
    more)."""
    go_on = asyncio.Event()

    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.append(1)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await request_of(reader):
                done = b"data: [DONE]\n\n"
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(done), done))
                await writer.drain()
                await go_on.wait()
                writer.write(after_done)
                await writer.drain()

    return answers, go_on


async def test_a_connection_whose_answer_was_read_is_kept_once_its_bodys_end_comes_after(serve):
    connected: list[int] = []
    handler, go_on = streaming_server(b"0\r\n\r\n", connected)
    url = await serve(handler)
    pool = Pool(limit=10)
    kept_one = on_keep(pool)

    response = await pool.open("GET", url, headers={}, content=None, timeouts=NO_TIMEOUTS)
    async for data in response.chunks():
        if b"[DONE]" in data:
            break
    response.answered()
    await response.close()  # before the body's end was sent: the reader does not wait for it
    go_on.set()
    await asyncio.wait_for(kept_one.wait(), timeout=5)

    response = await pool.open("GET", url, headers={}, content=None, timeouts=NO_TIMEOUTS)
    assert b"[DONE]" in await response.read()
    await response.close()
    assert len(connected) == 1
    await pool.aclose()


async def test_a_connection_whose_answer_was_read_but_whose_body_goes_on_is_not_kept(serve):
    connected: list[int] = []
    handler, go_on = streaming_server(b"5\r\nmore!\r\n0\r\n\r\n", connected)
    url = await serve(handler)
    pool = Pool(limit=1)

    response = await pool.open("GET", url, headers={}, content=None, timeouts=NO_TIMEOUTS)
    async for data in response.chunks():
        if b"[DONE]" in data:
            break
    response.answered()
    await response.close()
    go_on.set()

    response = await pool.open("GET", url, headers={}, content=None, timeouts={"pool": 5})  # its place came back
    await response.close()
    assert len(connected) == 2
    assert kept(pool) == 0
    await pool.aclose()


async def test_a_host_whose_first_address_does_not_answer_is_reached_at_its_next(serve, monkeypatch):
    silent = socket.socket()  # a listener whose queue is full: a connection to it waits, neither made nor refused
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    queued = socket.create_connection(silent.getsockname())

    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_of(reader)
        writer.write(answer(b"from the next address"))

    url = await serve(answers)
    port = int(url.rstrip("/").rpartition(":")[2])
    resolve = socket.getaddrinfo

    def two_addresses(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "provider.test":
            return resolve(host, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", silent.getsockname()),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    try:
        body = await get(Pool(limit=10), f"http://provider.test:{port}/", {"connect": 3})
    finally:
        queued.close()
        silent.close()
    assert body == b"from the next address"

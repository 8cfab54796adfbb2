"""A streamed answer's request sent straight to the process's aiohttp session (`provider.direct`), against the fake
provider over real HTTP: what the SDK would have sent, its retries, its exception types, and a reply closed before
its end."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import aiohttp
import httpx2
import openai
import pytest

from streaming import errors
from streaming.provider import direct, transport
from streaming.provider.direct import Call, Provider
from streaming.provider.transport import SessionTransport
from streaming.provider.upstream import get_client, get_provider
from tests.fake_openai import Script

CHAT = Call("POST", "chat/completions", body={"model": "fake-model", "messages": [], "stream": True})


async def body_of(call: Call = CHAT) -> bytes:
    async with direct.open_stream(call, get_provider()) as reply:
        return b"".join([data async for data in reply.chunks()])


async def test_the_request_carries_the_sdk_clients_headers_and_the_body_as_given(upstream):
    assert b"[DONE]" in await body_of()

    sent = upstream.requests[0]
    client = get_client()
    assert sent.path == "/v1/chat/completions" and sent.body == CHAT.body
    assert sent.headers["authorization"] == "Bearer sk-test-secret-key"
    assert sent.headers["user-agent"] == client.user_agent
    assert sent.headers["accept-encoding"] == "identity"  # the answer's lines are read as they come, not decompressed
    assert "omit" not in str(sent.headers).lower()


async def test_a_query_goes_in_the_url(upstream):
    upstream.then(Script(status=404))
    with pytest.raises(openai.NotFoundError):
        await body_of(Call("GET", "responses/resp_1", params={"stream": "true", "starting_after": "3"}))
    assert upstream.requests[0].query == {"stream": "true", "starting_after": "3"}


async def test_a_rate_limit_is_retried_after_the_providers_retry_after_and_the_answer_streams(upstream, settings):
    settings.STREAMING_OPENAI_MAX_RETRIES = 1
    upstream.then(Script(status=429, error_headers={"retry-after-ms": "1"}), Script(tokens=["Hi", "!"]))

    assert b'"Hi"' in await body_of()
    assert len(upstream.requests) == 2


async def test_the_last_refusal_raises_the_sdks_type_for_its_status(upstream, settings):
    settings.STREAMING_OPENAI_MAX_RETRIES = 1
    upstream.then(*[Script(status=503, error_headers={"retry-after-ms": "1"})] * 2)

    with pytest.raises(openai.InternalServerError) as raised:
        await body_of()
    assert len(upstream.requests) == 2
    assert raised.value.status_code == 503 and str(raised.value) == "Error code: 503 - fake error 503"
    assert isinstance(errors.from_upstream(raised.value), errors.UpstreamUnavailable)


async def test_a_bad_request_is_not_retried_and_keeps_the_providers_code(upstream, settings):
    settings.STREAMING_OPENAI_MAX_RETRIES = 2
    refusal = {"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    upstream.then(Script(status=400, error_body=refusal))

    with pytest.raises(openai.BadRequestError) as raised:
        await body_of()
    assert len(upstream.requests) == 1
    assert raised.value.code == "context_length_exceeded"
    assert isinstance(errors.from_upstream(raised.value), errors.PromptTooLong)


async def test_a_provider_that_says_not_to_retry_is_not_retried(upstream, settings):
    settings.STREAMING_OPENAI_MAX_RETRIES = 2
    upstream.then(Script(status=503, error_headers={"x-should-retry": "false"}))

    with pytest.raises(openai.InternalServerError):
        await body_of()
    assert len(upstream.requests) == 1


async def test_a_provider_that_cannot_be_reached_is_a_connection_error(upstream, settings):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        settings.STREAMING_OPENAI_BASE_URL = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
        with pytest.raises(openai.APIConnectionError) as raised:
            await body_of()
    assert not isinstance(raised.value, openai.APITimeoutError)
    assert isinstance(errors.from_upstream(raised.value), errors.UpstreamUnavailable)


async def test_a_provider_that_stops_sending_is_a_timeout_in_httpx2s_terms(upstream, settings):
    settings.STREAMING_OPENAI_TIMEOUT = 0.2
    upstream.then(Script(tokens=["a", "b", "c"], hang_after=1))

    with pytest.raises(httpx2.TimeoutException) as raised:
        await body_of()
    assert "connection to the model provider was lost" in errors.from_upstream(raised.value).message


async def test_a_reply_left_before_its_end_closes_its_connection(upstream):
    upstream.then(Script(tokens=["a", "b", "c"], hang_after=1))

    async with direct.open_stream(CHAT, get_provider()) as reply:
        async for _ in reply.chunks():
            break

    await asyncio.wait_for(upstream.requests[0].closed.wait(), timeout=5)


def unread_bytes(local_port: int) -> int:
    """The bytes that wait, not yet read by their process, in the receive queue of this machine's TCP socket on
    `local_port` (Linux's /proc/net/tcp, whose `rx_queue` of an open connection is just that)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rpartition(":")[2], 16) == local_port:
            return int(fields[4].partition(":")[2], 16)
    raise LookupError(local_port)


async def test_a_held_reply_is_not_read_from_its_socket_until_it_is_let_go(upstream):
    script = Script(tokens=["a", "b", "c"], pause_after=1)
    upstream.then(script)

    async with direct.open_stream(CHAT, get_provider()) as reply:
        await script.paused.wait()
        port = upstream.requests[0].client_port
        with reply.hold():
            script.proceed.set()
            await asyncio.wait_for(upstream.requests[0].closed.wait(), timeout=5)  # the rest of the answer is sent
            for _ in range(10):
                await asyncio.sleep(0)
            assert unread_bytes(port)  # and ten turns of the loop later, it still waits in the socket
        body = b"".join([data async for data in reply.chunks()])

    assert b'"content": "c"' in body and b"[DONE]" in body
    assert unread_bytes(port) == 0


async def test_a_held_reply_over_tls_gets_what_was_sent_meanwhile_once_let_go(certificate):
    """A provider is reached over TLS, whose transport pauses its reading as a plain one does."""
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    held, sent = asyncio.Event(), asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n")
        await held.wait()
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        sent.set()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_side)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ssl.create_default_context(cafile=cert)) as got:
        assert await got.content.readany() == b"Hello"
        with transport._hold_of(got)():
            assert not got.connection.transport.is_reading()
            held.set()
            await sent.wait()
        assert await got.content.read() == b" world"
    server.close()


async def test_the_sdk_shares_the_session(upstream):
    provider = get_provider()
    assert isinstance(provider.transport, SessionTransport)
    upstream.then(Script(status=404))
    with pytest.raises(openai.NotFoundError):  # through the SDK, on the same transport
        await get_client().responses.retrieve("resp_gone")
    assert upstream.requests[0].method == "GET"


@pytest.mark.parametrize(
    ("status", "headers", "retried"),
    [
        (429, {}, True),
        (408, {}, True),
        (409, {}, True),
        (500, {}, True),
        (400, {}, False),
        (401, {}, False),
        (404, {}, False),
        (400, {"x-should-retry": "true"}, True),
        (503, {"x-should-retry": "false"}, False),
        (429, {"retry-after": "121"}, False),
    ],
)
def test_which_refusals_are_retried(status, headers, retried):
    assert (direct.retry_delay(0, status, headers) is not None) is retried


def test_the_wait_before_a_retry_is_the_providers_or_the_sdks_backoff():
    assert direct.retry_delay(0, 429, {"retry-after": "3"}) == 3
    assert direct.retry_delay(0, 429, {"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert 0.375 <= direct.retry_delay(0, 429, {}) <= 0.5
    assert 0.75 <= direct.retry_delay(1, None, None) <= 1.0
    assert 6 <= direct.retry_delay(10, 503, {"retry-after": "soon"}) <= 8


def test_the_provider_reads_the_clients_settings_once():
    client = openai.AsyncOpenAI(api_key="sk-x", base_url="http://models.invalid/v1", timeout=7, max_retries=3)
    provider = Provider.of_client(client, SessionTransport())

    assert provider.base_url == "http://models.invalid/v1/"
    assert provider.headers["Authorization"] == "Bearer sk-x"
    assert all(isinstance(value, str) for value in provider.headers.values())
    assert provider.timeout == {"connect": 7, "read": 7, "write": 7, "pool": 7} and provider.max_retries == 3
    assert provider.url(Call("GET", "responses/r", params={"stream": "true"})) == (
        "http://models.invalid/v1/responses/r?stream=true"
    )


async def test_a_proxy_named_in_the_environment_carries_the_request(upstream, monkeypatch):
    """As with the SDK's default client: `HTTP_PROXY` (and `NO_PROXY`) of the environment, read once per host."""
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readline())  # the request line, with the whole URL in it
        body = b'{"error": {"message": "the proxy says no"}}'
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    monkeypatch.setenv("NO_PROXY", "")
    transport._proxy_for.cache_clear()
    try:
        with pytest.raises(openai.PermissionDeniedError):
            await body_of()
    finally:
        transport._proxy_for.cache_clear()
        server.close()
    assert seen == [f"POST {upstream.base_url}/chat/completions HTTP/1.1\r\n".encode()]
    assert not upstream.requests


def test_no_proxy_for_a_host_the_environment_exempts(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    transport._proxy_for.cache_clear()
    try:
        assert transport._proxy_for("https", "api.openai.com") == "http://proxy.invalid:3128"
        assert transport._proxy_for("https", "internal.example") is None
    finally:
        transport._proxy_for.cache_clear()
